//! Sources of "dma-buf" file descriptors for test buffers.
//!
//! The tests only need an fd the client can `mmap(MAP_SHARED)` and fill, which
//! the compositor then imports through linux-dmabuf. The allocation strategy is
//! behind [`BufferProvider`] so a udmabuf-backed provider can be added later
//! without touching the clients.

use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::{MemfdFlags, SealFlags};

/// Allocates CPU-writable buffers that are passed to the compositor as dma-bufs.
pub trait BufferProvider: Send + Sync {
    /// Stable name, used in logs and `TEST_BUFFER_PROVIDER`.
    fn name(&self) -> &'static str;
    /// Returns an fd of exactly `size` bytes that can be mapped `MAP_SHARED`
    /// read/write.
    fn allocate(&self, size: usize) -> io::Result<OwnedFd>;
}

/// memfd-backed buffers.
///
/// There is no `/dev/udmabuf` on the CI host, so the memfd itself is sent as the
/// dma-buf fd and the compositor's software Vulkan driver (lavapipe) imports it
/// by mmap. Size seals (`F_SEAL_SHRINK | F_SEAL_GROW`) guarantee the compositor
/// that the fd cannot be truncated under it (which would SIGBUS its mapping);
/// the write seal is *not* set so the client can keep drawing.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemfdProvider;

impl BufferProvider for MemfdProvider {
    fn name(&self) -> &'static str {
        "memfd"
    }

    fn allocate(&self, size: usize) -> io::Result<OwnedFd> {
        let fd = rustix::fs::memfd_create(
            "wl-test-buffer",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        rustix::fs::ftruncate(&fd, size as u64)?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW)?;
        Ok(fd)
    }
}

/// Picks the provider named by `TEST_BUFFER_PROVIDER` (default `memfd`).
pub fn provider_from_env() -> io::Result<Box<dyn BufferProvider>> {
    let name = std::env::var("TEST_BUFFER_PROVIDER").unwrap_or_else(|_| "memfd".to_owned());
    provider_by_name(&name)
}

/// Looks a provider up by name.
pub fn provider_by_name(name: &str) -> io::Result<Box<dyn BufferProvider>> {
    match name {
        "memfd" => Ok(Box::new(MemfdProvider)),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown buffer provider {other:?} (known: memfd)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Mapping;

    #[test]
    fn memfd_has_size_seals_and_is_writable() {
        let fd = MemfdProvider.allocate(4096).expect("allocate memfd");
        let seals = rustix::fs::fcntl_get_seals(&fd).expect("get seals");
        assert!(
            seals.contains(SealFlags::SHRINK | SealFlags::GROW),
            "{seals:?}"
        );
        assert!(!seals.contains(SealFlags::WRITE), "must stay writable");
        assert_eq!(rustix::fs::fstat(&fd).expect("fstat").st_size, 4096);
        assert!(
            rustix::fs::ftruncate(&fd, 8192).is_err(),
            "grow must be sealed"
        );
        assert!(
            rustix::fs::ftruncate(&fd, 1024).is_err(),
            "shrink must be sealed"
        );

        let mut map = Mapping::new(&fd, 4096).expect("mmap");
        map.as_mut_slice()[4095] = 0x5a;
        let again = Mapping::new(&fd, 4096).expect("second mmap");
        assert_eq!(again.as_slice()[4095], 0x5a, "MAP_SHARED must be visible");
    }

    #[test]
    fn env_selection() {
        assert_eq!(provider_by_name("memfd").expect("memfd").name(), "memfd");
        assert!(provider_by_name("nope").is_err());
    }
}
