//! Plants each kind of locking violation and shows the validator catches it
//! (recording mode, so the test process keeps running). Runs only where the
//! validator is compiled in (debug/test builds, or feature `lockdep`).
#![cfg(debug_assertions)]

use std::os::fd::AsFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use importer::lockdep::{self, LockClass, ViolationKind};
use importer::reservation::{AcquireCtx, Reservation};
use importer::sync::{dma_buf_sync, SyncDir};

type Resv = Reservation<(), ()>;

fn kinds(v: &[lockdep::Violation]) -> Vec<ViolationKind> {
    v.iter().map(|v| v.kind).collect()
}

fn no_unexpected() {
    // Final check at exit too: violations that did not fail their own test.
    lockdep::fail_at_exit_on_violations();
    assert_eq!(lockdep::unexpected_violations(), 0, "a violation escaped recording");
}

static TEST_A: LockClass = LockClass::new("test A", true);
static TEST_B: LockClass = LockClass::new("test B", true);

#[test]
fn lock_order_cycle_across_threads_reports_both_chains() {
    // Thread 1 establishes A → B.
    std::thread::Builder::new()
        .name("first".into())
        .spawn(|| {
            let _a = lockdep::acquire(&TEST_A, 1, None);
            let _b = lockdep::acquire(&TEST_B, 2, None);
        })
        .unwrap()
        .join()
        .unwrap();
    // Later, thread 2 takes B → A: a potential ABBA deadlock, caught even
    // though the two never overlapped.
    let (_, got) = std::thread::spawn(|| {
        lockdep::record(|| {
            let _b = lockdep::acquire(&TEST_B, 2, None);
            let _a = lockdep::acquire(&TEST_A, 1, None);
        })
    })
    .join()
    .unwrap();
    assert_eq!(kinds(&got), [ViolationKind::LockOrderCycle]);
    let msg = &got[0].message;
    assert!(msg.contains("new chain") && msg.contains("test B #2 → test A"), "{msg}");
    assert!(
        msg.contains("existing chain") && msg.contains("first seen on thread first"),
        "{msg}"
    );
    no_unexpected();
}

#[test]
fn device_queue_then_reservation_is_a_cycle() {
    let r = Resv::new();
    {
        // The documented order: reservation → device queue.
        let _g = r.lock();
        let _q = lockdep::acquire(&lockdep::DEVICE_QUEUE, 7, None);
    }
    let (_, got) = lockdep::record(|| {
        let _q = lockdep::acquire(&lockdep::DEVICE_QUEUE, 7, None);
        let _g = r.lock();
    });
    assert_eq!(kinds(&got), [ViolationKind::LockOrderCycle]);
    assert!(
        got[0]
            .message
            .contains("\"reservation\" while holding \"device queue\""),
        "{}",
        got[0].message
    );
    no_unexpected();
}

#[test]
fn blocking_wait_under_a_reservation_is_caught() {
    let r = Resv::new();
    let memfd = rustix::fs::memfd_create("not-a-dma-buf", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let g = r.lock();
    let (_, got) = lockdep::record(|| {
        let _ = dma_buf_sync(memfd.as_fd(), SyncDir::Read, false);
        lockdep::might_block("channel receive");
    });
    drop(g);
    assert_eq!(
        kinds(&got),
        [ViolationKind::BlockingUnderLock, ViolationKind::BlockingUnderLock]
    );
    assert!(got[0].message.contains("DMA_BUF_IOCTL_SYNC"), "{}", got[0].message);
    // Unlocked, the same calls are fine.
    let (_, got) = lockdep::record(|| {
        let _ = dma_buf_sync(memfd.as_fd(), SyncDir::Read, false);
        lockdep::might_block("channel receive");
    });
    assert!(got.is_empty(), "{got:?}");
    no_unexpected();
}

#[test]
fn nesting_two_reservations_needs_an_acquire_context() {
    let (a, b) = (Resv::new(), Resv::new());
    let (_, got) = lockdep::record(|| {
        let _ga = a.lock();
        let _gb = b.lock();
    });
    assert_eq!(kinds(&got), [ViolationKind::NestedWithoutContext]);
    // Through a context: legal, in either order.
    let (_, got) = lockdep::record(|| {
        let mut ctx = AcquireCtx::new();
        ctx.lock_all(&[&b, &a]);
        assert_eq!(ctx.len(), 2);
    });
    assert!(got.is_empty(), "{got:?}");
    // A try-lock cannot deadlock, so eviction may try-lock under a reservation.
    let (_, got) = lockdep::record(|| {
        let _ga = a.lock();
        assert!(b.try_lock().is_some());
    });
    assert!(got.is_empty(), "{got:?}");
    no_unexpected();
}

#[test]
fn relocking_the_same_reservation_panics_instead_of_deadlocking() {
    let a = Resv::new();
    let _g = a.lock();
    let (res, got) = lockdep::record(|| catch_unwind(AssertUnwindSafe(|| drop(a.lock()))));
    assert!(res.is_err(), "must panic, not deadlock");
    assert_eq!(kinds(&got), [ViolationKind::RecursiveLock]);
    no_unexpected();
}

#[test]
fn guarded_call_without_the_lock_is_caught_at_runtime() {
    let a = Resv::new();
    let (_, got) = lockdep::record(|| a.assert_held("callback that needs the reservation"));
    assert_eq!(kinds(&got), [ViolationKind::NotHeld]);
    let (_, got) = lockdep::record(|| {
        let _g = a.lock();
        a.assert_held("callback that needs the reservation");
    });
    assert!(got.is_empty(), "{got:?}");
    no_unexpected();
}

#[test]
fn lifetime_work_under_a_reservation_is_caught() {
    let a = Resv::new();
    let b = Arc::new(Resv::new());
    let (_, got) = lockdep::record(|| {
        let _g = a.lock();
        drop(b); // last reference: detach must run unlocked
        let _c = Resv::new(); // attach too (and its drop)
    });
    assert_eq!(
        kinds(&got),
        [
            ViolationKind::HeldWhenForbidden,
            ViolationKind::HeldWhenForbidden,
            ViolationKind::HeldWhenForbidden
        ]
    );
    assert!(got[0].message.contains("last reference"), "{}", got[0].message);
    no_unexpected();
}

#[test]
fn clean_code_has_no_violations() {
    let before = lockdep::violations_total();
    let (a, b) = (Arc::new(Resv::new()), Arc::new(Resv::new()));
    let (_, got) = lockdep::record(|| {
        let _s = lockdep::acquire(&lockdep::COMPOSITOR_STATE, 1, None);
        let _c = lockdep::acquire(&lockdep::CLIENT, 1, None);
        let mut ctx = AcquireCtx::new();
        ctx.lock_all(&[&*a, &*b]);
        let _q = lockdep::acquire(&lockdep::DEVICE_QUEUE, 1, None);
    });
    assert!(got.is_empty(), "{got:?}");
    assert!(lockdep::violations_total() >= before);
    no_unexpected();
}
