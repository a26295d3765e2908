//! Operations on any dma-buf fd: CPU-access bracketing (`DMA_BUF_IOCTL_SYNC`),
//! implicit-fence readiness (poll), and sync_file export/import.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::ioctl_retry;
use super::uapi::*;

/// Which implicit fences an operation concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    ReadWrite,
}

impl Access {
    fn bits(self) -> u64 {
        match self {
            Access::Read => DMA_BUF_SYNC_READ,
            Access::Write => DMA_BUF_SYNC_WRITE,
            Access::ReadWrite => DMA_BUF_SYNC_RW,
        }
    }
}

/// `DMA_BUF_IOCTL_SYNC` with `START` or `END` and the access bits.
pub fn sync(fd: BorrowedFd<'_>, access: Access, end: bool) -> io::Result<()> {
    let mut arg = DmaBufSync {
        flags: access.bits() | if end { DMA_BUF_SYNC_END } else { DMA_BUF_SYNC_START },
    };
    // SAFETY: DMA_BUF_IOCTL_SYNC takes a struct dma_buf_sync.
    unsafe { ioctl_retry(fd, DMA_BUF_IOCTL_SYNC, &mut arg) }.map(drop)
}

/// An open CPU-access window on a mapped dma-buf: `SYNC_START` on creation,
/// `SYNC_END` on drop. The kernel requires CPU reads/writes through an mmap
/// of a dma-buf to be bracketed like this (it may flush caches or wait for
/// device fences in between).
///
/// For fds that are not dma-bufs (the host tier's memfd) the ioctl fails
/// with `ENOTTY` and the guard does nothing.
#[must_use = "CPU access ends when the guard is dropped"]
pub struct CpuAccess<'a> {
    fd: Option<BorrowedFd<'a>>,
    access: Access,
}

impl<'a> CpuAccess<'a> {
    /// Starts CPU access to `fd`.
    pub fn begin(fd: BorrowedFd<'a>, access: Access) -> io::Result<CpuAccess<'a>> {
        match sync(fd, access, false) {
            Ok(()) => Ok(CpuAccess { fd: Some(fd), access }),
            Err(e) if e.raw_os_error() == Some(libc::ENOTTY) => Ok(CpuAccess { fd: None, access }),
            Err(e) => Err(io::Error::new(e.kind(), format!("DMA_BUF_IOCTL_SYNC(START): {e}"))),
        }
    }

    /// Whether the fd is a dma-buf and the window is real.
    pub fn is_dmabuf(&self) -> bool {
        self.fd.is_some()
    }

    /// Ends the window now, reporting the error `Drop` would only log.
    pub fn end(mut self) -> io::Result<()> {
        match self.fd.take() {
            Some(fd) => sync(fd, self.access, true)
                .map_err(|e| io::Error::new(e.kind(), format!("DMA_BUF_IOCTL_SYNC(END): {e}"))),
            None => Ok(()),
        }
    }
}

impl Drop for CpuAccess<'_> {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            if let Err(e) = sync(fd, self.access, true) {
                eprintln!("DMA_BUF_IOCTL_SYNC(END) failed: {e}");
            }
        }
    }
}

/// `poll()`s `fd` for `events` and returns the revents (0 on timeout).
pub fn poll(fd: BorrowedFd<'_>, events: i16, timeout: Duration) -> io::Result<i16> {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r >= 0 {
            return Ok(if r == 0 { 0 } else { p.revents });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Whether a dma-buf (or sync_file) is readable right now: for a dma-buf,
/// `POLLIN` means every *write* fence has signaled (CPU or device reads may
/// proceed); for a sync_file, that its fence has signaled.
pub fn readable_now(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(poll(fd, libc::POLLIN, Duration::ZERO)? & libc::POLLIN != 0)
}

/// Waits up to `timeout` for [`readable_now`] to become true.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    Ok(poll(fd, libc::POLLIN, timeout)? & libc::POLLIN != 0)
}

/// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE`: a sync_file holding the dma-buf's current
/// fences for `access` (`Read` = the write fences a reader must wait for).
pub fn export_sync_file(fd: BorrowedFd<'_>, access: Access) -> io::Result<OwnedFd> {
    let mut arg = DmaBufSyncFile {
        flags: access.bits() as u32,
        fd: -1,
    };
    // SAFETY: EXPORT_SYNC_FILE takes a struct dma_buf_export_sync_file.
    unsafe { ioctl_retry(fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &mut arg) }
        .map_err(|e| io::Error::new(e.kind(), format!("DMA_BUF_IOCTL_EXPORT_SYNC_FILE: {e}")))?;
    if arg.fd < 0 {
        return Err(io::Error::other("EXPORT_SYNC_FILE returned no fd"));
    }
    // SAFETY: the kernel returned a new fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(arg.fd) })
}

/// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE`: adds the sync_file's fence to the
/// dma-buf's implicit fences (`Write` = as a write fence, which readers wait for).
pub fn import_sync_file(fd: BorrowedFd<'_>, sync_file: impl AsFd, access: Access) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut arg = DmaBufSyncFile {
        flags: access.bits() as u32,
        fd: sync_file.as_fd().as_raw_fd(),
    };
    // SAFETY: IMPORT_SYNC_FILE takes a struct dma_buf_import_sync_file.
    unsafe { ioctl_retry(fd, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &mut arg) }
        .map(drop)
        .map_err(|e| io::Error::new(e.kind(), format!("DMA_BUF_IOCTL_IMPORT_SYNC_FILE: {e}")))
}

/// The exporter's name from `/proc/self/fdinfo` (`exp_name:` line), e.g.
/// `udmabuf`, `system` (dma-heap) or `vgem`; `None` if `fd` is not a dma-buf.
pub fn exporter_name(fd: BorrowedFd<'_>) -> io::Result<Option<String>> {
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("exp_name:"))
        .map(|s| s.trim().to_owned()))
}

/// The dma-buf's size as the kernel reports it (`lseek(SEEK_END)`).
pub fn size(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let end = rustix::fs::seek(fd, rustix::fs::SeekFrom::End(0))?;
    rustix::fs::seek(fd, rustix::fs::SeekFrom::Start(0))?;
    Ok(end)
}
