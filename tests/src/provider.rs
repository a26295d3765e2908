//! Sources of "dma-buf" file descriptors for test buffers.
//!
//! The tests only need an fd the client can `mmap(MAP_SHARED)` and fill, which
//! the compositor then imports through linux-dmabuf. The allocation strategy is
//! behind [`BufferProvider`], chosen by `TEST_BUFFER_PROVIDER`:
//!
//! - `memfd` (default): the host tier; the memfd itself stands in for a dma-buf.
//! - `udmabuf`: real dma-bufs from `/dev/udmabuf` (kernel VM tier).
//! - `dma-heap`: real dma-bufs from `/dev/dma_heap/system` (kernel VM tier).
//!
//! Clients write through an mmap of the returned fd; they must bracket those
//! writes with [`cpu_write`] (`DMA_BUF_IOCTL_SYNC` START/END on real dma-bufs,
//! a no-op on memfds).

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::fs::{MemfdFlags, SealFlags};

pub use crate::kernel::dmabuf::CpuAccess;
use crate::kernel::heap::DmaHeap;
use crate::kernel::udmabuf::Udmabuf;
pub use importer::sync::SyncDir;

/// Allocates CPU-writable buffers that are passed to the compositor as dma-bufs.
pub trait BufferProvider: Send + Sync {
    /// Stable name, used in logs and `TEST_BUFFER_PROVIDER`.
    fn name(&self) -> &'static str;
    /// Returns an fd of at least `size` bytes (exactly `size` for memfd; whole
    /// pages for the real dma-buf providers) that can be mapped `MAP_SHARED`
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
        let fd = rustix::fs::memfd_create("wl-test-buffer", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
        rustix::fs::ftruncate(&fd, size as u64)?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW)?;
        Ok(fd)
    }
}

/// Real dma-bufs from `/dev/udmabuf`: a memfd sealed against shrinking,
/// wrapped with `UDMABUF_CREATE`. Only the dma-buf is returned; its pages stay
/// alive through it.
#[derive(Debug)]
pub struct UdmabufProvider {
    dev: Udmabuf,
}

impl UdmabufProvider {
    /// Opens `/dev/udmabuf`; fails where the kernel has none (the CI host).
    pub fn open() -> io::Result<UdmabufProvider> {
        Ok(UdmabufProvider { dev: Udmabuf::open()? })
    }
}

impl BufferProvider for UdmabufProvider {
    fn name(&self) -> &'static str {
        "udmabuf"
    }

    fn allocate(&self, size: usize) -> io::Result<OwnedFd> {
        Ok(self.dev.create(size)?.dmabuf)
    }
}

/// Real dma-bufs from the system DMA-BUF heap (`/dev/dma_heap/system`).
#[derive(Debug)]
pub struct DmaHeapProvider {
    heap: DmaHeap,
}

impl DmaHeapProvider {
    /// Opens `/dev/dma_heap/system`.
    pub fn open() -> io::Result<DmaHeapProvider> {
        Ok(DmaHeapProvider {
            heap: DmaHeap::open("system")?,
        })
    }
}

impl BufferProvider for DmaHeapProvider {
    fn name(&self) -> &'static str {
        "dma-heap"
    }

    fn allocate(&self, size: usize) -> io::Result<OwnedFd> {
        self.heap.alloc(size)
    }
}

/// Starts a CPU write window on a buffer fd from any provider:
/// `DMA_BUF_IOCTL_SYNC(START | WRITE)` now, `END | WRITE` when the guard is
/// dropped (or [`CpuAccess::end`]). A no-op for memfds. Retries on
/// `EINTR`/`EAGAIN`.
pub fn cpu_write(fd: BorrowedFd<'_>) -> io::Result<CpuAccess<'_>> {
    CpuAccess::begin(fd, SyncDir::Write)
}

/// Names accepted by `TEST_BUFFER_PROVIDER`.
pub const PROVIDER_NAMES: &[&str] = &["memfd", "udmabuf", "dma-heap"];

/// Picks the provider named by `TEST_BUFFER_PROVIDER` (default `memfd`).
pub fn provider_from_env() -> io::Result<Box<dyn BufferProvider>> {
    let name = std::env::var("TEST_BUFFER_PROVIDER").unwrap_or_else(|_| "memfd".to_owned());
    provider_by_name(&name)
}

/// Looks a provider up by name.
pub fn provider_by_name(name: &str) -> io::Result<Box<dyn BufferProvider>> {
    match name {
        "memfd" => Ok(Box::new(MemfdProvider)),
        "udmabuf" => {
            Ok(Box::new(UdmabufProvider::open().map_err(|e| {
                io::Error::new(e.kind(), format!("buffer provider udmabuf: {e}"))
            })?))
        }
        "dma-heap" => {
            Ok(Box::new(DmaHeapProvider::open().map_err(|e| {
                io::Error::new(e.kind(), format!("buffer provider dma-heap: {e}"))
            })?))
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "unknown buffer provider {other:?} (known: {})",
                PROVIDER_NAMES.join(", ")
            ),
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
        assert!(seals.contains(SealFlags::SHRINK | SealFlags::GROW), "{seals:?}");
        assert!(!seals.contains(SealFlags::WRITE), "must stay writable");
        assert_eq!(rustix::fs::fstat(&fd).expect("fstat").st_size, 4096);
        assert!(rustix::fs::ftruncate(&fd, 8192).is_err(), "grow must be sealed");
        assert!(rustix::fs::ftruncate(&fd, 1024).is_err(), "shrink must be sealed");

        let mut map = Mapping::new(&fd, 4096).expect("mmap");
        map.as_mut_slice()[4095] = 0x5a;
        let again = Mapping::new(&fd, 4096).expect("second mmap");
        assert_eq!(again.as_slice()[4095], 0x5a, "MAP_SHARED must be visible");
    }

    #[test]
    fn env_selection() {
        assert_eq!(provider_by_name("memfd").expect("memfd").name(), "memfd");
        let err = provider_by_name("nope").err().expect("unknown name must fail");
        assert!(err.to_string().contains("udmabuf"), "{err}");
        // The real-dma-buf providers either open their device or say which
        // one is missing (the CI host has neither).
        for (name, dev) in [("udmabuf", "/dev/udmabuf"), ("dma-heap", "/dev/dma_heap/system")] {
            match provider_by_name(name) {
                Ok(p) => assert_eq!(p.name(), name),
                Err(e) => assert!(e.to_string().contains(dev), "{name}: {e}"),
            }
        }
    }

    #[test]
    fn cpu_write_is_a_no_op_on_memfd() {
        use std::os::fd::AsFd;
        let fd = MemfdProvider.allocate(4096).expect("allocate memfd");
        let guard = cpu_write(fd.as_fd()).expect("memfd needs no sync");
        assert!(!guard.is_dmabuf());
        guard.end().expect("end");
    }
}
