//! `/dev/udmabuf`: turns sealed memfd pages into a real dma-buf.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};

use super::uapi::*;
use super::{ioctl_retry, with_path};

pub const DEVICE: &str = "/dev/udmabuf";

/// An open `/dev/udmabuf`.
#[derive(Debug)]
pub struct Udmabuf {
    dev: OwnedFd,
}

/// A udmabuf and the memfd whose pages back it.
#[derive(Debug)]
pub struct UdmabufBuffer {
    /// The dma-buf.
    pub dmabuf: OwnedFd,
    /// The backing memfd (sealed against shrinking).
    pub memfd: OwnedFd,
    /// Size in bytes (a multiple of the page size).
    pub size: usize,
}

/// `size` rounded up to the page size (udmabuf and dma-heaps allocate pages).
pub fn page_align(size: usize) -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    size.div_ceil(page) * page
}

impl Udmabuf {
    /// Opens `/dev/udmabuf`.
    pub fn open() -> io::Result<Udmabuf> {
        let dev = rustix::fs::open(DEVICE, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| with_path(e.into(), &format!("open {DEVICE}")))?;
        Ok(Udmabuf { dev })
    }

    /// Creates a memfd of `size` bytes rounded up to whole pages, seals it
    /// against shrinking (`UDMABUF_CREATE` requires `F_SEAL_SHRINK` and
    /// refuses `F_SEAL_WRITE`) and wraps it with `UDMABUF_CREATE`.
    pub fn create(&self, size: usize) -> io::Result<UdmabufBuffer> {
        if size == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty udmabuf"));
        }
        let size = page_align(size);
        let memfd = rustix::fs::memfd_create("udmabuf-test-buffer", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
        rustix::fs::ftruncate(&memfd, size as u64)?;
        rustix::fs::fcntl_add_seals(&memfd, SealFlags::SHRINK | SealFlags::GROW)?;
        let mut arg = UdmabufCreate {
            memfd: memfd.as_raw_fd() as u32,
            flags: UDMABUF_FLAGS_CLOEXEC,
            offset: 0,
            size: size as u64,
        };
        // SAFETY: UDMABUF_CREATE takes a struct udmabuf_create.
        let fd = unsafe { ioctl_retry(self.dev.as_fd(), UDMABUF_CREATE, &mut arg) }
            .map_err(|e| with_path(e, "UDMABUF_CREATE"))?;
        // SAFETY: UDMABUF_CREATE returns a new dma-buf fd that we now own.
        let dmabuf = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(UdmabufBuffer { dmabuf, memfd, size })
    }
}
