//! `/dev/dma_heap/<name>`: dma-buf allocation from a DMA-BUF heap.

use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use rustix::fs::{Mode, OFlags};

use super::uapi::*;
use super::{ioctl_retry, with_path};

/// An open dma-heap.
#[derive(Debug)]
pub struct DmaHeap {
    dev: OwnedFd,
    path: String,
}

impl DmaHeap {
    /// Opens `/dev/dma_heap/<name>` (e.g. `system`).
    pub fn open(name: &str) -> io::Result<DmaHeap> {
        let path = format!("/dev/dma_heap/{name}");
        let dev = rustix::fs::open(&*path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| with_path(e.into(), &format!("open {path}")))?;
        Ok(DmaHeap { dev, path })
    }

    /// `DMA_HEAP_IOCTL_ALLOC` of `size` bytes rounded up to whole pages; the
    /// returned dma-buf is read/write mappable.
    pub fn alloc(&self, size: usize) -> io::Result<OwnedFd> {
        if size == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty allocation"));
        }
        let mut arg = DmaHeapAllocationData {
            len: super::udmabuf::page_align(size) as u64,
            fd: 0,
            fd_flags: (libc::O_RDWR | libc::O_CLOEXEC) as u32,
            heap_flags: 0,
        };
        // SAFETY: DMA_HEAP_IOCTL_ALLOC takes a struct dma_heap_allocation_data.
        unsafe { ioctl_retry(self.dev.as_fd(), DMA_HEAP_IOCTL_ALLOC, &mut arg) }
            .map_err(|e| with_path(e, &format!("DMA_HEAP_IOCTL_ALLOC on {}", self.path)))?;
        // SAFETY: the kernel returned a new dma-buf fd that we now own.
        Ok(unsafe { OwnedFd::from_raw_fd(arg.fd as i32) })
    }
}
