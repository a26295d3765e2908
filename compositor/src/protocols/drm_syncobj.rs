//! `wp_linux_drm_syncobj_v1`: explicit sync, our own dispatch.
//!
//! DOC: why not smithay's `DrmSyncobjState`
//!
//! smithay 0.7 implements this protocol, but its `DrmSyncPoint` keeps the
//! timeline and point private and signals the release point itself from the
//! CPU when a `Buffer` drops. The compositor then cannot transfer a fence into
//! a release point (GPU-signaled release, bridging row 2) nor wait for an
//! acquire point to be *materialized* and let the GPU wait for the rest. So
//! this module implements the protocol over `importer::sync::Syncobj`:
//!
//! * manager: `get_surface` (`surface_exists` for a second one),
//!   `import_timeline` (`invalid_timeline` when the fd is not a syncobj the
//!   render node can import);
//! * surface: `set_acquire_point` / `set_release_point` go into
//!   double-buffered [`SyncobjCachedState`]; `no_surface` once the wl_surface
//!   is gone. At commit a pre-commit hook raises, like wlroots:
//!   `no_buffer` (points without a buffer attached), `no_acquire_point` /
//!   `no_release_point` (a buffer attached without one of them),
//!   `conflicting_points` (same timeline, release not after acquire) and
//!   `unsupported_buffer` (not a dma-buf);
//! * a committed release point becomes a [`Release`] (see
//!   [`super::timeline_point`] for who signals it and when); a commit that
//!   replaces or detaches the buffer drops the previous one.
//!
//! The acquire wait itself is compositor policy and lives in
//! `sync::explicit`. The global is only created on a render node with
//! syncobj timelines and `SYNCOBJ_EVENTFD` (`sync::explicit::create_global`).

use std::cell::RefCell;
use std::sync::Arc;

use importer::sync::{RenderNode, Syncobj};
use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::reexports::wayland_protocols::wp::linux_drm_syncobj::v1::server::{
    wp_linux_drm_syncobj_manager_v1::{self, WpLinuxDrmSyncobjManagerV1},
    wp_linux_drm_syncobj_surface_v1::{self, WpLinuxDrmSyncobjSurfaceV1},
    wp_linux_drm_syncobj_timeline_v1::{self, WpLinuxDrmSyncobjTimelineV1},
};
use smithay::reexports::wayland_server::{
    protocol::{wl_buffer::WlBuffer, wl_surface::WlSurface},
    Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource, Weak as WlWeak,
};
use smithay::wayland::compositor::{
    add_pre_commit_hook, with_states, BufferAssignment, Cacheable, SurfaceAttributes, SurfaceData,
};
use smithay::wayland::dmabuf::get_dmabuf;
use tracing::debug;

pub use super::timeline_point::{Release, ReleaseCounters, TimelinePoint, WeakRelease};

/// The global and what its timelines are imported on.
#[derive(Debug)]
pub struct SyncobjState {
    node: RenderNode,
    counters: Arc<ReleaseCounters>,
}

/// What the compositor state provides to this module.
pub trait SyncobjHandler {
    fn syncobj_state(&mut self) -> Option<&mut SyncobjState>;

    /// A checked commit of `surface` attaching `buffer` (a dma-buf) with its
    /// points, called from the pre-commit hook (no surface lock held): the
    /// place to hold the commit until `acquire` allows it and to remember
    /// `release` for the frames that sample the buffer.
    fn explicit_commit(&mut self, surface: &WlSurface, commit: ExplicitCommit);
}

/// What [`SyncobjHandler::explicit_commit`] gets.
#[derive(Debug)]
pub struct ExplicitCommit {
    pub buffer: WlBuffer,
    pub dmabuf: Dmabuf,
    pub acquire: TimelinePoint,
    pub release: Release,
}

impl SyncobjState {
    /// Creates the `wp_linux_drm_syncobj_manager_v1` global (version 1);
    /// client timelines are imported on `node`.
    pub fn new<D>(dh: &DisplayHandle, node: RenderNode) -> SyncobjState
    where
        D: GlobalDispatch<WpLinuxDrmSyncobjManagerV1, ()> + 'static,
    {
        dh.create_global::<D, WpLinuxDrmSyncobjManagerV1, ()>(1, ());
        SyncobjState {
            node,
            counters: Default::default(),
        }
    }

    /// How release points were signaled so far.
    pub fn release_counters(&self) -> &ReleaseCounters {
        &self.counters
    }
}

/// Double-buffered sync state of a surface.
#[derive(Debug, Default)]
pub struct SyncobjCachedState {
    pub acquire: Option<TimelinePoint>,
    /// Pending only: turned into `release` by the commit hook.
    release_point: Option<TimelinePoint>,
    /// The committed buffer's release point.
    pub release: Option<Release>,
    /// The commit replaces the buffer without new points (attach(NULL), or
    /// any attach once the syncobj object is gone): drop the release.
    detach: bool,
}

impl Cacheable for SyncobjCachedState {
    fn commit(&mut self, _dh: &DisplayHandle) -> Self {
        std::mem::take(self)
    }

    fn merge_into(self, into: &mut Self, _dh: &DisplayHandle) {
        if self.release.is_some() {
            // A new buffer with its points: the previous release drops here.
            into.acquire = self.acquire;
            into.release = self.release;
        } else if self.detach {
            into.acquire = None;
            into.release = None;
        }
    }
}

/// The pending acquire point of `surface`'s next commit, if any.
pub fn pending_acquire(surface: &WlSurface) -> Option<TimelinePoint> {
    with_states(surface, pending_acquire_of)
}

/// [`pending_acquire`] for a surface whose states are already at hand.
///
/// A surface that never had a syncobj surface object has no
/// [`SyncobjCachedState`], and asking for it with `get` would add one: a
/// cache that smithay then commits and applies with every state of that
/// surface (synchronized subsurfaces: with every commit of their parent).
pub fn pending_acquire_of(states: &SurfaceData) -> Option<TimelinePoint> {
    if !states.cached_state.has::<SyncobjCachedState>() {
        return None;
    }
    states
        .cached_state
        .get::<SyncobjCachedState>()
        .pending()
        .acquire
        .clone()
}

/// Per wl_surface: its syncobj surface object, if one exists.
type SurfaceSlot = RefCell<Option<WpLinuxDrmSyncobjSurfaceV1>>;

/// Data of a `wp_linux_drm_syncobj_timeline_v1`: the imported syncobj
/// (none if the import was refused) and its unit of the client's
/// `timelines` budget (`crate::limits`), given back with the object.
#[derive(Debug, Default)]
pub struct TimelineData {
    pub syncobj: Option<Arc<Syncobj>>,
    _charge: Option<crate::limits::Charge>,
}

/// Data of a `wp_linux_drm_syncobj_surface_v1`.
#[derive(Debug)]
pub struct SyncobjSurfaceData {
    surface: WlWeak<WlSurface>,
}

impl<D> GlobalDispatch<WpLinuxDrmSyncobjManagerV1, (), D> for SyncobjState
where
    D: Dispatch<WpLinuxDrmSyncobjManagerV1, ()> + 'static,
{
    fn bind(
        _state: &mut D,
        _dh: &DisplayHandle,
        _client: &Client,
        resource: New<WpLinuxDrmSyncobjManagerV1>,
        _data: &(),
        data_init: &mut DataInit<'_, D>,
    ) {
        data_init.init(resource, ());
    }
}

impl<D> Dispatch<WpLinuxDrmSyncobjManagerV1, (), D> for SyncobjState
where
    D: Dispatch<WpLinuxDrmSyncobjSurfaceV1, SyncobjSurfaceData>
        + Dispatch<WpLinuxDrmSyncobjTimelineV1, TimelineData>
        + SyncobjHandler
        + 'static,
{
    fn request(
        state: &mut D,
        client: &Client,
        resource: &WpLinuxDrmSyncobjManagerV1,
        request: wp_linux_drm_syncobj_manager_v1::Request,
        _data: &(),
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        use wp_linux_drm_syncobj_manager_v1::{Error, Request};
        match request {
            Request::GetSurface { id, surface } => {
                let exists = with_states(&surface, |states| {
                    states
                        .data_map
                        .get::<SurfaceSlot>()
                        .is_some_and(|slot| slot.borrow().is_some())
                });
                if exists {
                    resource.post_error(
                        Error::SurfaceExists,
                        "the wl_surface already has a wp_linux_drm_syncobj_surface_v1",
                    );
                    return;
                }
                let object = data_init.init(
                    id,
                    SyncobjSurfaceData {
                        surface: surface.downgrade(),
                    },
                );
                // The hook stays for the wl_surface's lifetime: once the
                // syncobj object is destroyed, a buffer attached without
                // points must still drop the committed release point.
                let first = with_states(&surface, |states| {
                    let first = states.data_map.insert_if_missing(SurfaceSlot::default);
                    *states.data_map.get::<SurfaceSlot>().unwrap().borrow_mut() = Some(object);
                    first
                });
                if first {
                    let counters = state.syncobj_state().map(|s| s.counters.clone()).unwrap_or_default();
                    add_pre_commit_hook::<D, _>(&surface, move |state, _, surface| {
                        if let Some(commit) = commit_hook(surface, &counters) {
                            state.explicit_commit(surface, commit);
                        }
                    });
                }
            }
            Request::ImportTimeline { id, fd } => {
                // Past the client's timeline limit it is disconnected; the
                // object still needs its data, which then holds no syncobj.
                let Some(charge) = crate::limits::charge(dh, client, crate::limits::Budget::Timelines, 1) else {
                    data_init.init(id, TimelineData::default());
                    return;
                };
                let imported = match state.syncobj_state() {
                    Some(s) => Syncobj::import(&s.node, std::os::fd::AsFd::as_fd(&fd)),
                    None => Err(std::io::Error::other("the global is gone")),
                };
                match imported {
                    Ok(timeline) => {
                        data_init.init(
                            id,
                            TimelineData {
                                syncobj: Some(Arc::new(timeline)),
                                _charge: Some(charge),
                            },
                        );
                    }
                    Err(e) => resource.post_error(Error::InvalidTimeline, format!("importing the timeline: {e}")),
                }
            }
            Request::Destroy => {}
            _ => unreachable!("wp_linux_drm_syncobj_manager_v1 has no other request"),
        }
    }
}

impl<D> Dispatch<WpLinuxDrmSyncobjSurfaceV1, SyncobjSurfaceData, D> for SyncobjState
where
    D: Dispatch<WpLinuxDrmSyncobjSurfaceV1, SyncobjSurfaceData> + 'static,
{
    fn request(
        _state: &mut D,
        _client: &Client,
        resource: &WpLinuxDrmSyncobjSurfaceV1,
        request: wp_linux_drm_syncobj_surface_v1::Request,
        data: &SyncobjSurfaceData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        use wp_linux_drm_syncobj_surface_v1::{Error, Request};
        let surface = data.surface.upgrade().ok();
        let (timeline, hi, lo, acquire) = match request {
            Request::SetAcquirePoint {
                timeline,
                point_hi,
                point_lo,
            } => (timeline, point_hi, point_lo, true),
            Request::SetReleasePoint {
                timeline,
                point_hi,
                point_lo,
            } => (timeline, point_hi, point_lo, false),
            Request::Destroy => {
                if let Some(surface) = surface {
                    with_states(&surface, |states| {
                        if let Some(slot) = states.data_map.get::<SurfaceSlot>() {
                            *slot.borrow_mut() = None;
                        }
                        // Committed points stay in force; uncommitted ones
                        // may be discarded (the protocol allows it).
                        let mut cached = states.cached_state.get::<SyncobjCachedState>();
                        cached.pending().acquire = None;
                        cached.pending().release_point = None;
                    });
                }
                return;
            }
            _ => unreachable!("wp_linux_drm_syncobj_surface_v1 has no other request"),
        };
        let Some(surface) = surface else {
            resource.post_error(Error::NoSurface, "the wl_surface was destroyed");
            return;
        };
        let Some(timeline) = timeline.data::<TimelineData>().and_then(|t| t.syncobj.clone()) else {
            return;
        };
        let point = TimelinePoint::new(timeline, hi, lo);
        with_states(&surface, |states| {
            let mut cached = states.cached_state.get::<SyncobjCachedState>();
            let pending = cached.pending();
            if acquire {
                pending.acquire = Some(point);
            } else {
                pending.release_point = Some(point);
            }
        });
    }
}

impl<D> Dispatch<WpLinuxDrmSyncobjTimelineV1, TimelineData, D> for SyncobjState
where
    D: Dispatch<WpLinuxDrmSyncobjTimelineV1, TimelineData> + 'static,
{
    fn request(
        _state: &mut D,
        _client: &Client,
        _resource: &WpLinuxDrmSyncobjTimelineV1,
        request: wp_linux_drm_syncobj_timeline_v1::Request,
        _data: &TimelineData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        // Destroy: points already set keep their own reference to the syncobj.
        let wp_linux_drm_syncobj_timeline_v1::Request::Destroy = request else {
            unreachable!("wp_linux_drm_syncobj_timeline_v1 has no other request")
        };
    }
}

/// Checks a commit of a surface that has (or had) a syncobj surface object
/// and turns its release point into a [`Release`] tied to the committed
/// dma-buf. Returns the commit's points when it attaches a buffer with them.
fn commit_hook(surface: &WlSurface, counters: &Arc<ReleaseCounters>) -> Option<ExplicitCommit> {
    use wp_linux_drm_syncobj_surface_v1::Error;
    with_states(surface, |states| {
        let attached = match states.cached_state.get::<SurfaceAttributes>().pending().buffer.as_ref() {
            Some(BufferAssignment::NewBuffer(buffer)) => Some(Some(buffer.clone())),
            Some(BufferAssignment::Removed) => Some(None),
            None => None,
        };
        let mut cached = states.cached_state.get::<SyncobjCachedState>();
        let pending = cached.pending();
        let Some(object) = states.data_map.get::<SurfaceSlot>().and_then(|s| s.borrow().clone()) else {
            // No syncobj object any more: a new attachment (buffer or
            // NULL) replaces the explicitly synced one, whose release
            // point must then be signaled.
            pending.detach = attached.is_some();
            return None;
        };
        let new_buffer = attached.clone().flatten();
        let error = match (&new_buffer, &pending.acquire, &pending.release_point) {
            (None, Some(_), _) | (None, _, Some(_)) => Some((Error::NoBuffer, "sync points without a buffer".into())),
            (Some(_), None, _) => Some((Error::NoAcquirePoint, "a buffer without an acquire point".into())),
            (Some(_), _, None) => Some((Error::NoReleasePoint, "a buffer without a release point".into())),
            (Some(_), Some(a), Some(r)) if a.same_timeline(r) && r.point <= a.point => Some((
                Error::ConflictingPoints,
                format!("release point {} is not after acquire point {}", r.point, a.point),
            )),
            _ => None,
        };
        if let Some((code, message)) = error {
            object.post_error(code, message);
            return None;
        }
        pending.detach = matches!(attached, Some(None));
        let (Some(buffer), Some(point), Some(acquire)) =
            (new_buffer, pending.release_point.take(), pending.acquire.clone())
        else {
            return None;
        };
        let Ok(dmabuf) = get_dmabuf(&buffer).cloned() else {
            object.post_error(
                Error::UnsupportedBuffer,
                "sync points with a buffer that is not a dma-buf",
            );
            return None;
        };
        debug!(acquire = acquire.point, release = point.point, "explicit commit");
        let release = Release::new(point, dmabuf.clone(), counters.clone());
        pending.release = Some(release.clone());
        Some(ExplicitCommit {
            buffer,
            dmabuf,
            acquire,
            release,
        })
    })
}

/// Delegates the three interfaces to [`SyncobjState`].
#[macro_export]
macro_rules! delegate_syncobj {
    ($ty:ty) => {
        smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::linux_drm_syncobj::v1::server::wp_linux_drm_syncobj_manager_v1::WpLinuxDrmSyncobjManagerV1: ()
        ] => $crate::protocols::drm_syncobj::SyncobjState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::linux_drm_syncobj::v1::server::wp_linux_drm_syncobj_manager_v1::WpLinuxDrmSyncobjManagerV1: ()
        ] => $crate::protocols::drm_syncobj::SyncobjState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::linux_drm_syncobj::v1::server::wp_linux_drm_syncobj_surface_v1::WpLinuxDrmSyncobjSurfaceV1: $crate::protocols::drm_syncobj::SyncobjSurfaceData
        ] => $crate::protocols::drm_syncobj::SyncobjState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::linux_drm_syncobj::v1::server::wp_linux_drm_syncobj_timeline_v1::WpLinuxDrmSyncobjTimelineV1: $crate::protocols::drm_syncobj::TimelineData
        ] => $crate::protocols::drm_syncobj::SyncobjState);
    };
}
