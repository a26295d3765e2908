//! DRM syncobj timelines on a render node (`wp_linux_drm_syncobj_v1`), through
//! drm-ffi's ioctl wrappers; only `FD_TO_HANDLE` with `IMPORT_SYNC_FILE` into an
//! *existing* handle is written out here (drm-ffi always passes handle 0).
//!
//! Locking rule A5 (docs/locking-rules.md): point → sync_file = TRANSFER the point into a fresh binary syncobj,
//! then HANDLE_TO_FD(EXPORT_SYNC_FILE); sync_file → point = FD_TO_HANDLE
//! (IMPORT_SYNC_FILE) into a binary syncobj, then TRANSFER it to the point.
//! `DRM_IOCTL_SYNCOBJ_EVENTFD` (Linux 6.6) lets the event loop wait for a
//! point without blocking; `WAIT_AVAILABLE` fires once a fence is attached
//! (materialized), not once it signaled.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use drm_ffi::syncobj as ffi;

use super::sync_file::SyncFile;
use crate::ioctl::{ioctl_retry, iowr};

/// What a render node can do with syncobjs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncobjCaps {
    /// `DRM_CAP_SYNCOBJ`.
    pub syncobj: bool,
    /// `DRM_CAP_SYNCOBJ_TIMELINE`.
    pub timeline: bool,
    /// `DRM_IOCTL_SYNCOBJ_EVENTFD` exists (Linux 6.6+).
    pub eventfd: bool,
}

impl SyncobjCaps {
    /// Whether `wp_linux_drm_syncobj_v1` can be offered on this node.
    pub fn explicit_sync(&self) -> bool {
        self.syncobj && self.timeline && self.eventfd
    }
}

/// An open DRM render node.
#[derive(Debug)]
pub struct RenderNode {
    fd: OwnedFd,
    pub path: PathBuf,
}

impl AsFd for RenderNode {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

const DRM_CAP_SYNCOBJ: u64 = 0x13;
const DRM_CAP_SYNCOBJ_TIMELINE: u64 = 0x14;

impl RenderNode {
    pub fn open(path: impl AsRef<Path>) -> io::Result<RenderNode> {
        let path = path.as_ref().to_owned();
        let fd = rustix::fs::open(
            &path,
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("open {}: {e}", path.display())))?;
        Ok(RenderNode { fd, path })
    }

    /// Every `/dev/dri/renderD*`, by name.
    pub fn paths() -> io::Result<Vec<PathBuf>> {
        let mut nodes: Vec<PathBuf> = std::fs::read_dir("/dev/dri")?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("renderD"))
            })
            .collect();
        nodes.sort();
        Ok(nodes)
    }

    /// The first `/dev/dri/renderD*` whose syncobj caps satisfy `want`.
    pub fn find(want: impl Fn(&SyncobjCaps) -> bool) -> io::Result<RenderNode> {
        let mut seen = Vec::new();
        for path in RenderNode::paths()? {
            match RenderNode::open(&path) {
                Ok(node) => {
                    let caps = node.probe();
                    if want(&caps) {
                        return Ok(node);
                    }
                    seen.push(format!("{}: {caps:?}", path.display()));
                }
                Err(e) => seen.push(e.to_string()),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no render node with the wanted syncobj caps (seen: {seen:?})"),
        ))
    }

    /// The node for `(major, minor)` (from `VK_EXT_physical_device_drm`).
    pub fn open_dev(major: i64, minor: i64) -> io::Result<RenderNode> {
        for entry in std::fs::read_dir("/dev/dri")? {
            let path = entry?.path();
            if let Ok(st) = rustix::fs::stat(&path) {
                if rustix::fs::major(st.st_rdev) as i64 == major && rustix::fs::minor(st.st_rdev) as i64 == minor {
                    return RenderNode::open(path);
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no /dev/dri node {major}:{minor}"),
        ))
    }

    /// Probes `DRM_CAP_SYNCOBJ`, `DRM_CAP_SYNCOBJ_TIMELINE` and the eventfd
    /// ioctl (an eventfd on handle 0 gives `ENOENT` where the ioctl exists,
    /// `EINVAL`/`ENOTTY`/`EOPNOTSUPP` where it does not: Mutter's test).
    pub fn probe(&self) -> SyncobjCaps {
        let cap = |c| {
            drm_ffi::get_capability(self.fd.as_fd(), c)
                .map(|r| r.value != 0)
                .unwrap_or(false)
        };
        let syncobj = cap(DRM_CAP_SYNCOBJ);
        let timeline = cap(DRM_CAP_SYNCOBJ_TIMELINE);
        let eventfd = syncobj && {
            match rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC) {
                Ok(efd) => matches!(ffi::eventfd(self.fd.as_fd(), 0, 0, efd.as_fd(), false),
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT)),
                Err(_) => false,
            }
        };
        SyncobjCaps {
            syncobj,
            timeline,
            eventfd,
        }
    }

    fn dup(&self) -> io::Result<Arc<OwnedFd>> {
        Ok(Arc::new(self.fd.try_clone()?))
    }
}

/// A syncobj (binary or timeline) on a render node; destroyed on drop.
#[derive(Debug)]
pub struct Syncobj {
    dev: Arc<OwnedFd>,
    handle: u32,
}

/// `struct drm_syncobj_handle` as of Linux 4.x (the `point` field of newer
/// kernels is zero-filled by drm_ioctl for a shorter struct).
#[repr(C)]
struct DrmSyncobjHandle {
    handle: u32,
    flags: u32,
    fd: i32,
    pad: u32,
}
const DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE: u32 = 1;
const DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE: u64 = iowr::<DrmSyncobjHandle>(b'd', 0xC2);

impl Syncobj {
    /// A new syncobj (a timeline is just a syncobj used with points).
    pub fn create(node: &RenderNode, signaled: bool) -> io::Result<Syncobj> {
        let dev = node.dup()?;
        let handle = ffi::create(dev.as_fd(), signaled)
            .map_err(ctx("DRM_IOCTL_SYNCOBJ_CREATE"))?
            .handle;
        Ok(Syncobj { dev, handle })
    }

    /// Imports a syncobj fd (a client's timeline).
    pub fn import(node: &RenderNode, fd: BorrowedFd<'_>) -> io::Result<Syncobj> {
        let dev = node.dup()?;
        let handle = ffi::fd_to_handle(dev.as_fd(), fd, false)
            .map_err(ctx("DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE"))?
            .handle;
        Ok(Syncobj { dev, handle })
    }

    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// The syncobj as an fd another process (or node) can import.
    pub fn export(&self) -> io::Result<OwnedFd> {
        let r =
            ffi::handle_to_fd(self.dev.as_fd(), self.handle, false).map_err(ctx("DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD"))?;
        // SAFETY: a new fd from the kernel.
        Ok(unsafe { OwnedFd::from_raw_fd(r.fd) })
    }

    /// `TIMELINE_SIGNAL`: signals `point` from the CPU.
    pub fn signal(&self, point: u64) -> io::Result<()> {
        ffi::timeline_signal(self.dev.as_fd(), &[self.handle], &[point])
            .map(drop)
            .map_err(ctx("DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL"))
    }

    /// `QUERY`: the last signaled point.
    pub fn query(&self) -> io::Result<u64> {
        let mut points = [0u64];
        ffi::query(self.dev.as_fd(), &[self.handle], &mut points, false).map_err(ctx("DRM_IOCTL_SYNCOBJ_QUERY"))?;
        Ok(points[0])
    }

    /// Whether `point` has signaled (non-blocking).
    pub fn is_signaled(&self, point: u64) -> io::Result<bool> {
        Ok(self.query()? >= point)
    }

    /// Whether a fence is attached for `point` (materialized), non-blocking.
    pub fn is_available(&self, point: u64) -> io::Result<bool> {
        match ffi::timeline_wait(self.dev.as_fd(), &[self.handle], &[point], 0, true, false, true) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) || e.raw_os_error() == Some(libc::EINVAL) => Ok(false),
            Err(e) => Err(ctx("DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT")(e)),
        }
    }

    /// Blocking wait for `point` (signaled, or only available with
    /// `available`), up to `timeout`; false on timeout. Tests only: the
    /// compositor waits through [`Syncobj::eventfd`].
    ///
    /// Locks: none may be a reservation (`lockdep::might_block`).
    pub fn wait(&self, point: u64, timeout: Duration, available: bool) -> io::Result<bool> {
        crate::lockdep::might_block("DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT (Syncobj::wait)");
        let deadline = monotonic_ns() + timeout.as_nanos() as i64;
        match ffi::timeline_wait(
            self.dev.as_fd(),
            &[self.handle],
            &[point],
            deadline,
            true,
            true,
            available,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(false),
            Err(e) => Err(ctx("DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT")(e)),
        }
    }

    /// `DRM_IOCTL_SYNCOBJ_EVENTFD`: an eventfd (non-blocking, cloexec) that
    /// becomes readable when `point` signals, or with `available` when a
    /// fence for it is attached.
    pub fn eventfd(&self, point: u64, available: bool) -> io::Result<OwnedFd> {
        let efd = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?;
        ffi::eventfd(self.dev.as_fd(), self.handle, point, efd.as_fd(), available)
            .map_err(ctx("DRM_IOCTL_SYNCOBJ_EVENTFD"))?;
        Ok(efd)
    }

    /// point → sync_file: TRANSFER into a fresh binary syncobj, export it.
    /// Fails (`EINVAL`/`ENOENT`) while the point has no fence attached.
    pub fn export_point(&self, point: u64) -> io::Result<SyncFile> {
        let dev = self.dev.as_fd();
        let tmp = ffi::create(dev, false).map_err(ctx("DRM_IOCTL_SYNCOBJ_CREATE"))?.handle;
        let result = ffi::transfer(dev, self.handle, tmp, point, 0)
            .map_err(ctx("DRM_IOCTL_SYNCOBJ_TRANSFER"))
            .and_then(|_| {
                ffi::handle_to_fd(dev, tmp, true).map_err(ctx("DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD(EXPORT_SYNC_FILE)"))
            });
        let _ = ffi::destroy(dev, tmp);
        // SAFETY: a new fd from the kernel.
        Ok(SyncFile::from_kernel(unsafe { OwnedFd::from_raw_fd(result?.fd) }))
    }

    /// sync_file → point: import into a fresh binary syncobj, TRANSFER it to
    /// `point`. The point signals when the sync_file's fence does.
    pub fn import_point(&self, point: u64, sync_file: &SyncFile) -> io::Result<()> {
        let dev = self.dev.as_fd();
        let tmp = ffi::create(dev, false).map_err(ctx("DRM_IOCTL_SYNCOBJ_CREATE"))?.handle;
        let mut arg = DrmSyncobjHandle {
            handle: tmp,
            flags: DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
            fd: sync_file.as_raw_fd(),
            pad: 0,
        };
        // SAFETY: SYNCOBJ_FD_TO_HANDLE takes a struct drm_syncobj_handle (prefix).
        let result = unsafe { ioctl_retry(dev, DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &mut arg) }
            .map_err(ctx("DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE(IMPORT_SYNC_FILE)"))
            .and_then(|_| ffi::transfer(dev, tmp, self.handle, 0, point).map_err(ctx("DRM_IOCTL_SYNCOBJ_TRANSFER")));
        let _ = ffi::destroy(dev, tmp);
        result.map(drop)
    }
}

impl Drop for Syncobj {
    fn drop(&mut self) {
        let _ = ffi::destroy(self.dev.as_fd(), self.handle);
    }
}

fn ctx(what: &'static str) -> impl Fn(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn monotonic_ns() -> i64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}
