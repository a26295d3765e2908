//! Reservations: one lock per imported buffer over its import state.
//!
//! DOC: how this module enforces part B of docs/locking-rules.md
//!
//! * **B1** (held for mapping work): the operations that change what a
//!   reservation guards are methods of [`ReservationGuard`], and only
//!   [`Reservation::lock`], [`Reservation::try_lock`] and an [`AcquireCtx`]
//!   hand one out, so calling them unlocked does not compile:
//!
//!   ```compile_fail,E0308
//!   use importer::reservation::{Reservation, ReservationGuard};
//!   fn pin_it(g: &mut ReservationGuard<'_, (), ()>) { let _ = g.pin(); }
//!   let r: Reservation<(), ()> = Reservation::new();
//!   pin_it(&r); // expected `&mut ReservationGuard`, found `&Reservation`
//!   ```
//!
//!   ```compile_fail,E0599
//!   use importer::reservation::Reservation;
//!   let r: Reservation<(), ()> = Reservation::new();
//!   r.pin(); // pin is a guard method; a Reservation has none
//!   ```
//!
//!   A guard cannot outlive its reservation, nor leave its thread:
//!
//!   ```compile_fail,E0505
//!   use importer::reservation::Reservation;
//!   let r: Reservation<(), ()> = Reservation::new();
//!   let g = r.lock();
//!   drop(r); // cannot move out of `r` because it is borrowed
//!   drop(g);
//!   ```
//!
//!   ```compile_fail,E0277
//!   use importer::reservation::Reservation;
//!   let r: &'static Reservation<(), ()> = Box::leak(Box::new(Reservation::new()));
//!   let g = r.lock();
//!   std::thread::spawn(move || drop(g)); // guard is not Send
//!   ```
//!
//! * **B2** (no sleeping, attach or detach under it): [`Reservation::new`],
//!   [`Reservation::destroy`] and the drop of the last reference call
//!   [`lockdep::assert_class_not_held`]; the sleeping functions elsewhere call
//!   [`lockdep::might_block`]. The type system cannot see guards of *other*
//!   buffers, so this half is the validator's.
//! * **B3** (invalidate locked, free after the fences):
//!   [`ReservationGuard::invalidate`] only moves entries to the dead list with
//!   the fences in flight; [`Reservation::reap`] (try-lock) drops what is
//!   ready *after* unlocking; a [`Graveyard`] keeps reservations until then.
//! * **B4** (many buffers): [`acquire`] (one global order, try-lock out of
//!   order, back off); eviction uses try-lock only ([`evict_idle`]).
//! * **B5**: the reservation's lock class is [`lockdep::RESERVATION`].

pub mod acquire;
pub mod fence;
pub mod graveyard;
mod mutex;
mod state;

use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

pub use acquire::{AcquireCtx, Contended};
pub use fence::{Fence, FenceRef, Signaled};
pub use graveyard::{evict_idle, Graveyard};
pub use state::{DeviceId, Invalidate, Pin, ReapStats, ReservationGuard};

use crate::lockdep as ld;
use mutex::{Mutex, TryLockError};
use state::ResvState;

/// Why a guarded operation was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ResvError {
    #[error("buffer {0} was destroyed; no new imports or mappings")]
    Gone(u64),
    #[error("buffer {0} has no CPU mapping")]
    NotMapped(u64),
    #[error("pin of buffer {pin} handed to the reservation of buffer {resv}")]
    WrongReservation { pin: u64, resv: u64 },
    #[error("buffer {0}: CPU mapping is pinned; cannot replace it")]
    Pinned(u64),
}

/// A buffer's reservation: a lock over its import state. `G` is one GPU
/// import (the compositor's `vulkan::texture::Texture`), `M` the CPU mapping
/// (normally [`crate::cpu::CpuMapping`]).
pub struct Reservation<G, M> {
    id: u64,
    state: Mutex<ResvState<G, M>>,
}

impl<G, M> std::fmt::Debug for Reservation<G, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<G, M> Default for Reservation<G, M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<G, M> Reservation<G, M> {
    /// Creates the reservation of a newly imported buffer ("attach").
    ///
    /// Locks: no reservation may be held (lifetime work, rule B2). Ids grow
    /// monotonically; they are the acquire order.
    pub fn new() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        ld::assert_class_not_held(&ld::RESERVATION, "attach (Reservation::new)");
        Reservation {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(ResvState::new()),
        }
    }

    /// The buffer id: unique per process and the global acquire order.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Runtime check for calls the type system cannot guard (a callback
    /// that receives only `&Reservation`): fails unless this thread holds it.
    pub fn assert_held(&self, what: &str) {
        ld::assert_held(&ld::RESERVATION, self.instance(), what)
    }

    fn instance(&self) -> usize {
        self.id as usize
    }

    pub(crate) fn lock_in(&self, nest: Option<ld::NestKey>) -> ReservationGuard<'_, G, M> {
        // lockdep first: a cycle or self-deadlock is reported before blocking.
        let held = ld::acquire(&ld::RESERVATION, self.instance(), nest);
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        ReservationGuard::new(self, state, held)
    }

    pub(crate) fn try_lock_in(&self, nest: Option<ld::NestKey>) -> Option<ReservationGuard<'_, G, M>> {
        let state = match self.state.try_lock() {
            Ok(s) => s,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        let held = ld::acquired_try(&ld::RESERVATION, self.instance(), nest);
        Some(ReservationGuard::new(self, state, held))
    }

    /// Locks this one buffer, blocking. Locks: the thread must hold no other
    /// reservation (use an [`AcquireCtx`] for several); compositor state and
    /// client locks may be held, the device queue lock may not (hierarchy).
    pub fn lock(&self) -> ReservationGuard<'_, G, M> {
        self.lock_in(None)
    }

    /// Locks without waiting; `None` if busy. Legal anywhere in the hierarchy
    /// (a try-lock cannot deadlock); eviction and trimming use only this.
    pub fn try_lock(&self) -> Option<ReservationGuard<'_, G, M>> {
        self.try_lock_in(None)
    }

    /// Frees dead imports and mappings whose fences have signaled and that no
    /// one pins. Never blocks: try-locks, and returns `None` if busy.
    ///
    /// Locks: none required; the freed objects are dropped after unlocking.
    pub fn reap(&self) -> Option<ReapStats> {
        let mut guard = self.try_lock()?;
        let (corpses, stats) = guard.take_reapable();
        drop(guard);
        drop(corpses); // vkFreeMemory / munmap happen here, unlocked
        Some(stats)
    }

    /// The client destroyed the buffer: lock, invalidate everything, unlock,
    /// and hand the reservation to `graveyard` to be freed after its fences.
    ///
    /// Locks: none may be a reservation (takes this one itself).
    pub fn destroy(self: &std::sync::Arc<Self>, graveyard: &mut Graveyard<G, M>) {
        ld::assert_class_not_held(&ld::RESERVATION, "Reservation::destroy");
        self.lock().invalidate(Invalidate::Destroyed);
        graveyard.bury(self.clone());
    }
}

impl<G, M> Drop for Reservation<G, M> {
    /// Dropping the last reference is lifetime work: unlocked (rule B2). State
    /// still waiting on fences is leaked, not freed (see `ResvState::drop`).
    fn drop(&mut self) {
        ld::assert_class_not_held(&ld::RESERVATION, "drop of a Reservation's last reference");
    }
}
