//! lockdep: a lock-order and blocking validator for debug and test builds.
//!
//! DOC: the lock hierarchy (docs/locking-rules.md, rules B4 and B5)
//!
//! ```text
//! compositor state  →  client  →  reservation(s), in acquire-context order  →  device queue
//!                                                                  (command ring → VkQueue)
//! ```
//!
//! A lock may only be taken while holding locks to its left. The classes
//! below are its levels ([`COMPOSITOR_STATE`], [`CLIENT`], [`RESERVATION`],
//! [`DEVICE_RING`], [`DEVICE_QUEUE`]); where each level lives is in
//! docs/locking-rules.md ("Lock hierarchy"). Leaf locks outside the hierarchy
//! (a texture's pending-copy list, this validator's graph) are held for a few
//! loads and stores and never while calling out. Each lock is an instance of
//! a [`LockClass`]; the validator reasons about classes, like the kernel's
//! lockdep, so one observed A→B ordering anywhere forbids B→A everywhere,
//! even if the two orders never race in a given run.
//!
//! DOC: what is checked
//!
//! * **Order cycles.** Every blocking acquisition of class C while holding H
//!   records the edge H→C in one global graph (first-seen chain kept). If C
//!   already reaches H through recorded edges, that is a cycle: the violation
//!   reports the new chain and every edge of the existing one.
//! * **Blocking under a reservation.** Every function that may sleep (fence
//!   waits, `DMA_BUF_IOCTL_SYNC`, poll with a timeout, channel receives, queue
//!   idle) calls [`might_block`] first; it fails if the thread holds a lock of a
//!   class that forbids blocking ([`RESERVATION`]). Rule B2.
//! * **Same-class nesting.** Holding two locks of one class (two reservations)
//!   is legal only when both were taken through one acquire context
//!   ([`NestKey`], the analog of lockdep's `nest_lock`); re-locking the very
//!   same instance is a self-deadlock and always panics.
//! * **Guarded calls.** [`assert_held`] / [`assert_class_not_held`] are the
//!   runtime checks for calls that the type system cannot guard.
//!
//! Try-locks never wait, so they add no ordering edge themselves, but a lock
//! taken while one is held does (the holder waits with it held).
//!
//! DOC: failing, and reading the results
//!
//! A violation panics with a message naming both chains (default), or, inside
//! [`record`] on the same thread, is returned to the caller instead so tests can
//! plant violations without aborting. A program may instead choose
//! [`set_panic_on_violation`]`(false)`: violations outside [`record`] are then
//! logged (tracing error) and counted, not raised; the compositor binary does
//! that and writes the count into its `--stats` JSON, which the test harness
//! asserts is zero for every run (a self-deadlock still panics: it would hang).
//! [`fail_at_exit_on_violations`] makes a test binary exit non-zero at exit if
//! any violation escaped (one on a helper thread, or while panicking). [`violations_total`] counts all,
//! [`unexpected_violations`] those outside [`record`]; a test suite asserts the
//! latter is zero. A violation found while the thread is already panicking is
//! only recorded (a double panic would abort).
//!
//! The validator exists when `debug_assertions` are on or the `lockdep` feature
//! is enabled, and never under `cfg(loom)` (loom threads share OS-thread
//! locals). Otherwise every function here is an empty inline stub.

use std::marker::PhantomData;

/// A class of locks that share one position in the hierarchy.
#[derive(Debug)]
pub struct LockClass {
    pub name: &'static str,
    /// `false`: holding a lock of this class forbids [`might_block`].
    pub may_block_while_held: bool,
}

impl LockClass {
    pub const fn new(name: &'static str, may_block_while_held: bool) -> LockClass {
        LockClass {
            name,
            may_block_while_held,
        }
    }
    #[allow(dead_code)]
    pub(crate) fn key(&'static self) -> usize {
        self as *const LockClass as usize
    }
}

/// The compositor's global state lock (outermost).
pub static COMPOSITOR_STATE: LockClass = LockClass::new("compositor state", true);
/// A client's state.
pub static CLIENT: LockClass = LockClass::new("client", true);
/// A buffer's reservation (see [`crate::reservation`]). Never block under it.
pub static RESERVATION: LockClass = LockClass::new("reservation", false);
/// A renderer's command ring (pool, free buffers, frames in flight); taken
/// after reservations, before the queue.
pub static DEVICE_RING: LockClass = LockClass::new("device command ring", true);
/// A device's queue lock (innermost).
pub static DEVICE_QUEUE: LockClass = LockClass::new("device queue", true);

/// Identifies one acquire context; locks of one class taken under the same
/// key may nest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NestKey(pub u64);

impl NestKey {
    pub fn new() -> NestKey {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NestKey(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl Default for NestKey {
    fn default() -> Self {
        NestKey::new()
    }
}

/// What kind of rule was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    LockOrderCycle,
    BlockingUnderLock,
    NestedWithoutContext,
    RecursiveLock,
    NotHeld,
    HeldWhenForbidden,
}

/// One detected violation.
#[derive(Debug, Clone)]
pub struct Violation {
    pub kind: ViolationKind,
    pub message: String,
}

/// A lock held, as far as the validator knows; dropping it records the
/// release. Not `Send`: held-lock stacks are per thread.
#[must_use = "dropping the token records the release"]
#[derive(Debug)]
pub struct HeldLock {
    #[allow(dead_code)]
    token: u64,
    _not_send: PhantomData<*const ()>,
}

#[cfg(all(not(loom), any(debug_assertions, feature = "lockdep")))]
mod validator;
#[cfg(all(not(loom), any(debug_assertions, feature = "lockdep")))]
use validator as imp;

#[cfg(not(all(not(loom), any(debug_assertions, feature = "lockdep"))))]
mod imp {
    use super::*;
    #[inline(always)]
    pub fn acquire(_: &'static LockClass, _: usize, _: Option<NestKey>, _: bool) -> HeldLock {
        HeldLock {
            token: 0,
            _not_send: PhantomData,
        }
    }
    #[inline(always)]
    pub fn release(_: u64) {}
    #[inline(always)]
    pub fn might_block(_: &str) {}
    #[inline(always)]
    pub fn assert_held(_: &'static LockClass, _: usize, _: &str) {}
    #[inline(always)]
    pub fn assert_class_not_held(_: &'static LockClass, _: &str) {}
    #[inline(always)]
    pub fn held_count(_: &'static LockClass) -> usize {
        0
    }
    pub fn record<R>(f: impl FnOnce() -> R) -> (R, Vec<Violation>) {
        (f(), Vec::new())
    }
    pub fn violations_total() -> usize {
        0
    }
    pub fn unexpected_violations() -> usize {
        0
    }
    pub fn set_panic_on_violation(_: bool) {}
    pub const ENABLED: bool = false;
}

/// Whether the validator is compiled in.
pub const ENABLED: bool = imp::ENABLED;

impl HeldLock {
    #[allow(dead_code)]
    pub(crate) fn from_token(token: u64) -> HeldLock {
        HeldLock {
            token,
            _not_send: PhantomData,
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        imp::release(self.token);
    }
}

/// Records a blocking acquisition of a lock of `class` (call it *before*
/// blocking on the real lock, so a cycle is reported instead of deadlocking).
/// `instance` tells locks of one class apart (an address or an id).
pub fn acquire(class: &'static LockClass, instance: usize, nest: Option<NestKey>) -> HeldLock {
    imp::acquire(class, instance, nest, false)
}

/// Records a successful try-lock (call it *after* it succeeded): no order edge.
pub fn acquired_try(class: &'static LockClass, instance: usize, nest: Option<NestKey>) -> HeldLock {
    imp::acquire(class, instance, nest, true)
}

/// Called by every function that may sleep; fails if a lock of a class that
/// forbids blocking (a reservation) is held by this thread.
pub fn might_block(what: &str) {
    imp::might_block(what)
}

/// Fails unless this thread holds `instance` of `class`.
pub fn assert_held(class: &'static LockClass, instance: usize, what: &str) {
    imp::assert_held(class, instance, what)
}

/// Fails if this thread holds any lock of `class` (for lifetime operations
/// such as attach/detach and dropping a buffer's last reference).
pub fn assert_class_not_held(class: &'static LockClass, what: &str) {
    imp::assert_class_not_held(class, what)
}

/// How many locks of `class` this thread holds.
pub fn held_count(class: &'static LockClass) -> usize {
    imp::held_count(class)
}

/// Runs `f` with this thread's violations recorded instead of panicking
/// (except [`ViolationKind::RecursiveLock`], which would deadlock) and
/// returns them.
pub fn record<R>(f: impl FnOnce() -> R) -> (R, Vec<Violation>) {
    imp::record(f)
}

/// Every violation detected in this process, recorded or not.
pub fn violations_total() -> usize {
    imp::violations_total()
}

/// Violations detected outside [`record`]; a test suite asserts this is 0.
pub fn unexpected_violations() -> usize {
    imp::unexpected_violations()
}

/// `false`: violations outside [`record`] are logged and counted instead of
/// panicking (self-deadlocks still panic). Default `true`.
pub fn set_panic_on_violation(panic: bool) {
    imp::set_panic_on_violation(panic)
}

/// Registers (once per process) an exit hook that prints the count and ends
/// the process with status 101 if [`unexpected_violations`] is not zero: the
/// final check of a test binary, covering violations that did not fail the
/// test that caused them (helper threads, violations while panicking).
pub fn fail_at_exit_on_violations() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    extern "C" fn check() {
        let n = unexpected_violations();
        if n > 0 {
            eprintln!("lockdep: {n} unexpected violation(s) in this process; failing it");
            // SAFETY: _exit ends the process without running more exit hooks.
            unsafe { libc::_exit(101) };
        }
    }
    ONCE.call_once(|| {
        // SAFETY: `check` is a plain extern "C" fn with no captured state.
        unsafe { libc::atexit(check) };
    });
}
