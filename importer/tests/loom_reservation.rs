//! Model-checks the reservation state machine with loom.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p importer --test loom_reservation --release
//! ```
//!
//! Under `cfg(loom)` the reservation's mutex is loom's (see
//! `reservation/sync.rs`), and fences/objects below use loom atomics, so loom
//! explores every interleaving of lock, pin, unpin, invalidate, reap and the
//! fence signal, up to a preemption bound (default 3, or LOOM_MAX_PREEMPTIONS).
#![cfg(loom)]

use std::sync::Arc;

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::thread;

use importer::reservation::{AcquireCtx, Contended, DeviceId, Fence, Invalidate, Reservation, ResvError};

fn check(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}

#[derive(Default)]
struct LoomFence(AtomicBool);
impl Fence for LoomFence {
    fn is_signaled(&self) -> bool {
        self.0.load(SeqCst)
    }
}

/// Shared observations of one model run.
#[derive(Default)]
struct World {
    fence: LoomFence,
    in_use: AtomicUsize,
    freed: AtomicUsize,
}

/// A GPU import (`mapping == false`) or a CPU mapping. Dropping it is the
/// free: only after the frame fence signaled, and for the mapping only while
/// no pinned reader uses it.
struct Obj(Arc<World>, bool);
impl Drop for Obj {
    fn drop(&mut self) {
        assert!(self.0.fence.is_signaled(), "freed before the fence signaled");
        if self.1 {
            assert_eq!(self.0.in_use.load(SeqCst), 0, "mapping freed while pinned and in use");
        }
        self.0.freed.fetch_add(1, SeqCst);
    }
}

type Resv = Reservation<Obj, Obj>;
const DEV: DeviceId = DeviceId(0);

/// Reader pins and reads, an invalidator destroys the buffer, the GPU signals
/// and the event loop reaps, all racing. Properties: nothing is freed before
/// the fence signals or while pinned (asserted in `Obj::drop`); no pin is
/// granted after the buffer died; afterwards everything is freed.
#[test]
fn pin_invalidate_reap_race() {
    check(|| {
        let w = Arc::new(World::default());
        let r = Arc::new(Resv::new());
        {
            let mut g = r.lock();
            g.set_gpu_import(DEV, Obj(w.clone(), false)).unwrap();
            g.ensure_cpu_mapping(|| Ok::<_, ResvError>(Obj(w.clone(), true)))
                .unwrap();
            let fence: Arc<dyn Fence> = Arc::new(FenceRef(w.clone()));
            g.add_fence(fence);
        }
        let reader = {
            let (r, w) = (r.clone(), w.clone());
            thread::spawn(move || {
                let pin = {
                    let mut g = r.lock();
                    let gone = g.is_gone();
                    let pin = g.pin();
                    assert_eq!(pin.is_ok(), !gone, "pin granted on a dead buffer");
                    pin
                };
                if let Ok(pin) = pin {
                    w.in_use.fetch_add(1, SeqCst); // unlocked "read"
                    let _ = pin.mapping();
                    w.in_use.fetch_sub(1, SeqCst);
                    r.lock().unpin(pin).unwrap();
                }
            })
        };
        let invalidator = {
            let r = r.clone();
            thread::spawn(move || {
                r.lock().invalidate(Invalidate::Destroyed);
            })
        };
        let gpu = {
            let (r, w) = (r.clone(), w.clone());
            thread::spawn(move || {
                w.fence.0.store(true, SeqCst);
                r.reap();
            })
        };
        reader.join().unwrap();
        invalidator.join().unwrap();
        gpu.join().unwrap();
        let s = r.reap().expect("nobody holds it now");
        assert_eq!(s.pending, 0);
        assert_eq!(w.freed.load(SeqCst), 2);
    });
}

/// The frame fence, seen through the shared world.
struct FenceRef(Arc<World>);
impl Fence for FenceRef {
    fn is_signaled(&self) -> bool {
        self.0.fence.is_signaled()
    }
}

/// Attach/map racing destroy: an import made after the buffer died is refused,
/// and everything that was created is freed exactly once.
#[test]
fn attach_map_vs_destroy() {
    check(|| {
        let w = Arc::new(World::default());
        w.fence.0.store(true, SeqCst); // no GPU work in flight here
        let r = Arc::new(Resv::new());
        let t = {
            let (r, w) = (r.clone(), w.clone());
            thread::spawn(move || {
                let mut g = r.lock();
                // The import object is built either way (and dropped at once
                // if refused); the mapping is only created on a live buffer.
                let a = g.set_gpu_import(DEV, Obj(w.clone(), false)).is_ok();
                let b = g
                    .ensure_cpu_mapping(|| Ok::<_, ResvError>(Obj(w.clone(), true)))
                    .is_ok();
                assert_eq!(a, b);
                1 + usize::from(b)
            })
        };
        r.lock().invalidate(Invalidate::Destroyed);
        let created = t.join().unwrap();
        {
            let g = r.lock();
            assert!(g.is_gone() && g.gpu_import(DEV).is_none() && g.cpu_mapping().is_none());
        }
        r.reap().unwrap();
        assert_eq!(w.freed.load(SeqCst), created);
    });
}

/// Two threads lock two buffers in opposite orders through acquire contexts
/// (incremental, with back-off). loom fails the test if any interleaving
/// deadlocks.
#[test]
fn acquire_ctx_two_threads_two_buffers_no_deadlock() {
    check(|| {
        let a = Arc::new(Resv::new());
        let b = Arc::new(Resv::new());
        let t = {
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || {
                let mut ctx = AcquireCtx::new();
                ctx.lock_all(&[&*a, &*b]);
                assert_eq!(ctx.len(), 2);
            })
        };
        let mut ctx = AcquireCtx::new();
        for r in [&*b, &*a] {
            if let Err(Contended { .. }) = ctx.lock(r) {
                ctx.lock_slow(r);
            }
        }
        assert_eq!(ctx.len(), 2);
        drop(ctx);
        t.join().unwrap();
    });
}
