//! Limits how many compositors one test process runs at once.
//!
//! Cargo runs tests on as many threads as there are CPUs, and every test
//! starts a software-rendering compositor; on a small machine running them all
//! at once starves the frame clocks and trips the (real, bounded) waits. The
//! limit is `TEST_MAX_COMPOSITORS`, default: the number of CPUs.

use std::sync::{Condvar, Mutex, OnceLock};

struct Slots {
    used: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let max = std::env::var("TEST_MAX_COMPOSITORS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(cpus)
            .max(1);
        Slots {
            used: Mutex::new(0),
            freed: Condvar::new(),
            max,
        }
    })
}

/// Held while a compositor runs; releasing wakes one waiting test.
pub struct Slot(());

impl Slot {
    /// Blocks until a slot is free. Not time-bounded on purpose: waiting here
    /// is queueing behind other tests whose own waits are all bounded.
    pub fn acquire() -> Slot {
        let s = slots();
        let mut used = s.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= s.max {
            used = s.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += 1;
        Slot(())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let s = slots();
        *s.used.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        s.freed.notify_one();
    }
}
