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
//!   signals, watched by its eventfd source in the loop;
//! * release: smithay signals the release point when the last reference to
//!   the committed `Buffer` drops; [`super::release`] keeps a reference in
//!   every frame that sampled it until that frame's VkFence signaled, so the
//!   point is signaled only after the GPU finished.

use smithay::{
    backend::drm::{DrmDeviceFd, DrmNode},
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

/// Holds the pending commit of `surface` until `point` signals.
pub fn hold_until_acquired(state: &mut State, surface: &WlSurface, point: &DrmSyncPoint) {
    use smithay::backend::renderer::sync::Fence;
    if point.is_signaled() {
        return;
    }
    let (blocker, source) = match point.generate_blocker() {
        Ok(pair) => pair,
        Err(e) => {
            warn!("acquire point blocker: {e}");
            return;
        }
    };
    let Some(handle) = state.sync.loop_handle.clone() else { return };
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

impl DrmSyncobjHandler for State {
    fn drm_syncobj_state(&mut self) -> Option<&mut DrmSyncobjState> {
        self.syncobj_state.as_mut()
    }
}

delegate_drm_syncobj!(State);
