//! An owned `sync_file` fd (`linux/sync_file.h`): readiness by poll, merge,
//! and status through `SYNC_IOC_FILE_INFO`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::ioctl::{ioctl_retry, iowr};

/// `struct sync_merge_data`.
#[repr(C)]
struct SyncMergeData {
    name: [u8; 32],
    fd2: i32,
    fence: i32,
    flags: u32,
    pad: u32,
}

/// `struct sync_file_info` (without the per-fence array: `num_fences = 0`
/// asks only for the summary).
#[repr(C)]
struct SyncFileInfoRaw {
    name: [u8; 32],
    status: i32,
    flags: u32,
    num_fences: u32,
    pad: u32,
    sync_fence_info: u64,
}

const SYNC_IOC_MAGIC: u8 = b'>';
const SYNC_IOC_MERGE: u64 = iowr::<SyncMergeData>(SYNC_IOC_MAGIC, 3);
const SYNC_IOC_FILE_INFO: u64 = iowr::<SyncFileInfoRaw>(SYNC_IOC_MAGIC, 4);

/// The state of a sync_file's fence(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceStatus {
    /// Not signaled yet.
    Active,
    /// Signaled without error.
    Signaled,
    /// Signaled with an error (negative errno).
    Error(i32),
}

/// What `SYNC_IOC_FILE_INFO` says about a sync_file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFileInfo {
    pub name: String,
    pub status: FenceStatus,
    pub num_fences: u32,
}

/// An owned sync_file. Dropping it closes the fd; the fence lives on in
/// whatever else references it.
#[derive(Debug)]
pub struct SyncFile(OwnedFd);

impl SyncFile {
    /// Wraps an fd that must be a sync_file (checked with `SYNC_IOC_FILE_INFO`).
    pub fn from_fd(fd: OwnedFd) -> io::Result<SyncFile> {
        let sf = SyncFile(fd);
        sf.info()?;
        Ok(sf)
    }

    /// Wraps an fd the kernel just returned as a sync_file (no check).
    pub(crate) fn from_kernel(fd: OwnedFd) -> SyncFile {
        SyncFile(fd)
    }

    pub fn into_fd(self) -> OwnedFd {
        self.0
    }

    pub fn try_clone(&self) -> io::Result<SyncFile> {
        Ok(SyncFile(self.0.try_clone()?))
    }

    /// Non-blocking: whether the fence has signaled (poll POLLIN, timeout 0).
    pub fn is_signaled(&self) -> bool {
        poll_in(self.0.as_fd(), Duration::ZERO).unwrap_or(true)
    }

    /// Blocks up to `timeout` for the fence. Never call it from the event
    /// loop or with a reservation held (`lockdep::might_block`); tests and
    /// teardown only.
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        if !timeout.is_zero() {
            crate::lockdep::might_block("sync_file wait (SyncFile::wait)");
        }
        poll_in(self.0.as_fd(), timeout)
    }

    /// `SYNC_IOC_MERGE`: a new sync_file signaled when both are.
    pub fn merge(&self, other: &SyncFile, name: &str) -> io::Result<SyncFile> {
        let mut arg = SyncMergeData {
            name: name_bytes(name),
            fd2: other.0.as_raw_fd(),
            fence: -1,
            flags: 0,
            pad: 0,
        };
        // SAFETY: SYNC_IOC_MERGE takes a struct sync_merge_data.
        unsafe { ioctl_retry(self.0.as_fd(), SYNC_IOC_MERGE, &mut arg) }
            .map_err(|e| io::Error::new(e.kind(), format!("SYNC_IOC_MERGE: {e}")))?;
        // SAFETY: the kernel returned a new fd we own.
        Ok(SyncFile(unsafe { OwnedFd::from_raw_fd(arg.fence) }))
    }

    /// `SYNC_IOC_FILE_INFO`: name, status and fence count.
    pub fn info(&self) -> io::Result<SyncFileInfo> {
        let mut arg = SyncFileInfoRaw {
            name: [0; 32],
            status: 0,
            flags: 0,
            num_fences: 0,
            pad: 0,
            sync_fence_info: 0,
        };
        // SAFETY: SYNC_IOC_FILE_INFO takes a struct sync_file_info; with
        // num_fences = 0 the kernel writes no fence array.
        unsafe { ioctl_retry(self.0.as_fd(), SYNC_IOC_FILE_INFO, &mut arg) }
            .map_err(|e| io::Error::new(e.kind(), format!("SYNC_IOC_FILE_INFO: {e}")))?;
        let len = arg.name.iter().position(|&b| b == 0).unwrap_or(arg.name.len());
        let status = match arg.status {
            1 => FenceStatus::Signaled,
            0 => FenceStatus::Active,
            e => FenceStatus::Error(e),
        };
        Ok(SyncFileInfo {
            name: String::from_utf8_lossy(&arg.name[..len]).into_owned(),
            status,
            num_fences: arg.num_fences,
        })
    }

    /// The status alone (see [`SyncFile::info`]).
    pub fn status(&self) -> io::Result<FenceStatus> {
        Ok(self.info()?.status)
    }
}

impl AsFd for SyncFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for SyncFile {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

fn name_bytes(name: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    let n = name.len().min(31);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}

/// `poll(POLLIN)` with a timeout; true when readable (fence signaled).
pub fn poll_in(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r >= 0 {
            return Ok(r > 0 && p.revents & (libc::POLLIN | libc::POLLERR) != 0);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}
