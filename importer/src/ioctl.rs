//! `_IOC` encoding and an EINTR/EAGAIN-restarting ioctl: the one place the
//! project issues raw ioctls from (dma-buf, sync_file, syncobj, and the test
//! clients' udmabuf/dma-heap/vgem helpers).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;

const fn ioc(dir: u64, ty: u8, nr: u8, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((ty as u64) << 8) | nr as u64
}
pub const fn iow<T>(ty: u8, nr: u8) -> u64 {
    ioc(IOC_WRITE, ty, nr, std::mem::size_of::<T>())
}
pub const fn iowr<T>(ty: u8, nr: u8) -> u64 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, std::mem::size_of::<T>())
}

/// `ioctl(fd, request, arg)`, restarted on `EINTR`/`EAGAIN` (the dma-buf uapi
/// documents both as "try again": locking rule A1, docs/locking-rules.md).
///
/// # Safety
/// `arg` must point to the struct `request` expects.
pub unsafe fn ioctl_retry<T>(fd: BorrowedFd<'_>, request: u64, arg: *mut T) -> io::Result<libc::c_int> {
    loop {
        // SAFETY: forwarded to the caller.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
        if r >= 0 {
            return Ok(r);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) | Some(libc::EAGAIN) => continue,
            _ => return Err(err),
        }
    }
}
