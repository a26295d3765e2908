//! `DMA_BUF_IOCTL_SYNC` and waiting for implicit write fences.
//!
//! DOC: both may sleep, so both call `lockdep::might_block` and are only
//! reached from [`super::with_cpu_access`] after the reservation is unlocked
//! (rule B2). SYNC gives cache coherency, not GPU completion (rule A1): the
//! implicit write fences are waited for first, through [`ImplicitFences`].

use std::os::fd::BorrowedFd;
use std::time::Duration;

use super::{CpuError, CpuMapping};
use crate::lockdep;

/// `_IOW('b', 0, struct dma_buf_sync { __u64 flags; })`.
const DMA_BUF_IOCTL_SYNC: u64 = crate::ioctl::iow::<u64>(b'b', 0);
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

/// What the ioctl did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Cache maintenance done.
    Synced,
    /// ENOTTY: not a dma-buf (a memfd); nothing to maintain.
    NotDmabuf,
}

/// One `DMA_BUF_IOCTL_SYNC`, START (`end == false`) or END, restarted on
/// EINTR/EAGAIN. Locks: no reservation may be held (may sleep).
pub fn dma_buf_sync(fd: BorrowedFd<'_>, dir: SyncDir, end: bool) -> Result<SyncOutcome, CpuError> {
    lockdep::might_block("DMA_BUF_IOCTL_SYNC");
    let flags: u64 = dir.bits() | if end { SYNC_END } else { 0 };
    let what = if end { "END" } else { "START" };
    let mut arg = flags;
    // SAFETY: DMA_BUF_IOCTL_SYNC reads one u64 (struct dma_buf_sync).
    match unsafe { crate::ioctl::ioctl_retry(fd, DMA_BUF_IOCTL_SYNC, &mut arg) } {
        Ok(_) => Ok(SyncOutcome::Synced),
        Err(e) if e.raw_os_error() == Some(libc::ENOTTY) => Ok(SyncOutcome::NotDmabuf),
        Err(source) => Err(CpuError::Sync { what, source }),
    }
}

/// How to wait for the implicit write fences before reading. Called with no
/// lock held, before SYNC START.
pub trait ImplicitFences {
    fn wait_for_writers(&self, mapping: &CpuMapping) -> Result<(), CpuError>;
}

/// Polls every mapped fd for POLLIN (last writer's fences signaled, rule A3)
/// up to `timeout` each. A memfd is always readable.
#[derive(Debug, Clone, Copy)]
pub struct PollReadable {
    pub timeout: Duration,
}

impl ImplicitFences for PollReadable {
    fn wait_for_writers(&self, mapping: &CpuMapping) -> Result<(), CpuError> {
        use rustix::event::{poll, PollFd, PollFlags};
        lockdep::might_block("poll(POLLIN) for implicit write fences");
        let ms = i32::try_from(self.timeout.as_millis()).unwrap_or(i32::MAX);
        for fd in mapping.fds() {
            loop {
                let mut fds = [PollFd::new(&fd, PollFlags::IN)];
                match poll(&mut fds, ms) {
                    Ok(0) => return Err(CpuError::FenceTimeout),
                    Ok(_) => break,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(CpuError::Wait(e.into())),
                }
            }
        }
        Ok(())
    }
}

/// The caller already waited (explicit sync: a client's acquire point, or a
/// sync_file from `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` waited on unlocked).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlreadyWaited;

impl ImplicitFences for AlreadyWaited {
    fn wait_for_writers(&self, _: &CpuMapping) -> Result<(), CpuError> {
        Ok(())
    }
}

impl<F: Fn(&CpuMapping) -> Result<(), CpuError>> ImplicitFences for F {
    fn wait_for_writers(&self, mapping: &CpuMapping) -> Result<(), CpuError> {
        self(mapping)
    }
}
