//! Live Vulkan objects, counted by the importer types that own them, so a
//! leak of client-buffer resources shows up as a count that does not come
//! back down (the compositor writes it to `--stats`).
//!
//! Each owner holds a [`Live`] token made in its one constructor and dropped
//! with it:
//!
//! * [`Texture`](super::texture::Texture): an image, its view, its memory
//!   (one per plane for disjoint images), a descriptor pool and set;
//! * [`HostBuffer`](super::memory::HostBuffer): a buffer and its memory
//!   (staging, read-backs, CPU-fallback sources);
//! * [`Target`](super::target::Target): a render target's image, view,
//!   memory and framebuffers;
//! * [`FrameFence`](super::ring::FrameFence): one submission's fence.
//!
//! The counts are per process (every renderer in it), as the objects are.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// What a [`Live`] token counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Texture,
    HostBuffer,
    Target,
    FrameFence,
}

static LIVE: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// One live object of its kind; the count drops with the token.
#[derive(Debug)]
pub(crate) struct Live(Kind);

impl Live {
    pub(crate) fn new(kind: Kind) -> Live {
        LIVE[kind as usize].fetch_add(1, Ordering::Relaxed);
        Live(kind)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE[self.0 as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Live Vulkan-owning objects in this process, by owner type.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveObjects {
    pub textures: u64,
    pub host_buffers: u64,
    pub targets: u64,
    pub frame_fences: u64,
}

/// The counts now.
pub fn live_objects() -> LiveObjects {
    let get = |kind: Kind| LIVE[kind as usize].load(Ordering::Relaxed);
    LiveObjects {
        textures: get(Kind::Texture),
        host_buffers: get(Kind::HostBuffer),
        targets: get(Kind::Target),
        frame_fences: get(Kind::FrameFence),
    }
}
