//! Held commits: every commit hold goes through [`hold_commit`], which
//! charges it to the client and watches it for stalls.
//!
//! DOC: stalled fences stay bounded
//!
//! A commit is held while its dma-buf's write fence, its explicit acquire
//! point or its CPU copy is pending; smithay queues the surface's later
//! commits behind it. A client whose fence never signals and who keeps
//! committing would make that queue grow without end, so:
//!
//! * a held commit, and every later commit of the same surface made while
//!   one is held, costs one `held_commits` unit of the client's budget
//!   (`crate::limits`) until smithay drops the commit (applied, or its
//!   surfaces gone and the client's queue next looked at). A held commit of
//!   a synchronized subsurface counts on its ancestors too, whose commits
//!   queue behind it. Past `--max-client-held-commits` the client is
//!   disconnected with `no_memory`;
//! * holds are per surface: other surfaces, and other clients, keep being
//!   drawn and paced at the output's rate;
//! * a commit held longer than `--stall-timeout` (default 10 s) is logged
//!   once as a warning naming the client, its pid and the surface. The
//!   compositor then keeps showing the surface's last applied frame and
//!   keeps waiting: a fence may still signal (a GPU that is only slow), and
//!   the held-commit limit bounds what waiting costs.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Weak,
    },
    time::{Duration, Instant},
};

use smithay::{
    reexports::wayland_server::{backend::ObjectId, protocol::wl_surface::WlSurface, DisplayHandle, Resource},
    wayland::compositor::{
        add_blocker, add_pre_commit_hook, get_parent, is_sync_subsurface, with_states, Blocker, BlockerState,
    },
};
use tracing::warn;

use crate::{
    limits::{charge, Budget, Charge},
    state::{ClientState, State},
};

/// Default for `--stall-timeout`.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-surface hold bookkeeping (in the surface's data map).
#[derive(Debug, Default)]
struct SurfaceHolds {
    /// Commits of this surface, or of a synchronized descendant, held or
    /// queued behind a held one.
    outstanding: Arc<AtomicU32>,
    /// Whether the commit being made now has been charged already.
    charged: AtomicBool,
}

/// What the stall watch knows of one held commit.
#[derive(Debug)]
struct HeldRecord {
    since: Instant,
    surface: ObjectId,
    pid: Option<i32>,
    warned: AtomicBool,
}

/// The held commits, for the stall warning. Entries die with their commit.
#[derive(Debug)]
pub struct StallWatch {
    held: Vec<Weak<HeldRecord>>,
    /// `--stall-timeout`.
    pub timeout: Duration,
    /// Stall warnings logged so far (`--stats`).
    pub warned: u64,
}

impl Default for StallWatch {
    fn default() -> Self {
        StallWatch {
            held: Vec::new(),
            timeout: DEFAULT_STALL_TIMEOUT,
            warned: 0,
        }
    }
}

impl StallWatch {
    /// Logs commits held past the timeout (once each) and forgets applied
    /// ones. Called from the frame tick; never blocks.
    pub fn check(&mut self, now: Instant) {
        self.held.retain(|record| record.strong_count() > 0);
        for record in self.held.iter().filter_map(Weak::upgrade) {
            let held_for = now.saturating_duration_since(record.since);
            if held_for >= self.timeout && !record.warned.swap(true, Ordering::Relaxed) {
                self.warned += 1;
                warn!(
                    pid = ?record.pid,
                    surface = ?record.surface,
                    held_s = held_for.as_secs_f64(),
                    "client stalled: a commit has waited longer than --stall-timeout for its fence, acquire \
                     point or copy; its last frame stays on screen and its later commits queue, up to \
                     --max-client-held-commits"
                );
            }
        }
    }

    /// Commits being watched (held, not queued).
    pub fn len(&self) -> usize {
        self.held.iter().filter(|r| r.strong_count() > 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One commit's cost: its budget unit and its place in the count of its
/// surface and of every ancestor it is synchronized with (their commits
/// queue behind it too). Dropped with the commit's blocker.
#[derive(Debug)]
struct CommitCharge {
    _budget: Charge,
    counters: Vec<Arc<AtomicU32>>,
}

impl Drop for CommitCharge {
    fn drop(&mut self) {
        for counter in &self.counters {
            counter.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A blocker that carries its commit's charge and, for a held commit, its
/// stall record.
struct Charged<B> {
    inner: B,
    _charge: Option<CommitCharge>,
    _record: Option<Arc<HeldRecord>>,
}

impl<B: Blocker> Blocker for Charged<B> {
    fn state(&self) -> BlockerState {
        self.inner.state()
    }
}

/// Never holds: carries the charge of a commit queued behind a held one.
struct Queued;

impl Blocker for Queued {
    fn state(&self) -> BlockerState {
        BlockerState::Released
    }
}

/// Registers the queue hook. Must be the surface's first pre-commit hook, so
/// it runs before the hooks that hold commits.
pub fn on_new_surface(surface: &WlSurface) {
    add_pre_commit_hook::<State, _>(surface, queue_hook);
}

/// Charges a commit made while an earlier one of the surface, or of a
/// synchronized child, is held.
fn queue_hook(_state: &mut State, dh: &DisplayHandle, surface: &WlSurface) {
    let queued = with_states(surface, |states| {
        let holds = states.data_map.get_or_insert_threadsafe(SurfaceHolds::default);
        let queued = holds.outstanding.load(Ordering::Acquire) > 0;
        holds.charged.store(queued, Ordering::Release);
        queued
    });
    if !queued {
        return;
    }
    if let Some(charge) = take(dh, surface) {
        add_blocker(
            surface,
            Charged {
                inner: Queued,
                _charge: Some(charge),
                _record: None,
            },
        );
    }
}

/// Holds the commit being made on `surface` until `blocker` releases it,
/// charged to the client (once: a commit the queue hook charged is not
/// charged again) and watched for stalls. Returns false when the client was
/// past its limit and has been disconnected (nothing is held then). Call
/// from a pre-commit hook.
pub fn hold_commit(state: &mut State, surface: &WlSurface, blocker: impl Blocker + Send + 'static) -> bool {
    let charged = with_states(surface, |states| {
        let holds = states.data_map.get_or_insert_threadsafe(SurfaceHolds::default);
        holds.charged.swap(true, Ordering::AcqRel)
    });
    let charge = if charged {
        None
    } else {
        let dh = state.display_handle.clone();
        match take(&dh, surface) {
            Some(charge) => Some(charge),
            None => return false,
        }
    };
    let record = Arc::new(HeldRecord {
        since: Instant::now(),
        surface: surface.id(),
        pid: surface
            .client()
            .and_then(|c| c.get_data::<ClientState>().and_then(ClientState::pid)),
        warned: AtomicBool::new(false),
    });
    state.held_commits.held.push(Arc::downgrade(&record));
    add_blocker(
        surface,
        Charged {
            inner: blocker,
            _charge: charge,
            _record: Some(record),
        },
    );
    true
}

/// One `held_commits` unit for `surface`'s client, counted on the surface
/// and on each ancestor it is synchronized with.
fn take(dh: &DisplayHandle, surface: &WlSurface) -> Option<CommitCharge> {
    let client = surface.client()?;
    let budget = charge(dh, &client, Budget::HeldCommits, 1)?;
    let counter = |s: &WlSurface| {
        with_states(s, |states| {
            states
                .data_map
                .get_or_insert_threadsafe(SurfaceHolds::default)
                .outstanding
                .clone()
        })
    };
    let mut counters = vec![counter(surface)];
    let mut at = surface.clone();
    while is_sync_subsurface(&at) {
        let Some(parent) = get_parent(&at) else { break };
        counters.push(counter(&parent));
        at = parent;
    }
    for c in &counters {
        c.fetch_add(1, Ordering::AcqRel);
    }
    Some(CommitCharge {
        _budget: budget,
        counters,
    })
}
