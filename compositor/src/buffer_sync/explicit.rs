//! Explicit sync glue: the compositor's policy over our own
//! `wp_linux_drm_syncobj_v1` dispatch (`protocols::drm_syncobj`, which also
//! raises every protocol error and owns the release points):
//!
//! * the global is created only on a render node with `DRM_CAP_SYNCOBJ_TIMELINE`
//!   and `DRM_IOCTL_SYNCOBJ_EVENTFD` (importer's probe); without one (this
//!   host, lavapipe) it is not offered;
//! * acquire ([`hold_until_acquired`]): a materialized acquire fence is
//!   bridged into the dma-buf as a WRITE fence for implicit consumers
//!   ([`bridge_acquire_to_implicit`], bridging row 1). Then, by policy
//!   (`COMPOSITOR_ACQUIRE`, docs/sync.md): `loop` (default) holds the commit
//!   until the point *signals*; `gpu`, on a device importing SYNC_FD
//!   semaphores, holds it only until the point is *materialized*, bridges the
//!   fence and lets the renderer's sampling-time semaphore wait do the rest;
//! * release: see `protocols::timeline_point` (kernel-signaled from the buffer's
//!   pending fences, bridging row 2, else from the CPU) and `sync::release`
//!   (frames keep the release until they are done, or until their READ fence
//!   is on the dma-buf).

use std::os::fd::OwnedFd;

use smithay::{
    backend::allocator::dmabuf::Dmabuf,
    reexports::{
        calloop::{generic::Generic, Interest, Mode, PostAction},
        wayland_server::{protocol::wl_surface::WlSurface, DisplayHandle, Resource},
    },
    wayland::compositor::CompositorHandler,
};
use tracing::{debug, info, warn};

use super::{AcquirePolicy, FlagBlocker};
use crate::protocols::drm_syncobj::{ExplicitCommit, SyncobjHandler, SyncobjState, TimelinePoint};
use crate::state::State;

/// The render node for syncobjs: `COMPOSITOR_SYNCOBJ_NODE` (a path, or
/// `none`), else the renderer's node, else the first node that qualifies.
pub fn create_global(dh: &DisplayHandle, main_device: Option<libc::dev_t>) -> Option<SyncobjState> {
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
    info!(path = %node.path.display(), "wp_linux_drm_syncobj_v1 global created");
    Some(SyncobjState::new::<State>(dh, node))
}

/// What a held explicit commit waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// A fence is attached (then bridged; the GPU waits for it).
    Materialized,
    Signaled,
}

/// Holds the pending commit of `surface` until `point` allows it (see the
/// module doc), bridging the point's fence into `dmabuf` where it has one.
pub fn hold_until_acquired(state: &mut State, surface: &WlSurface, point: &TimelinePoint, dmabuf: &Dmabuf) {
    if point.is_signaled() {
        return;
    }
    let bridged = bridge_acquire_to_implicit(state, point, dmabuf);
    // A CPU-fallback buffer is read by the CPU: only the signal will do.
    let gpu = state.buffer_sync.policy == AcquirePolicy::Gpu
        && state.buffer_sync.gpu_wait
        && !state.backend.renderer().takes_cpu_path(dmabuf);
    if gpu && bridged {
        // The renderer exports the dma-buf's write fences (now including the
        // acquire fence) at sampling time and the GPU waits for them.
        state.buffer_sync.stats.explicit_gpu_waits += 1;
        return;
    }
    let until = if gpu { Until::Materialized } else { Until::Signaled };
    if let Err(e) = hold(state, surface, point, dmabuf, until) {
        warn!("cannot hold a commit on its acquire point: {e}");
    }
}

/// Adds a blocker to `surface` and a loop source that clears it.
fn hold(
    state: &mut State,
    surface: &WlSurface,
    point: &TimelinePoint,
    dmabuf: &Dmabuf,
    until: Until,
) -> anyhow::Result<()> {
    let blocker = FlagBlocker::default();
    let held = Held {
        client: surface
            .client()
            .ok_or_else(|| anyhow::anyhow!("the surface has no client"))?,
        id: surface.id(),
        surface: surface.downgrade(),
        point: point.clone(),
        dmabuf: dmabuf.clone(),
        blocker: blocker.clone(),
    };
    watch(state, held, until)?;
    state.buffer_sync.stats.explicit_held += 1;
    super::hold::hold_commit(state, surface, blocker);
    Ok(())
}

/// A held explicit commit.
struct Held {
    client: smithay::reexports::wayland_server::Client,
    id: smithay::reexports::wayland_server::backend::ObjectId,
    surface: smithay::reexports::wayland_server::Weak<WlSurface>,
    point: TimelinePoint,
    dmabuf: Dmabuf,
    blocker: FlagBlocker,
}

/// A one-shot loop source on the point's eventfd. For
/// [`Until::Materialized`] it bridges the fence first; if that is not
/// possible, it watches again until the point signals.
fn watch(state: &mut State, held: Held, until: Until) -> anyhow::Result<()> {
    let handle = state
        .buffer_sync
        .loop_handle
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no event loop yet"))?;
    let efd: OwnedFd = held.point.eventfd(until == Until::Materialized)?;
    let surface = held.surface.clone();
    let id = state.buffer_sync.watches.reserve();
    let mut held = Some(held);
    let token = handle
        .insert_source(
            Generic::new(efd, Interest::READ, Mode::Level),
            move |_, _, state: &mut State| {
                // One-shot: every path below removes the source.
                state.buffer_sync.watches.done(id);
                let Some(held) = held.take() else {
                    return Ok(PostAction::Remove);
                };
                if until == Until::Materialized && !held.point.is_signaled() {
                    if bridge_acquire_to_implicit(state, &held.point, &held.dmabuf) {
                        state.buffer_sync.stats.explicit_gpu_waits += 1;
                        debug!(surface = ?held.id, "acquire point materialized; the GPU waits for the rest");
                    } else {
                        debug!(surface = ?held.id, "acquire fence cannot be bridged; holding until it signals");
                        let (client, blocker) = (held.client.clone(), held.blocker.clone());
                        match watch(state, held, Until::Signaled) {
                            Ok(()) => return Ok(PostAction::Remove),
                            // Never leave the surface stuck: apply it now.
                            Err(e) => {
                                warn!("watching an acquire point: {e}; applying the commit");
                                apply(state, &client, &blocker);
                                return Ok(PostAction::Remove);
                            }
                        }
                    }
                }
                debug!(surface = ?held.id, ?until, "acquire point ready; applying the held commit");
                apply(state, &held.client, &held.blocker);
                Ok(PostAction::Remove)
            },
        )
        .map_err(|e| anyhow::anyhow!("inserting the acquire point source: {e}"))?;
    if let Ok(surface) = surface.upgrade() {
        state.buffer_sync.watches.insert(id, &surface, token);
    }
    Ok(())
}

/// Releases a held commit and lets smithay apply it.
fn apply(state: &mut State, client: &smithay::reexports::wayland_server::Client, blocker: &FlagBlocker) {
    blocker.release();
    let dh = state.display_handle.clone();
    state.client_compositor_state(client).blocker_cleared(state, &dh);
}

/// DOC: bridging, explicit → implicit (docs/sync.md, bridging row 1)
///
/// An explicitly synced buffer carries no implicit fence: its writer's
/// completion is the acquire point. Any implicit consumer of the same dma-buf
/// (the renderer's own `EXPORT_SYNC_FILE(READ)` at sampling time, a capture
/// or scan-out importer, another process) would read it unsynchronized. So
/// once the acquire point has a fence (materialized: at commit, or when the
/// held commit's `WAIT_AVAILABLE` eventfd fires), that fence is exported
/// (point → sync_file, rule A5 of docs/locking-rules.md) and imported into every plane as a WRITE
/// fence (rule A4): every later reader and writer of the dma-buf waits for
/// it, the renderer's GPU wait included. Non-blocking throughout.
///
/// Returns whether every plane now carries the fence.
pub fn bridge_acquire_to_implicit(state: &mut State, point: &TimelinePoint, dmabuf: &Dmabuf) -> bool {
    use importer::sync::{implicit as fences, Access};
    let fence = match point.export() {
        Ok(fence) => fence,
        Err(e) => {
            debug!("acquire point not materialized yet, nothing to bridge: {e}");
            return false;
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
        state.buffer_sync.stats.bridged_acquires += 1;
        debug!(
            planes = imported,
            "acquire point imported into the dma-buf as a WRITE fence"
        );
    }
    imported == dmabuf.num_planes()
}

impl SyncobjHandler for State {
    fn syncobj_state(&mut self) -> Option<&mut SyncobjState> {
        self.syncobj_state.as_mut()
    }

    fn explicit_commit(&mut self, surface: &WlSurface, commit: ExplicitCommit) {
        self.backend
            .releases_mut()
            .mark_explicit(&commit.buffer, Some(&commit.release));
        hold_until_acquired(self, surface, &commit.acquire, &commit.dmabuf);
    }
}

crate::delegate_syncobj!(State);
