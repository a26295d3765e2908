//! Timeline points of `wp_linux_drm_syncobj_v1`, and the release point's
//! lifetime.
//!
//! DOC: who signals a release point, and when
//!
//! A committed buffer's release point is wrapped in a [`Release`]. Clones of
//! it are held by whatever may still read the buffer: the surface's current
//! state (until the client commits another buffer, detaches, or the surface
//! goes away) and every frame that sampled the buffer and has not been seen
//! done (`sync::release`). When the last clone drops, the point is signaled:
//!
//! * **from the kernel** when the dma-buf still has unsignaled fences:
//!   `EXPORT_SYNC_FILE(WRITE)` on every plane (all readers and writers: our
//!   frame's READ fence where the device exported one, any other implicit
//!   consumer's, e.g. a capture client or a scan-out importer) is merged and
//!   transferred into the point (sync_file → point). This is bridging row 2
//!   (docs/sync.md): implicit fences become the explicit release point, and
//!   the client's next write waits for the GPU, not for us;
//! * **from the CPU** (`TIMELINE_SIGNAL`) when nothing is pending any more.
//!
//! Neither blocks. Locks: none; a `Release` never touches the buffer's
//! reservation (it only issues fence ioctls on the dma-buf fds).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use importer::sync::{implicit as fences, Access, SyncFile, Syncobj};
use smithay::backend::allocator::dmabuf::Dmabuf;
use tracing::{debug, warn};

/// A point on a client's timeline (an imported syncobj).
#[derive(Debug, Clone)]
pub struct TimelinePoint {
    pub timeline: Arc<Syncobj>,
    pub point: u64,
}

impl PartialEq for TimelinePoint {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.timeline, &other.timeline) && self.point == other.point
    }
}

impl TimelinePoint {
    pub fn new(timeline: Arc<Syncobj>, hi: u32, lo: u32) -> TimelinePoint {
        TimelinePoint {
            timeline,
            point: (u64::from(hi) << 32) | u64::from(lo),
        }
    }

    /// Whether both points are on the same client timeline object.
    pub fn same_timeline(&self, other: &TimelinePoint) -> bool {
        Arc::ptr_eq(&self.timeline, &other.timeline)
    }

    /// Whether the point has signaled (non-blocking; errors count as not).
    pub fn is_signaled(&self) -> bool {
        self.timeline.is_signaled(self.point).unwrap_or(false)
    }

    /// Whether a fence is attached for the point (materialized).
    pub fn is_available(&self) -> bool {
        self.timeline.is_available(self.point).unwrap_or(false)
    }

    /// An eventfd readable once the point signals (`available`: once a
    /// fence is attached), for a calloop source.
    pub fn eventfd(&self, available: bool) -> std::io::Result<OwnedFd> {
        self.timeline.eventfd(self.point, available)
    }

    /// point → sync_file; fails while the point has no fence.
    pub fn export(&self) -> std::io::Result<SyncFile> {
        self.timeline.export_point(self.point)
    }
}

/// How release points were signaled (`--stats`, `"buffer_sync"`).
#[derive(Debug, Default)]
pub struct ReleaseCounters {
    /// Transferred from the dma-buf's pending fences (signaled by the kernel).
    pub from_fence: AtomicU64,
    /// Signaled from the CPU: nothing was pending on the buffer.
    pub cpu: AtomicU64,
    /// Signaling failed (logged; the client may wait forever on this point).
    pub failed: AtomicU64,
}

/// A committed release point; signaled when the last clone drops.
#[derive(Debug, Clone)]
pub struct Release(Arc<ReleaseInner>);

/// A [`Release`] that does not keep the point unsignaled.
#[derive(Debug, Clone)]
pub struct WeakRelease(Weak<ReleaseInner>);

#[derive(Debug)]
struct ReleaseInner {
    point: TimelinePoint,
    dmabuf: Dmabuf,
    counters: Arc<ReleaseCounters>,
}

impl Release {
    pub fn new(point: TimelinePoint, dmabuf: Dmabuf, counters: Arc<ReleaseCounters>) -> Release {
        Release(Arc::new(ReleaseInner {
            point,
            dmabuf,
            counters,
        }))
    }

    pub fn downgrade(&self) -> WeakRelease {
        WeakRelease(Arc::downgrade(&self.0))
    }

    pub fn point(&self) -> &TimelinePoint {
        &self.0.point
    }
}

impl WeakRelease {
    pub fn upgrade(&self) -> Option<Release> {
        self.0.upgrade().map(Release)
    }
}

impl Drop for ReleaseInner {
    fn drop(&mut self) {
        let counter = match signal_release(&self.point, &self.dmabuf) {
            Ok(Signaled::FromFence) => &self.counters.from_fence,
            Ok(Signaled::Cpu) => {
                debug!(point = self.point.point, "release point signaled from the CPU");
                &self.counters.cpu
            }
            Err(e) => {
                warn!(point = self.point.point, "signaling a release point: {e}");
                &self.counters.failed
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

enum Signaled {
    FromFence,
    Cpu,
}

/// Signals `point` once every fence still on `dmabuf` has: transfers them
/// into the point, or signals it now when none is pending.
fn signal_release(point: &TimelinePoint, dmabuf: &Dmabuf) -> std::io::Result<Signaled> {
    match pending_fences(dmabuf) {
        Some(fence) => {
            debug!(point = point.point, "release point follows the buffer's pending fences");
            point.timeline.import_point(point.point, &fence)?;
            Ok(Signaled::FromFence)
        }
        None => {
            point.timeline.signal(point.point)?;
            Ok(Signaled::Cpu)
        }
    }
}

/// Every unsignaled fence (readers and writers) on the dma-buf's planes,
/// merged; `None` when all have signaled or the fds have no fence ioctls.
pub fn pending_fences(dmabuf: &Dmabuf) -> Option<SyncFile> {
    let mut merged: Option<SyncFile> = None;
    for fd in dmabuf.handles() {
        let fence = match fences::export_sync_file(fd.as_fd(), Access::Write) {
            Ok(fence) if !fence.is_signaled() => fence,
            Ok(_) => continue,
            Err(e) if e.is_unsupported() => continue,
            Err(e) => {
                debug!("EXPORT_SYNC_FILE(WRITE) for a release point: {e}");
                continue;
            }
        };
        merged = Some(match merged {
            None => fence,
            Some(prev) => prev.merge(&fence, "release").unwrap_or_else(|e| {
                // Only one fence can go into the point: the later plane's.
                warn!("SYNC_IOC_MERGE for a release point: {e}; one plane's fence is not waited for");
                fence
            }),
        });
    }
    merged
}
