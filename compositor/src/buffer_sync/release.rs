//! Implicit (and explicit) release: give client dma-bufs back only when the
//! GPU is done with them, without blocking the loop.
//!
//! After a frame is submitted, the wayland `Buffer`s of its dma-buf surfaces
//! are cloned into a [`PendingRelease`] with the frame's fence (and, for
//! explicitly synced ones, their [`Release`]). smithay sends
//! `wl_buffer.release` when the last `Buffer` clone drops, the release point
//! is signaled when the last `Release` clone drops, so a buffer the client
//! replaced stays unreleased while a frame that sampled it runs:
//!
//! * where the frame's completion was imported into every sampled dma-buf as
//!   a READ fence (the device exports SYNC_FD; `FrameFence::implicit_release`),
//!   no buffer needs a hold: the client's next GPU write waits for ours in
//!   the kernel, and an explicitly synced buffer's release point is
//!   transferred from the dma-buf's fences, that READ fence included
//!   (`protocols::timeline_point`), so the GPU signals it;
//! * otherwise (lavapipe on the host) the clones are kept until the fence is
//!   seen signaled: [`PendingReleases::poll`] runs on every frame tick, a
//!   non-blocking `vkGetFenceStatus`.

use std::collections::HashMap;
use std::sync::Arc;

use importer::vulkan::ring::FrameFence;
use smithay::backend::renderer::{
    element::{RenderElement, UnderlyingStorage},
    sync::SyncPoint,
    utils::Buffer,
};
use smithay::reexports::wayland_server::{backend::ObjectId, protocol::wl_buffer::WlBuffer, Resource};
use smithay::wayland::dmabuf::get_dmabuf;

use crate::protocols::drm_syncobj::{Release, WeakRelease};
use crate::render::{frame::VkSyncFence, VkRenderer};

/// Buffers kept until a frame's fence signals.
pub struct PendingRelease {
    fence: Arc<FrameFence>,
    _buffers: Vec<Buffer>,
    /// Release points of the explicitly synced ones among `_buffers`.
    explicit: Vec<Release>,
}

/// A client buffer kept for as long as the display engine scans it out
/// (direct scan-out): dropping it releases the buffer, and signals an
/// explicitly synced buffer's release point.
pub struct HeldBuffer {
    _buffer: Buffer,
    _explicit: Option<Release>,
}

/// Every frame still holding buffers.
#[derive(Default)]
pub struct PendingReleases {
    pending: Vec<PendingRelease>,
    pub early: u64,
    pub after_fence: u64,
    /// Explicitly synced buffers given back (their `Release` dropped) after
    /// the frame that sampled them was seen done.
    pub explicit_after_fence: u64,
    explicit: ExplicitBuffers,
}

impl PendingReleases {
    /// Records the dma-buf buffers of `drawn`, the elements the frame
    /// behind `sync` drew (an element not drawn was not read: the frames
    /// that read its buffer hold it).
    ///
    /// Locks: none taken or needed (it clones `wl_buffer` handles and reads
    /// the frame's fence; no import is touched).
    pub fn track_frame<'e, E: RenderElement<VkRenderer> + 'e>(
        &mut self,
        renderer: &mut VkRenderer,
        drawn: impl IntoIterator<Item = &'e E>,
        sync: &SyncPoint,
    ) {
        let Some(fence) = sync.get::<VkSyncFence>().map(|f| f.0.clone()) else {
            return;
        };
        if fence.sampled_dmabufs() == 0 {
            return;
        }
        let early = fence.implicit_release();
        if early {
            // Every sampled dma-buf carries the frame's READ fence.
            self.early += 1;
            return;
        }
        let mut buffers = Vec::new();
        let mut explicit = Vec::new();
        for element in drawn {
            let Some(UnderlyingStorage::Wayland(buffer)) = element.underlying_storage(renderer) else {
                continue;
            };
            if get_dmabuf(buffer).is_err() {
                continue;
            }
            explicit.extend(self.release_of(buffer));
            buffers.push(buffer.clone());
        }
        if !buffers.is_empty() {
            self.pending.push(PendingRelease {
                fence,
                _buffers: buffers,
                explicit,
            });
        }
    }

    /// Holds `buffer` (and its release point, if explicitly synced) until
    /// the returned value drops.
    pub fn hold(&self, buffer: &Buffer) -> HeldBuffer {
        HeldBuffer {
            _buffer: buffer.clone(),
            _explicit: self.release_of(buffer),
        }
    }

    /// Drops the buffers of finished frames (sends their releases). Never blocks.
    pub fn poll(&mut self) {
        let before = self.pending.len();
        let mut explicit = 0;
        self.pending.retain(|p| {
            let done = p.fence.is_signaled();
            if done {
                explicit += p.explicit.len() as u64;
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
/// The release point a wl_buffer was last committed with is recorded (as a
/// weak reference: the surface state owns it) by the explicit commit
/// ([`PendingReleases::mark_explicit`]) in this per-compositor map and
/// removed when the wl_buffer is destroyed
/// (`BufferHandler::buffer_destroyed`, which smithay also runs for every
/// buffer of a client that disconnects), so an entry never outlives its
/// buffer. `ObjectId`s carry a serial, so a reused protocol id is a new key.
#[derive(Default)]
pub struct ExplicitBuffers(HashMap<ObjectId, WeakRelease>);

impl ExplicitBuffers {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PendingReleases {
    /// Records the release point `buffer` was committed with (`None`:
    /// committed without sync points).
    pub fn mark_explicit(&mut self, buffer: &WlBuffer, release: Option<&Release>) {
        match release {
            Some(release) => self.explicit.0.insert(buffer.id(), release.downgrade()),
            None => self.explicit.0.remove(&buffer.id()),
        };
    }

    /// Drops the per-buffer state of a destroyed wl_buffer.
    pub fn forget(&mut self, buffer: &WlBuffer) {
        self.explicit.0.remove(&buffer.id());
    }

    /// wl_buffers currently recorded as explicitly synced (stats, tests).
    pub fn explicit_tracked(&self) -> usize {
        self.explicit.len()
    }

    /// The live release point of `buffer`'s current commit, if any.
    fn release_of(&self, buffer: &Buffer) -> Option<Release> {
        self.explicit.0.get(&buffer.id()).and_then(WeakRelease::upgrade)
    }
}
