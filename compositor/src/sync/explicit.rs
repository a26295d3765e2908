//! Explicit sync: `wp_linux_drm_syncobj_v1` through smithay's
//! `DrmSyncobjState` (protocol objects, timeline import, the per-commit
//! checks raising no_buffer / no_acquire_point / no_release_point /
//! conflicting_points / unsupported_buffer, surface_exists and
//! invalid_timeline), plus what smithay leaves to the compositor:
//!
//! * the global is created only on a render node with `DRM_CAP_SYNCOBJ_TIMELINE`
//!   and `DRM_IOCTL_SYNCOBJ_EVENTFD` (importer's probe); without one (this
//!   host, lavapipe) it is not offered;
//! * acquire: the commit is held by a `DrmSyncPointBlocker` until the point
//!   signals, watched by its eventfd source in the loop; a materialized
//!   acquire fence is also bridged into the dma-buf as a WRITE fence for
//!   implicit consumers ([`bridge_acquire_to_implicit`]);
//! * release: smithay signals the release point when the last reference to
//!   the committed `Buffer` drops; [`super::release`] keeps a reference in
//!   every frame that sampled it until that frame's VkFence signaled, so the
//!   point is signaled only after the GPU finished.

use smithay::{
    backend::{
        allocator::dmabuf::Dmabuf,
        drm::{DrmDeviceFd, DrmNode},
    },
    delegate_drm_syncobj,
    reexports::wayland_server::{protocol::wl_surface::WlSurface, DisplayHandle, Resource},
    utils::DeviceFd,
    wayland::{
        compositor::{add_blocker, CompositorHandler},
        drm_syncobj::{supports_syncobj_eventfd, DrmSyncPoint, DrmSyncobjHandler, DrmSyncobjState},
    },
};
use tracing::{debug, info, warn};

use crate::state::State;

/// The render node for syncobjs: `COMPOSITOR_SYNCOBJ_NODE` (a path, or
/// `none`), else the renderer's node, else the first node that qualifies.
pub fn create_global(dh: &DisplayHandle, main_device: Option<libc::dev_t>) -> Option<DrmSyncobjState> {
    use importer::sync::RenderNode;
    let wanted = std::env::var("COMPOSITOR_SYNCOBJ_NODE").ok();
    if wanted.as_deref() == Some("none") {
        info!("wp_linux_drm_syncobj_v1 disabled (COMPOSITOR_SYNCOBJ_NODE=none)");
        return None;
    }
    let node = match wanted {
        Some(path) => RenderNode::open(&path).ok(),
        None => main_device
            .and_then(|dev| RenderNode::open_dev(libc::major(dev) as i64, libc::minor(dev) as i64).ok())
            .filter(|n| n.probe().explicit_sync())
            .or_else(|| RenderNode::find(|c| c.explicit_sync()).ok()),
    };
    let Some(node) = node else {
        info!("wp_linux_drm_syncobj_v1 not offered: no render node with syncobj timelines and SYNCOBJ_EVENTFD");
        return None;
    };
    let caps = node.probe();
    if !caps.explicit_sync() {
        info!(path = %node.path.display(), ?caps, "wp_linux_drm_syncobj_v1 not offered: the node lacks timelines or SYNCOBJ_EVENTFD");
        return None;
    }
    let fd = match std::os::fd::AsFd::as_fd(&node).try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => {
            warn!("dup of the syncobj node: {e}");
            return None;
        }
    };
    let device = DrmDeviceFd::new(DeviceFd::from(fd));
    if !supports_syncobj_eventfd(&device) {
        info!("wp_linux_drm_syncobj_v1 not offered: smithay's SYNCOBJ_EVENTFD probe failed");
        return None;
    }
    let name = DrmNode::from_file(&device).map(|n| n.to_string()).unwrap_or_default();
    info!(path = %node.path.display(), node = %name, "wp_linux_drm_syncobj_v1 global created");
    Some(DrmSyncobjState::new::<State>(dh, device))
}

/// Holds the pending commit of `surface` until `point` signals, after
/// bridging the point into the dma-buf's implicit fences ([`bridge_acquire_to_implicit`]).
pub fn hold_until_acquired(state: &mut State, surface: &WlSurface, point: &DrmSyncPoint, dmabuf: &Dmabuf) {
    use smithay::backend::renderer::sync::Fence;
    if point.is_signaled() {
        return;
    }
    bridge_acquire_to_implicit(state, point, dmabuf);
    let (blocker, source) = match point.generate_blocker() {
        Ok(pair) => pair,
        Err(e) => {
            warn!("acquire point blocker: {e}");
            return;
        }
    };
    let Some(handle) = state.sync.loop_handle.clone() else {
        return;
    };
    let Some(client) = surface.client() else { return };
    let id = surface.id();
    match handle.insert_source(source, move |_, _, state: &mut State| {
        debug!(surface = ?id, "acquire point signaled; applying the held commit");
        let dh = state.display_handle.clone();
        state.client_compositor_state(&client).blocker_cleared(state, &dh);
        Ok(())
    }) {
        Ok(_) => {
            state.sync.stats.explicit_held += 1;
            add_blocker(surface, blocker);
        }
        Err(e) => warn!("cannot watch an acquire point in the loop: {e}"),
    }
}

/// DOC: bridging, explicit → implicit (docs/sync.md, bridging row 1)
///
/// An explicitly synced buffer carries no implicit fence: its writer's
/// completion is the acquire point. Any implicit consumer of the same dma-buf
/// (the renderer's own `EXPORT_SYNC_FILE(READ)` at sampling time, a capture
/// or scan-out importer, another process) would read it unsynchronized. So
/// when the commit arrives with an acquire point that already has a fence
/// (materialized), that fence is exported (point → sync_file, rule A5) and
/// imported into the dma-buf as a WRITE fence (rule A4): every later reader
/// and writer of the dma-buf waits for it. A point not yet materialized has
/// nothing to export; the commit is held until it signals anyway, and by
/// then there is nothing left to wait for. Non-blocking throughout.
pub fn bridge_acquire_to_implicit(state: &mut State, point: &DrmSyncPoint, dmabuf: &Dmabuf) {
    use importer::sync::{dmabuf as fences, Access, SyncFile};
    let fence = match point.export_sync_file().and_then(SyncFile::from_fd) {
        Ok(fence) => fence,
        Err(e) => {
            debug!("acquire point not materialized yet, nothing to bridge: {e}");
            return;
        }
    };
    let mut imported = 0;
    for fd in dmabuf.handles() {
        match fences::import_sync_file(fd, &fence, Access::Write) {
            Ok(()) => imported += 1,
            Err(e) => debug!("IMPORT_SYNC_FILE(WRITE) of an acquire fence: {e}"),
        }
    }
    if imported > 0 {
        state.sync.stats.bridged_acquires += 1;
        debug!(
            planes = imported,
            "acquire point imported into the dma-buf as a WRITE fence"
        );
    }
}

impl DrmSyncobjHandler for State {
    fn drm_syncobj_state(&mut self) -> Option<&mut DrmSyncobjState> {
        self.syncobj_state.as_mut()
    }
}

delegate_drm_syncobj!(State);
