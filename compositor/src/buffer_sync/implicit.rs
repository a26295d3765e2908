//! Implicit acquire: hold a commit until its dma-buf's write fences signal.
//!
//! A pre-commit hook (added for every surface in `new_surface`) looks at the
//! pending buffer. If it is a dma-buf whose write fences have not all
//! signaled (poll POLLIN on the dma-buf, which is what smithay's
//! `Dmabuf::generate_blocker(Interest::READ)` does; the same answer as an
//! `EXPORT_SYNC_FILE(READ)` sync_file, and the only one where the kernel
//! lacks that ioctl), a `Blocker` holds the commit and a one-shot calloop
//! source releases it when the fd becomes readable. Buffers with an explicit
//! acquire point are left to [`super::explicit`]: implicit fences are ignored
//! for them, as the protocol says.

use smithay::reexports::wayland_server::Resource;
use smithay::{
    reexports::{calloop::Interest, wayland_server::protocol::wl_surface::WlSurface},
    wayland::{
        compositor::{add_pre_commit_hook, with_states, BufferAssignment, CompositorHandler, SurfaceAttributes},
        dmabuf::get_dmabuf,
    },
};
use tracing::{debug, warn};

use super::AcquirePolicy;
use crate::protocols::drm_syncobj::pending_acquire_of;
use crate::state::State;

/// Installs the acquire hook on a new surface.
pub fn on_new_surface(surface: &WlSurface) {
    add_pre_commit_hook::<State, _>(surface, acquire_hook);
}

fn acquire_hook(state: &mut State, _dh: &smithay::reexports::wayland_server::DisplayHandle, surface: &WlSurface) {
    let (buffer, explicit) = with_states(surface, |states| {
        let explicit = pending_acquire_of(states);
        let buffer = match states.cached_state.get::<SurfaceAttributes>().pending().buffer.as_ref() {
            Some(BufferAssignment::NewBuffer(buffer)) => Some(buffer.clone()),
            _ => None,
        };
        (buffer, explicit)
    });
    let Some(buffer) = buffer else { return };
    if explicit.is_some() {
        return; // protocols::drm_syncobj checks it and calls explicit_commit
    }
    state.backend.releases_mut().mark_explicit(&buffer, None);
    let Some(dmabuf) = get_dmabuf(&buffer).ok().cloned() else {
        return;
    };
    let cpu_path = state.backend.renderer().takes_cpu_path(&dmabuf);
    if state.buffer_sync.policy == AcquirePolicy::Gpu && state.buffer_sync.gpu_wait && !cpu_path {
        // The renderer waits on the GPU (importer::vulkan::recorder,
        // acquire_implicit). A CPU-fallback buffer is read by the CPU, which
        // must wait here instead.
        return;
    }
    let Ok((blocker, source)) = dmabuf.generate_blocker(Interest::READ) else {
        return; // AlreadyReady: every write fence has signaled.
    };
    let Some(handle) = state.buffer_sync.loop_handle.clone() else {
        return;
    };
    let Some(client) = surface.client() else { return };
    let id = surface.id();
    let watch = state.buffer_sync.watches.reserve();
    match handle.insert_source(source, move |_, _, state: &mut State| {
        debug!(surface = ?id, "implicit fence signaled; applying the held commit");
        state.buffer_sync.watches.done(watch);
        let dh = state.display_handle.clone();
        state.client_compositor_state(&client).blocker_cleared(state, &dh);
        Ok(())
    }) {
        Ok(token) => {
            state.buffer_sync.watches.insert(watch, surface, token);
            state.buffer_sync.stats.implicit_held += 1;
            debug!(surface = ?surface.id(), "commit held until the dma-buf's write fences signal");
            super::hold::hold_commit(state, surface, blocker);
        }
        Err(e) => warn!("cannot watch a dma-buf fence in the loop: {e}"),
    }
}
