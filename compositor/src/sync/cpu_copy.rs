//! Holding a commit while its CPU-fallback copy runs on the worker.
//!
//! DOC: see `render::copy_worker` for the whole shape. This module is the
//! loop side: a pre-commit hook (installed on every surface) looks at the
//! pending buffer; if it is a CPU-fallback dma-buf of at least the copy
//! threshold, it submits a full copy to the worker and adds a [`FlagBlocker`](super::FlagBlocker)
//! to the surface. When the worker's [`CopyDone`] arrives through the calloop
//! channel, the loop queues the staged upload on the texture
//! (`VkRenderer::staged_upload_ready`, so the render-time import does not
//! copy again), marks the blocker released and calls `blocker_cleared`, which
//! applies the commit. Other clients are dispatched meanwhile.
//!
//! Locks: everything here runs on the loop with no reservation held; the
//! worker takes the buffer's reservation only to pin and unpin.

use std::collections::HashMap;

use smithay::reexports::calloop::{channel, LoopHandle};
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{Client, DisplayHandle, Resource};
use smithay::wayland::compositor::{
    add_blocker, add_pre_commit_hook, with_states, BufferAssignment, CompositorHandler, SurfaceAttributes,
};
use smithay::wayland::dmabuf::get_dmabuf;
use tracing::{debug, warn};

use super::FlagBlocker;

use crate::render::copy_worker::{CopyDone, CopyWorker};
use crate::render::VkTexture;
use crate::state::State;

struct Pending {
    client: Client,
    texture: VkTexture,
    blocker: FlagBlocker,
}

/// Counters for `--stats` (`"cpu_copies"`).
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct CpuCopyStats {
    /// Copies made on the worker (commits held meanwhile).
    pub worker: u64,
    /// Worker copies that failed (the commit applied with the old pixels).
    pub worker_failed: u64,
    /// Longest worker copy, milliseconds.
    pub worker_max_ms: f64,
}

/// The worker and the commits waiting for it.
#[derive(Default)]
pub struct CpuCopies {
    worker: Option<CopyWorker>,
    pending: HashMap<u64, Pending>,
    pub stats: CpuCopyStats,
}

impl CpuCopies {
    /// Exit: stops the worker after its current copy (joins it: teardown
    /// only, no lock held), so no pin is left on any buffer when the
    /// reservations are torn down.
    pub fn shutdown(&mut self) {
        self.worker = None;
        self.pending.clear();
    }
}

/// Starts the worker and the channel that brings its results to the loop.
pub fn start(handle: &LoopHandle<'static, State>, state: &mut State) -> anyhow::Result<()> {
    let (tx, rx) = channel::channel::<CopyDone>();
    handle
        .insert_source(rx, |event, _, state: &mut State| {
            if let channel::Event::Msg(done) = event {
                on_copy_done(state, done);
            }
        })
        .map_err(|e| anyhow::anyhow!("inserting the CPU copy channel: {e}"))?;
    state.cpu_copies.worker = Some(CopyWorker::spawn(tx)?);
    Ok(())
}

/// Installs the hook on a new surface.
pub fn on_new_surface(surface: &WlSurface) {
    add_pre_commit_hook::<State, _>(surface, copy_hook);
}

fn copy_hook(state: &mut State, _dh: &DisplayHandle, surface: &WlSurface) {
    let dmabuf = with_states(surface, |states| {
        match states.cached_state.get::<SurfaceAttributes>().pending().buffer.as_ref() {
            Some(BufferAssignment::NewBuffer(buffer)) => get_dmabuf(buffer).ok().cloned(),
            _ => None,
        }
    });
    let Some(dmabuf) = dmabuf else { return };
    let Some((source, texture)) = state.backend.renderer().worker_copy_source(&dmabuf) else {
        return;
    };
    let Some(client) = surface.client() else { return };
    let Some(worker) = state.cpu_copies.worker.as_mut() else {
        return;
    };
    let bytes = source.copy_bytes();
    let Some(id) = worker.submit(source) else {
        warn!("CPU copy worker is gone; copying on the loop at render time");
        return;
    };
    let blocker = FlagBlocker::default();
    state.cpu_copies.pending.insert(
        id,
        Pending {
            client,
            texture,
            blocker: blocker.clone(),
        },
    );
    debug!(surface = ?surface.id(), job = id, bytes, "commit held while its CPU copy runs on the worker");
    add_blocker(surface, blocker);
}

fn on_copy_done(state: &mut State, done: CopyDone) {
    let Some(p) = state.cpu_copies.pending.remove(&done.id) else {
        return;
    };
    let stats = &mut state.cpu_copies.stats;
    match done.result {
        Ok(staged) => {
            stats.worker += 1;
            stats.worker_max_ms = stats.worker_max_ms.max(done.elapsed.as_secs_f64() * 1e3);
            state.backend.renderer_mut().staged_upload_ready(&p.texture, staged);
        }
        Err(e) => {
            stats.worker_failed += 1;
            warn!("CPU copy on the worker failed: {e}");
        }
    }
    p.blocker.release();
    let dh = state.display_handle.clone();
    state.client_compositor_state(&p.client).blocker_cleared(state, &dh);
}
