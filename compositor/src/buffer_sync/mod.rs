//! When a client buffer may be read (acquire) and when it goes back to the
//! client (release), for implicit and explicit sync. The primitives live in
//! `importer::sync`; this module decides, per commit and per frame, what to
//! wait for and when to give buffers back, all from the calloop loop.
//!
//! * [`implicit`]: acquire. A commit whose new dma-buf still has unsignaled
//!   write fences is held (a smithay `Blocker`) until they signal, observed
//!   by a calloop fd source, so the loop never blocks and other clients keep
//!   their frame rate. The renderer still waits on the GPU for whatever is
//!   left at sampling time where the device imports SYNC_FD semaphores.
//! * [`release`]: release. Buffers sampled by a frame are given back (wl_buffer
//!   .release, or the explicit release point) once the GPU is done: early,
//!   where the frame's completion was imported into the dma-buf as a READ
//!   fence; otherwise when the frame's VkFence is seen signaled by the loop.
//! * [`explicit`]: policy over `wp_linux_drm_syncobj_v1` (our own dispatch,
//!   `protocols::drm_syncobj`), offered only on a render node with timelines
//!   and SYNCOBJ_EVENTFD: the acquire point holds the commit until it signals
//!   (or, with `COMPOSITOR_ACQUIRE=gpu`, until it has a fence the GPU waits
//!   for); release points follow the buffer's pending fences.
//!
//! [`FlagBlocker`] is the commit hold all of them (and `crate::cpu_copy`) use.
//!
//! See `docs/sync.md` for the policy table and the bridging cases.

pub mod explicit;
pub mod hold;
pub mod implicit;
pub mod release;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use smithay::reexports::calloop::{LoopHandle, RegistrationToken};
use smithay::reexports::wayland_server::{protocol::wl_surface::WlSurface, Resource, Weak as WlWeak};
use smithay::wayland::compositor::{Blocker, BlockerState};

use crate::state::State;

/// How acquire fences (implicit, and explicit acquire points) are waited
/// for: `COMPOSITOR_ACQUIRE=loop|gpu` (`COMPOSITOR_IMPLICIT_ACQUIRE`, its
/// older name, is still read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquirePolicy {
    /// Hold the commit in the loop until the fences signal (default): a
    /// client's stuck fence never delays other clients' frames.
    Loop,
    /// Apply the commit as soon as there is a fence (at once for implicit
    /// sync; once an explicit acquire point is materialized) and let the GPU
    /// wait (semaphore import) where the device can; falls back to
    /// [`AcquirePolicy::Loop`] where it cannot.
    Gpu,
}

impl AcquirePolicy {
    pub fn from_env() -> AcquirePolicy {
        let var = std::env::var("COMPOSITOR_ACQUIRE").or_else(|_| std::env::var("COMPOSITOR_IMPLICIT_ACQUIRE"));
        match var.as_deref() {
            Ok("gpu") => AcquirePolicy::Gpu,
            Ok("loop") | Err(_) => AcquirePolicy::Loop,
            Ok(other) => {
                tracing::warn!("COMPOSITOR_ACQUIRE={other:?} is neither loop nor gpu; using loop");
                AcquirePolicy::Loop
            }
        }
    }
}

/// Counters for `--stats` and the tests.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct SyncStats {
    /// Commits held until an implicit fence signaled.
    pub implicit_held: u64,
    /// Commits held until an explicit acquire point signaled.
    pub explicit_held: u64,
    /// Acquire fences imported into their dma-buf as WRITE fences
    /// (bridging explicit → implicit).
    pub bridged_acquires: u64,
    /// Explicit commits applied with an unsignaled but materialized acquire
    /// point, the GPU waiting for its fence (`COMPOSITOR_ACQUIRE=gpu`).
    pub explicit_gpu_waits: u64,
    /// Release points transferred from the buffer's pending fences, so the
    /// kernel signals them when the GPU (or another implicit reader) is done
    /// (bridging implicit → explicit).
    pub release_points_from_fence: u64,
    /// Release points signaled from the CPU: nothing was pending any more.
    pub release_points_cpu: u64,
    /// Release points that could not be signaled (logged).
    pub release_points_failed: u64,
    /// Frames whose buffers were released early (READ fence imported).
    pub early_releases: u64,
    /// Frames whose buffers were released only after their VkFence signaled.
    pub fence_releases: u64,
    /// Explicitly synced buffers whose release point was signaled after the
    /// frame that sampled them was seen done (its VkFence signaled).
    pub explicit_releases: u64,
    /// wl_buffers still recorded as explicitly synced at exit (per-buffer
    /// state; 0 once every client destroyed its buffers or disconnected).
    pub explicit_buffers_tracked: u64,
    /// Client textures whose last reference was an in-flight frame: freed
    /// when that frame's fence signaled, from the loop (asynchronous
    /// invalidation: the client destroyed or replaced the buffer first).
    /// (Imports freed by the graveyard while running are
    /// `reservations.freed_running`.)
    pub deferred_texture_frees: u64,
}

/// The loop sources watching held commits' fences and acquire points, by
/// surface. A source owns what it needs to apply its commit (the client, the
/// point, the dma-buf); one whose fence never signals would keep those
/// alive after its client is gone, so [`Watches::prune`] removes the sources
/// of dead surfaces on every frame tick. A source that fires reports
/// [`Watches::done`].
#[derive(Default)]
pub struct Watches {
    next: u64,
    live: std::collections::HashMap<u64, (WlWeak<WlSurface>, RegistrationToken)>,
}

impl Watches {
    /// An id for a source about to be inserted (its callback calls `done`).
    pub fn reserve(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// Records the inserted source `token` watching for `surface`.
    pub fn insert(&mut self, id: u64, surface: &WlSurface, token: RegistrationToken) {
        self.live.insert(id, (surface.downgrade(), token));
    }

    /// The source `id` fired and removes itself.
    pub fn done(&mut self, id: u64) {
        self.live.remove(&id);
    }

    /// Removes the sources of surfaces that are gone.
    pub fn prune(&mut self, handle: &LoopHandle<'static, State>) {
        self.live.retain(|_, (surface, token)| {
            let alive = surface.upgrade().is_ok();
            if !alive {
                handle.remove(*token);
            }
            alive
        });
    }

    /// Sources watching now.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

/// Sync state kept in [`State`].
pub struct SyncState {
    pub loop_handle: Option<LoopHandle<'static, State>>,
    /// The sources watching held commits.
    pub watches: Watches,
    pub policy: AcquirePolicy,
    /// Whether the renderer's device imports SYNC_FD semaphores (GPU waits).
    pub gpu_wait: bool,
    pub stats: SyncStats,
}

impl Default for SyncState {
    fn default() -> Self {
        SyncState {
            loop_handle: None,
            watches: Watches::default(),
            policy: AcquirePolicy::from_env(),
            gpu_wait: false,
            stats: SyncStats::default(),
        }
    }
}

/// Holds a commit (smithay `Blocker`) until [`FlagBlocker::release`]: the
/// loop source watching a fence, an acquire point or the CPU copy worker
/// calls it, then `blocker_cleared`.
#[derive(Debug, Clone, Default)]
pub struct FlagBlocker(Arc<AtomicBool>);

impl FlagBlocker {
    pub fn release(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Blocker for FlagBlocker {
    fn state(&self) -> BlockerState {
        if self.0.load(Ordering::Acquire) {
            BlockerState::Released
        } else {
            BlockerState::Pending
        }
    }
}
