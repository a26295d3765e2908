//! Deferred freeing and cache trimming, driven by the event loop.
//!
//! DOC: nothing here blocks or takes a blocking lock
//!
//! The event loop calls [`Graveyard::poll`] (for example on every frame fence
//! signal or a timer). It try-locks each buried reservation and frees what
//! [`super::Reservation::reap`] allows; busy ones are simply tried next time
//! (docs/locking-rules.md, rule B3: nothing waits for the fences). [`evict_idle`] trims a cache
//! with try-lock only and skips busy or pinned buffers (rule B4).

use std::sync::Arc;

use super::{Invalidate, Reservation};

/// Reservations whose dead entries wait for fences or pins.
pub struct Graveyard<G, M> {
    buried: Vec<Arc<Reservation<G, M>>>,
}

impl<G, M> Default for Graveyard<G, M> {
    fn default() -> Self {
        Graveyard { buried: Vec::new() }
    }
}

impl<G, M> Graveyard<G, M> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `res` alive until everything dead in it has been freed.
    /// Locks: none needed (never locks).
    pub fn bury(&mut self, res: Arc<Reservation<G, M>>) {
        if !self.buried.iter().any(|r| Arc::ptr_eq(r, &res)) {
            self.buried.push(res);
        }
    }

    /// Frees what can be freed; returns how many entries were freed.
    /// Locks: try-locks each buried reservation; the caller may hold
    /// reservations of other buffers but normally holds none.
    pub fn poll(&mut self) -> usize {
        let mut freed = 0;
        let mut done = Vec::new();
        for (i, r) in self.buried.iter().enumerate() {
            if let Some(s) = r.reap() {
                freed += s.freed;
                if s.pending == 0 {
                    done.push(i);
                }
            }
        }
        // Dropping our Arc may drop the last reference: after all locks are gone.
        let mut released = Vec::new();
        for i in done.into_iter().rev() {
            released.push(self.buried.swap_remove(i));
        }
        drop(released);
        freed
    }

    /// Buried reservations still waiting.
    pub fn len(&self) -> usize {
        self.buried.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buried.is_empty()
    }
}

/// Trims a cache: evicts (invalidates with [`Invalidate::Evicted`]) up to
/// `max` idle buffers among `candidates`, try-lock only, skipping busy,
/// pinned or fenced ones. Evicted reservations are buried in `graveyard`.
/// Returns `(evicted, skipped_busy)`.
///
/// Locks: try-locks only; legal wherever a try-lock is.
pub fn evict_idle<'a, G: 'a, M: 'a>(
    candidates: impl IntoIterator<Item = &'a Arc<Reservation<G, M>>>,
    max: usize,
    graveyard: &mut Graveyard<G, M>,
) -> (usize, usize) {
    let (mut evicted, mut skipped) = (0, 0);
    for r in candidates {
        if evicted == max {
            break;
        }
        let Some(mut g) = r.try_lock() else {
            skipped += 1;
            continue;
        };
        if !g.is_idle() {
            skipped += 1;
            continue;
        }
        if g.invalidate(Invalidate::Evicted) > 0 {
            evicted += 1;
            drop(g);
            graveyard.bury(r.clone());
        }
    }
    (evicted, skipped)
}
