//! Helpers for any dma-buf fd: the CPU-access bracket (a guard over the
//! importer's `DMA_BUF_IOCTL_SYNC`), implicit-fence readiness by poll, the
//! exporter's name and the size. Every dma-buf ioctl is the importer's
//! (`importer::sync::implicit`: `dma_buf_sync`, `export_sync_file`,
//! `import_sync_file`); the test kit does not define them again.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use importer::sync::implicit::{dma_buf_sync, SyncDir, SyncOutcome};

/// An open CPU-access window on a mapped dma-buf: `SYNC_START` on creation,
/// `SYNC_END` on drop. The kernel requires CPU reads/writes through an mmap
/// of a dma-buf to be bracketed like this (it may flush caches or wait for
/// device fences in between).
///
/// For fds that are not dma-bufs (the host tier's memfd) the ioctl fails
/// with `ENOTTY` ([`SyncOutcome::NotDmabuf`]) and the guard does nothing.
#[must_use = "CPU access ends when the guard is dropped"]
pub struct CpuAccess<'a> {
    fd: Option<BorrowedFd<'a>>,
    dir: SyncDir,
}

impl<'a> CpuAccess<'a> {
    /// Starts CPU access to `fd` in direction `dir`.
    pub fn begin(fd: BorrowedFd<'a>, dir: SyncDir) -> io::Result<CpuAccess<'a>> {
        match dma_buf_sync(fd, dir, false) {
            Ok(SyncOutcome::Synced) => Ok(CpuAccess { fd: Some(fd), dir }),
            Ok(SyncOutcome::NotDmabuf) => Ok(CpuAccess { fd: None, dir }),
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
            Some(fd) => end(fd, self.dir),
            None => Ok(()),
        }
    }
}

/// `DMA_BUF_IOCTL_SYNC(END)` of a window that started as a dma-buf's.
fn end(fd: BorrowedFd<'_>, dir: SyncDir) -> io::Result<()> {
    match dma_buf_sync(fd, dir, true) {
        Ok(SyncOutcome::Synced) => Ok(()),
        Ok(SyncOutcome::NotDmabuf) => Err(io::Error::other(
            "DMA_BUF_IOCTL_SYNC(END): ENOTTY on an fd whose START succeeded",
        )),
        Err(e) => Err(io::Error::new(e.kind(), format!("DMA_BUF_IOCTL_SYNC(END): {e}"))),
    }
}

impl Drop for CpuAccess<'_> {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            if let Err(e) = end(fd, self.dir) {
                eprintln!("{e}");
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
