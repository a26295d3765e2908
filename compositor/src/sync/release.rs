//! Implicit (and explicit) release: give client dma-bufs back only when the
//! GPU is done with them, without blocking the loop.
//!
//! After a frame is submitted, the wayland `Buffer`s of its dma-buf surfaces
//! are cloned into a [`PendingRelease`] with the frame's fence. smithay sends
//! `wl_buffer.release` (and signals an explicit release point) when the last
//! clone drops, so a buffer the client replaced stays unreleased while a frame
//! that sampled it runs:
//!
//! * where the frame's completion was imported into every sampled dma-buf as
//!   a READ fence (the device exports SYNC_FD; `FrameFence::implicit_release`),
//!   implicitly synced buffers need no hold: the client's next GPU write waits
//!   for ours in the kernel. Explicitly synced ones are still held (their
//!   release point is signaled from the CPU, see `docs/sync.md`);
//! * otherwise (lavapipe on the host) the clones are kept until the fence is
//!   seen signaled: [`PendingReleases::poll`] runs on every frame tick, a
//!   non-blocking `vkGetFenceStatus`.

use std::sync::Arc;

use importer::vulkan::frame::FrameFence;
use smithay::backend::renderer::{
    element::{surface::WaylandSurfaceRenderElement, RenderElement, UnderlyingStorage},
    sync::SyncPoint,
    utils::Buffer,
};
use smithay::reexports::wayland_server::{backend::ObjectId, Resource};
use smithay::wayland::dmabuf::get_dmabuf;

use crate::render::{frame::VkSyncFence, VkRenderer};

/// Buffers kept until a frame's fence signals.
pub struct PendingRelease {
    fence: Arc<FrameFence>,
    _buffers: Vec<Buffer>,
}

/// Every frame still holding buffers.
#[derive(Default)]
pub struct PendingReleases {
    pending: Vec<PendingRelease>,
    pub early: u64,
    pub after_fence: u64,
}

impl PendingReleases {
    /// Records the dma-buf buffers of `elements` drawn by the frame behind `sync`.
    pub fn track_frame(
        &mut self,
        renderer: &mut VkRenderer,
        elements: &[WaylandSurfaceRenderElement<VkRenderer>],
        sync: &SyncPoint,
    ) {
        let Some(fence) = sync.get::<VkSyncFence>().map(|f| f.0.clone()) else { return };
        if fence.sampled_dmabufs() == 0 {
            return;
        }
        let early = fence.implicit_release();
        let mut buffers = Vec::new();
        for element in elements {
            let Some(UnderlyingStorage::Wayland(buffer)) = element.underlying_storage(renderer) else { continue };
            if get_dmabuf(buffer).is_err() {
                continue;
            }
            if early && !is_explicit(buffer) {
                continue;
            }
            buffers.push(buffer.clone());
        }
        if early {
            self.early += 1;
        }
        if !buffers.is_empty() {
            self.pending.push(PendingRelease { fence, _buffers: buffers });
        }
    }

    /// Drops the buffers of finished frames (sends their releases). Never blocks.
    pub fn poll(&mut self) {
        let before = self.pending.len();
        self.pending.retain(|p| !p.fence.is_signaled());
        self.after_fence += (before - self.pending.len()) as u64;
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// wl_buffers last committed with explicit sync points (their release is
/// the release point, signaled when the `Buffer` drops).
static EXPLICIT: std::sync::Mutex<Vec<ObjectId>> = std::sync::Mutex::new(Vec::new());

/// Marks `buffer` as committed with explicit sync points (or not).
pub fn mark_explicit(buffer: &smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer, explicit: bool) {
    let mut set = EXPLICIT.lock().unwrap_or_else(|p| p.into_inner());
    set.retain(|id| id != &buffer.id() && !id.is_null());
    if explicit {
        set.push(buffer.id());
    }
}

fn is_explicit(buffer: &Buffer) -> bool {
    let id = buffer.id();
    EXPLICIT.lock().unwrap_or_else(|p| p.into_inner()).contains(&id)
}
