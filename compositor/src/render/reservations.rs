//! The renderer's side of buffer reservations: destroying imports whose
//! client dma-buf is gone, and the graveyard the frame tick polls.
//!
//! DOC: rules (locking-rules.md B3), as the compositor applies them
//!
//! * Every imported client dma-buf (image path, buffer path, CPU fallback)
//!   is an `importer::vulkan::client_buffer::ClientBuffer`: its reservation
//!   holds the GPU import (and the CPU mapping on the fallback path).
//! * When the `WeakDmabuf` of a cache entry is gone (the client destroyed the
//!   `wl_buffer` or disconnected), [`Reservations::destroy`] runs
//!   `Reservation::destroy`: lock → invalidate → unlock → bury in the
//!   graveyard. Nothing is freed there.
//! * [`Reservations::poll`] runs from the frame tick (`backend::headless`):
//!   try-locks each buried reservation and frees what the fences allow. It
//!   never blocks; busy or fenced entries are tried on the next tick.
//! * At exit, after the device is idle (`RenderCore::wait_idle`, teardown),
//!   one last poll frees everything; the counts go to `--stats`
//!   (`"reservations"`), and tests check nothing stayed buried.
//!
//! Locks: all of this runs on the event loop with no reservation held.

use std::sync::Arc;

use importer::vulkan::client_buffer::{BufferGraveyard, BufferReservation};

/// Counters written to `--stats` as `"reservations"`.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, PartialEq, Eq)]
pub struct ReservationStats {
    /// Client buffers imported under a reservation.
    pub created: u64,
    /// Of those, destroyed (invalidated and buried), in all.
    pub destroyed: u64,
    /// Destroyed while running because the client's dma-buf went away
    /// (`cleanup_texture_cache` on the frame tick), not at exit.
    pub destroyed_gone: u64,
    /// Dead imports and mappings freed by the graveyard, in all.
    pub freed: u64,
    /// Of those, freed by the frame tick's poll while running (not at exit).
    pub freed_running: u64,
    /// Reservations still buried (waiting for fences) when sampled.
    pub buried: u64,
}

/// The graveyard and its counters.
#[derive(Default)]
pub struct Reservations {
    graveyard: BufferGraveyard,
    stats: ReservationStats,
}

impl std::fmt::Debug for Reservations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservations").field("stats", &self.stats()).finish()
    }
}

impl Reservations {
    /// Counts a new import.
    pub fn created(&mut self) {
        self.stats.created += 1;
    }

    /// The client's buffer is gone (`running`), or the compositor is
    /// stopping: invalidate under the lock and bury.
    ///
    /// Locks: none may be a reservation (takes this one).
    pub fn destroy(&mut self, resv: &Arc<BufferReservation>, running: bool) {
        resv.destroy(&mut self.graveyard);
        self.stats.destroyed += 1;
        self.stats.destroyed_gone += u64::from(running);
    }

    /// Frees what the fences allow. Never blocks. Returns entries freed.
    pub fn poll(&mut self, running: bool) -> usize {
        let freed = self.graveyard.poll();
        self.stats.freed += freed as u64;
        if running {
            self.stats.freed_running += freed as u64;
        }
        freed
    }

    pub fn stats(&self) -> ReservationStats {
        ReservationStats {
            buried: self.graveyard.len() as u64,
            ..self.stats
        }
    }
}
