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

use std::collections::HashSet;
use std::sync::Arc;

use importer::vulkan::frame::FrameFence;
use smithay::backend::renderer::{
    element::{surface::WaylandSurfaceRenderElement, RenderElement, UnderlyingStorage},
    sync::SyncPoint,
    utils::Buffer,
};
use smithay::reexports::wayland_server::{backend::ObjectId, protocol::wl_buffer::WlBuffer, Resource};
use smithay::wayland::dmabuf::get_dmabuf;

use crate::render::{frame::VkSyncFence, VkRenderer};

/// Buffers kept until a frame's fence signals.
pub struct PendingRelease {
    fence: Arc<FrameFence>,
    _buffers: Vec<Buffer>,
    /// How many of `_buffers` carry an explicit release point.
    explicit: usize,
}

/// Every frame still holding buffers.
#[derive(Default)]
pub struct PendingReleases {
    pending: Vec<PendingRelease>,
    pub early: u64,
    pub after_fence: u64,
    /// Explicitly synced buffers given back (release point signaled by
    /// smithay) after the frame that sampled them was seen done.
    pub explicit_after_fence: u64,
    explicit: ExplicitBuffers,
}

impl PendingReleases {
    /// Records the dma-buf buffers of `elements` drawn by the frame behind `sync`.
    pub fn track_frame(
        &mut self,
        renderer: &mut VkRenderer,
        elements: &[WaylandSurfaceRenderElement<VkRenderer>],
        sync: &SyncPoint,
    ) {
        let Some(fence) = sync.get::<VkSyncFence>().map(|f| f.0.clone()) else {
            return;
        };
        if fence.sampled_dmabufs() == 0 {
            return;
        }
        let early = fence.implicit_release();
        let mut buffers = Vec::new();
        let mut explicit = 0;
        for element in elements {
            let Some(UnderlyingStorage::Wayland(buffer)) = element.underlying_storage(renderer) else {
                continue;
            };
            if get_dmabuf(buffer).is_err() {
                continue;
            }
            let is_explicit = self.is_explicit(buffer);
            if early && !is_explicit {
                continue;
            }
            explicit += usize::from(is_explicit);
            buffers.push(buffer.clone());
        }
        if early {
            self.early += 1;
        }
        if !buffers.is_empty() {
            self.pending.push(PendingRelease {
                fence,
                _buffers: buffers,
                explicit,
            });
        }
    }

    /// Drops the buffers of finished frames (sends their releases). Never blocks.
    pub fn poll(&mut self) {
        let before = self.pending.len();
        let mut explicit = 0;
        self.pending.retain(|p| {
            let done = p.fence.is_signaled();
            if done {
                explicit += p.explicit as u64;
            }
            !done
        });
        self.after_fence += (before - self.pending.len()) as u64;
        self.explicit_after_fence += explicit;
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// DOC: explicit-buffer state is per buffer, not process-wide
///
/// Whether a wl_buffer was last committed with explicit sync points is
/// recorded by the acquire pre-commit hook ([`PendingReleases::mark_explicit`])
/// in this per-compositor map and removed when the wl_buffer is destroyed
/// (`BufferHandler::buffer_destroyed`, which smithay also runs for every
/// buffer of a client that disconnects), so an entry never outlives its
/// buffer. `ObjectId`s carry a serial, so a reused protocol id is a new key.
#[derive(Default)]
pub struct ExplicitBuffers(HashSet<ObjectId>);

impl ExplicitBuffers {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PendingReleases {
    /// Marks `buffer` as committed with explicit sync points (or not).
    pub fn mark_explicit(&mut self, buffer: &WlBuffer, explicit: bool) {
        if explicit {
            self.explicit.0.insert(buffer.id());
        } else {
            self.explicit.0.remove(&buffer.id());
        }
    }

    /// Drops the per-buffer state of a destroyed wl_buffer.
    pub fn forget(&mut self, buffer: &WlBuffer) {
        self.explicit.0.remove(&buffer.id());
    }

    /// wl_buffers currently recorded as explicitly synced (stats, tests).
    pub fn explicit_tracked(&self) -> usize {
        self.explicit.len()
    }

    fn is_explicit(&self, buffer: &Buffer) -> bool {
        self.explicit.0.contains(&buffer.id())
    }
}
