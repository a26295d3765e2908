//! Locking several reservations for one frame.
//!
//! DOC: the scheme: one global order, try-lock out of order, back off
//!
//! The acquire order is the buffer id (monotonic, assigned at attach). An
//! [`AcquireCtx`] only ever *blocks* on a reservation whose id is greater
//! than every id it holds. Along any chain of threads waiting on each other
//! the ids would therefore strictly increase, so a wait cycle (deadlock) is
//! impossible. A reservation that arrives out of order (the renderer meets
//! buffers in draw order, not id order) is try-locked; if that fails,
//! [`AcquireCtx::lock`] returns [`Contended`] (the `-EDEADLK` of ww_mutex) and
//! the caller calls [`AcquireCtx::lock_slow`], which drops every guard and
//! relocks the whole set in id order, blocking; state read before the
//! back-off must be re-read.
//!
//! Why not wound/wait tickets: with a fixed order there is nothing to wound,
//! no ticket bookkeeping and no retry storm between two frames; the only cost
//! is an occasional back-off, and a frame's buffer set is small. The kernel
//! needs ww_mutex because its lock sets are discovered under other locks and
//! cannot be sorted up front; ours can be ([`AcquireCtx::lock_all`]).
//!
//! For the validator the context is a `nest_lock`: reservations taken through
//! one context may nest; any other nesting of two reservations is a violation.

use super::{Reservation, ReservationGuard};
use crate::lockdep::NestKey;

/// The reservation was busy and out of order: call
/// [`AcquireCtx::lock_slow`] with it (or give up the frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("reservation {id} is contended out of acquire order; back off")]
pub struct Contended {
    pub id: u64,
}

/// A set of reservations held by one thread for one frame. Dropping it
/// unlocks all of them. Not `Send` (it owns guards).
pub struct AcquireCtx<'a, G, M> {
    key: NestKey,
    /// Held guards, ascending by id.
    guards: Vec<ReservationGuard<'a, G, M>>,
}

impl<'a, G, M> Default for AcquireCtx<'a, G, M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, G, M> AcquireCtx<'a, G, M> {
    /// Locks: none may be a reservation held outside this context.
    pub fn new() -> Self {
        AcquireCtx {
            key: NestKey::new(),
            guards: Vec::new(),
        }
    }

    fn max_id(&self) -> u64 {
        self.guards.last().map_or(0, |g| g.id())
    }

    fn position(&self, id: u64) -> Result<usize, usize> {
        self.guards.binary_search_by_key(&id, |g| g.id())
    }

    /// Adds one reservation. Blocks only if its id is above every held id;
    /// otherwise try-locks and returns [`Contended`] if busy.
    pub fn lock(&mut self, res: &'a Reservation<G, M>) -> Result<&mut ReservationGuard<'a, G, M>, Contended> {
        let pos = match self.position(res.id()) {
            Ok(i) => return Ok(&mut self.guards[i]),
            Err(i) => i,
        };
        let guard = if res.id() > self.max_id() {
            res.lock_in(Some(self.key))
        } else {
            res.try_lock_in(Some(self.key)).ok_or(Contended { id: res.id() })?
        };
        self.guards.insert(pos, guard);
        Ok(&mut self.guards[pos])
    }

    /// Back-off after [`Contended`]: unlocks everything, then locks the held
    /// set plus `res` in id order, blocking. Never deadlocks.
    pub fn lock_slow(&mut self, res: &'a Reservation<G, M>) -> &mut ReservationGuard<'a, G, M> {
        self.relock(&[res]);
        let i = self.position(res.id()).expect("just locked");
        &mut self.guards[i]
    }

    /// Locks every reservation in `set` (any order, duplicates allowed),
    /// keeping what is already held. Blocks; never deadlocks.
    pub fn lock_all(&mut self, set: &[&'a Reservation<G, M>]) {
        let max = self.max_id();
        let mut new: Vec<&'a Reservation<G, M>> =
            set.iter().copied().filter(|r| self.position(r.id()).is_err()).collect();
        new.sort_by_key(|r| r.id());
        new.dedup_by_key(|r| r.id());
        if new.first().map_or(true, |r| r.id() > max) {
            for r in new {
                let g = r.lock_in(Some(self.key));
                self.guards.push(g);
            }
        } else {
            self.relock(&new);
        }
    }

    fn relock(&mut self, extra: &[&'a Reservation<G, M>]) {
        let mut all: Vec<&'a Reservation<G, M>> = self.guards.iter().map(|g| g.reservation()).collect();
        all.extend_from_slice(extra);
        all.sort_by_key(|r| r.id());
        all.dedup_by_key(|r| r.id());
        self.guards.clear(); // unlock everything first
        for r in all {
            let g = r.lock_in(Some(self.key));
            self.guards.push(g);
        }
    }

    /// The guard of `res`, if this context holds it.
    pub fn get_mut(&mut self, res: &Reservation<G, M>) -> Option<&mut ReservationGuard<'a, G, M>> {
        let i = self.position(res.id()).ok()?;
        Some(&mut self.guards[i])
    }

    /// All held guards, ascending by id.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut ReservationGuard<'a, G, M>> {
        self.guards.iter_mut()
    }

    pub fn len(&self) -> usize {
        self.guards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.guards.is_empty()
    }
}
