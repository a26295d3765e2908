//! Implicit sync on a dma-buf: every dma-buf ioctl the project issues lives
//! here.
//!
//! * `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` / `IMPORT_SYNC_FILE` (Linux 6.0): the
//!   buffer's reservation fences as a sync_file, and a sync_file added to
//!   them; poll is the fallback where the kernel (or the fd: the host tier's
//!   memfd) has no such ioctl (`ENOTTY`). Locking rule A4
//!   (docs/locking-rules.md): a `READ` export gives the writers' fences (what
//!   a reader waits for), a `WRITE` export every fence; a `READ` import adds a
//!   fence later writers wait for, a `WRITE` import one everybody waits for.
//!   Export → GPU submit → import is not atomic: the caller serializes its own
//!   work on one buffer across it (the renderer does it inside one frame
//!   submission, under the buffer's reservation).
//! * `DMA_BUF_IOCTL_SYNC` ([`dma_buf_sync`]): the START/END bracket around CPU
//!   access through a mapping (rule A1). It gives cache coherency, not GPU
//!   completion, and may sleep: it calls `lockdep::might_block`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::sync_file::{poll_in, SyncFile};
use crate::ioctl::{ioctl_retry, iow, iowr};
use crate::lockdep;

/// Which implicit fences an operation concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Export: the write fences (what a reader waits for). Import: add a read fence.
    Read,
    /// Export: all fences. Import: add a write fence.
    Write,
}

impl Access {
    fn bits(self) -> u32 {
        match self {
            Access::Read => 1,
            Access::Write => 2,
        }
    }
}

#[repr(C)]
struct DmaBufSyncFile {
    flags: u32,
    fd: i32,
}

const DMA_BUF_BASE: u8 = b'b';
/// `_IOW('b', 0, struct dma_buf_sync { __u64 flags; })`.
const DMA_BUF_IOCTL_SYNC: u64 = iow::<u64>(DMA_BUF_BASE, 0);
const DMA_BUF_IOCTL_EXPORT_SYNC_FILE: u64 = iowr::<DmaBufSyncFile>(DMA_BUF_BASE, 2);
const DMA_BUF_IOCTL_IMPORT_SYNC_FILE: u64 = iow::<DmaBufSyncFile>(DMA_BUF_BASE, 3);

/// Errors of the fence ioctls.
#[derive(Debug, thiserror::Error)]
pub enum FenceIoError {
    /// `ENOTTY`: the kernel (or the fd) has no sync_file ioctls; use poll.
    #[error("no sync_file ioctls on this fd (ENOTTY): fall back to poll")]
    Unsupported,
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl FenceIoError {
    pub fn is_unsupported(&self) -> bool {
        matches!(self, FenceIoError::Unsupported)
    }
}

fn map_err(e: io::Error, what: &str) -> FenceIoError {
    if e.raw_os_error() == Some(libc::ENOTTY) {
        FenceIoError::Unsupported
    } else {
        FenceIoError::Io(io::Error::new(e.kind(), format!("{what}: {e}")))
    }
}

/// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE`: a sync_file of the dma-buf's current
/// fences for `access` (an already-signaled stub fence when there are none).
pub fn export_sync_file(dmabuf: BorrowedFd<'_>, access: Access) -> Result<SyncFile, FenceIoError> {
    let mut arg = DmaBufSyncFile {
        flags: access.bits(),
        fd: -1,
    };
    // SAFETY: EXPORT_SYNC_FILE takes a struct dma_buf_export_sync_file.
    unsafe { ioctl_retry(dmabuf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &mut arg) }
        .map_err(|e| map_err(e, "DMA_BUF_IOCTL_EXPORT_SYNC_FILE"))?;
    if arg.fd < 0 {
        return Err(FenceIoError::Io(io::Error::other("EXPORT_SYNC_FILE returned no fd")));
    }
    // SAFETY: the kernel returned a new fd we own.
    Ok(SyncFile::from_kernel(unsafe { OwnedFd::from_raw_fd(arg.fd) }))
}

/// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE`: adds `sync_file`'s fence to the
/// dma-buf as a read (`Access::Read`) or write (`Access::Write`) fence.
pub fn import_sync_file(dmabuf: BorrowedFd<'_>, sync_file: &SyncFile, access: Access) -> Result<(), FenceIoError> {
    let mut arg = DmaBufSyncFile {
        flags: access.bits(),
        fd: sync_file.as_fd().as_raw_fd(),
    };
    // SAFETY: IMPORT_SYNC_FILE takes a struct dma_buf_import_sync_file.
    unsafe { ioctl_retry(dmabuf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &mut arg) }
        .map(drop)
        .map_err(|e| map_err(e, "DMA_BUF_IOCTL_IMPORT_SYNC_FILE"))
}

/// Non-blocking readiness by poll (the fallback of the ioctls): `Read` =
/// POLLIN (the writers are done), `Write` = POLLOUT (everyone is done).
pub fn poll_ready(dmabuf: BorrowedFd<'_>, access: Access) -> io::Result<bool> {
    match access {
        Access::Read => poll_in(dmabuf, Duration::ZERO),
        Access::Write => {
            let mut p = libc::pollfd {
                fd: dmabuf.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            };
            loop {
                // SAFETY: one valid pollfd.
                let r = unsafe { libc::poll(&mut p, 1, 0) };
                if r >= 0 {
                    return Ok(r > 0 && p.revents & libc::POLLOUT != 0);
                }
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    return Err(e);
                }
            }
        }
    }
}

/// What a reader of `dmabuf` must wait for before sampling it: `None` when
/// nothing is pending, `Some(fence)` for an unsignaled export, and `Err` with
/// [`FenceIoError::Unsupported`] when the caller has to poll the dma-buf itself.
pub fn pending_writes(dmabuf: BorrowedFd<'_>) -> Result<Option<SyncFile>, FenceIoError> {
    let sf = export_sync_file(dmabuf, Access::Read)?;
    Ok((!sf.is_signaled()).then_some(sf))
}

const SYNC_READ: u64 = 1;
const SYNC_WRITE: u64 = 2;
const SYNC_END: u64 = 4;

/// Direction of a CPU access; START and END must use the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncDir {
    Read,
    Write,
    ReadWrite,
}

impl SyncDir {
    fn bits(self) -> u64 {
        match self {
            SyncDir::Read => SYNC_READ,
            SyncDir::Write => SYNC_WRITE,
            SyncDir::ReadWrite => SYNC_READ | SYNC_WRITE,
        }
    }
}

/// What `DMA_BUF_IOCTL_SYNC` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Cache maintenance done.
    Synced,
    /// ENOTTY: not a dma-buf (a memfd); nothing to maintain.
    NotDmabuf,
}

/// One `DMA_BUF_IOCTL_SYNC`, START (`end == false`) or END, restarted on
/// EINTR/EAGAIN (rule A1).
///
/// Locks: no reservation may be held (it may sleep; `lockdep::might_block`).
pub fn dma_buf_sync(fd: BorrowedFd<'_>, dir: SyncDir, end: bool) -> io::Result<SyncOutcome> {
    lockdep::might_block("DMA_BUF_IOCTL_SYNC");
    let mut flags: u64 = dir.bits() | if end { SYNC_END } else { 0 };
    // SAFETY: DMA_BUF_IOCTL_SYNC reads one u64 (struct dma_buf_sync).
    match unsafe { ioctl_retry(fd, DMA_BUF_IOCTL_SYNC, &mut flags) } {
        Ok(_) => Ok(SyncOutcome::Synced),
        Err(e) if e.raw_os_error() == Some(libc::ENOTTY) => Ok(SyncOutcome::NotDmabuf),
        Err(e) => Err(e),
    }
}
