//! The reservation state machine: pins, invalidation, deferred freeing,
//! eviction by try-lock, and the acquire context.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};

use importer::lockdep;
use importer::reservation::{
    evict_idle, AcquireCtx, Contended, DeviceId, Fence, FenceRef, Graveyard, Invalidate, Reservation, ResvError,
};

/// Stands for a VkImage/VkDeviceMemory or a mapping: counts its frees.
struct Obj(Arc<AtomicUsize>);
impl Drop for Obj {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[derive(Default)]
struct TestFence(AtomicBool);
impl Fence for TestFence {
    fn is_signaled(&self) -> bool {
        self.0.load(SeqCst)
    }
}

type Resv = Reservation<Obj, Obj>;
const DEV: DeviceId = DeviceId(0);

fn setup(freed: &Arc<AtomicUsize>) -> Arc<Resv> {
    let r = Arc::new(Resv::new());
    let mut g = r.lock();
    g.set_gpu_import(DEV, Obj(freed.clone())).unwrap();
    g.ensure_cpu_mapping(|| Ok::<_, ResvError>(Obj(freed.clone()))).unwrap();
    drop(g);
    r
}

fn done() {
    // Final check at exit too: violations that did not fail their own test.
    lockdep::fail_at_exit_on_violations();
    if lockdep::ENABLED {
        assert_eq!(lockdep::unexpected_violations(), 0);
    }
}

#[test]
fn invalidate_frees_only_after_fences_signal() {
    let freed = Arc::new(AtomicUsize::new(0));
    let r = setup(&freed);
    let fence = Arc::new(TestFence::default());
    {
        let mut g = r.lock();
        g.add_fence(fence.clone() as FenceRef);
        assert_eq!(g.invalidate(Invalidate::Evicted), 2);
        assert!(g.gpu_import(DEV).is_none() && g.cpu_mapping().is_none());
    }
    assert_eq!(r.reap().unwrap().pending, 2);
    assert_eq!(freed.load(SeqCst), 0, "freed while the GPU may still use it");
    fence.0.store(true, SeqCst);
    let s = r.reap().unwrap();
    assert_eq!((s.freed, s.pending), (2, 0));
    assert_eq!(freed.load(SeqCst), 2);
    done();
}

#[test]
fn pinned_mapping_outlives_invalidate_and_new_pins_fail() {
    let freed = Arc::new(AtomicUsize::new(0));
    let r = setup(&freed);
    let pin = r.lock().pin().unwrap();
    assert_eq!(r.lock().pin_count(), 1);
    r.lock().invalidate(Invalidate::Destroyed);
    assert_eq!(r.lock().pin().err(), Some(ResvError::Gone(r.id())));
    let s = r.reap().unwrap();
    assert_eq!((s.freed, s.pending), (1, 1), "GPU import freed, pinned mapping kept");
    let _still_mapped: &Obj = pin.mapping();
    assert!(
        !r.lock().unpin(pin).unwrap(),
        "unpin reports the mapping died meanwhile"
    );
    assert_eq!(r.reap().unwrap().pending, 0);
    assert_eq!(freed.load(SeqCst), 2);
    assert_eq!(
        r.lock().set_gpu_import(DEV, Obj(freed.clone())).err(),
        Some(ResvError::Gone(r.id()))
    );
    done();
}

#[test]
fn reap_never_blocks_on_a_busy_reservation() {
    let freed = Arc::new(AtomicUsize::new(0));
    let r = setup(&freed);
    let mut g = r.lock();
    g.invalidate(Invalidate::Evicted);
    assert!(r.reap().is_none(), "busy: skipped, not waited for");
    drop(g);
    assert_eq!(r.reap().unwrap().freed, 2);
    done();
}

#[test]
fn graveyard_frees_destroyed_buffers_from_the_event_loop() {
    let freed = Arc::new(AtomicUsize::new(0));
    let r = setup(&freed);
    let fence = Arc::new(TestFence::default());
    r.lock().add_fence(fence.clone());
    let mut gy = Graveyard::new();
    r.destroy(&mut gy);
    drop(r); // the client's handle; the graveyard keeps it alive
    assert_eq!(gy.poll(), 0);
    assert_eq!(gy.len(), 1);
    fence.0.store(true, SeqCst);
    assert_eq!(gy.poll(), 2);
    assert!(gy.is_empty());
    assert_eq!(freed.load(SeqCst), 2);
    done();
}

/// A frame that samples an import after it was invalidated (its texture
/// handle lived on) adds its fence to the dead import, which then waits for it.
#[test]
fn fence_added_after_invalidate_holds_the_dead_gpu_import() {
    let freed = Arc::new(AtomicUsize::new(0));
    let r = setup(&freed);
    let mut gy = Graveyard::new();
    r.destroy(&mut gy);
    let late = Arc::new(TestFence::default());
    r.lock().add_fence(late.clone());
    // The mapping had no fence and no pin: freed; the GPU import waits.
    assert_eq!(gy.poll(), 1);
    assert_eq!(freed.load(SeqCst), 1);
    assert_eq!(gy.len(), 1);
    late.0.store(true, SeqCst);
    assert_eq!(gy.poll(), 1);
    assert!(gy.is_empty());
    assert_eq!(freed.load(SeqCst), 2);
    done();
}

#[test]
fn eviction_uses_try_lock_and_skips_busy_or_pinned() {
    let freed = Arc::new(AtomicUsize::new(0));
    let (busy, pinned, idle) = (setup(&freed), setup(&freed), setup(&freed));
    let pin = pinned.lock().pin().unwrap();
    let held = busy.lock();
    let mut gy = Graveyard::new();
    let (evicted, skipped) = evict_idle([&busy, &pinned, &idle], 8, &mut gy);
    assert_eq!((evicted, skipped), (1, 2));
    drop(held);
    assert_eq!(gy.poll(), 2);
    assert_eq!(freed.load(SeqCst), 2);
    pinned.lock().unpin(pin).unwrap();
    done();
}

#[test]
fn acquire_ctx_out_of_order_contention_backs_off() {
    let (low, high) = (Arc::new(Resv::new()), Arc::new(Resv::new()));
    assert!(low.id() < high.id());
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let l2 = low.clone();
    // Another thread holds `low`. (It waits on a channel with it held; that
    // breaks rule B2 (docs/locking-rules.md) knowingly, to hold the lock across our attempt.)
    let t = std::thread::spawn(move || {
        let _g = l2.lock();
        held_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    });
    held_rx.recv().unwrap();
    let mut ctx = AcquireCtx::new();
    ctx.lock(&high).unwrap();
    assert_eq!(ctx.lock(&low).err(), Some(Contended { id: low.id() }));
    release_tx.send(()).unwrap();
    ctx.lock_slow(&low)
        .ensure_cpu_mapping(|| Ok::<_, ResvError>(Obj(Arc::default())))
        .unwrap();
    assert_eq!(ctx.len(), 2);
    assert!(ctx.get_mut(&high).is_some());
    let ids: Vec<u64> = ctx.iter_mut().map(|g| g.id()).collect();
    assert_eq!(ids, [low.id(), high.id()]);
    drop(ctx);
    t.join().unwrap();
    done();
}

#[test]
fn two_threads_locking_in_opposite_orders_do_not_deadlock() {
    let set: Arc<Vec<Arc<Resv>>> = Arc::new((0..4).map(|_| Arc::new(Resv::new())).collect());
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let set = set.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    let mut order: Vec<&Resv> = set.iter().map(|r| &**r).collect();
                    if (t + i) % 2 == 1 {
                        order.reverse();
                    }
                    let mut ctx = AcquireCtx::new();
                    for r in order {
                        if let Err(Contended { .. }) = ctx.lock(r) {
                            ctx.lock_slow(r);
                        }
                    }
                    assert_eq!(ctx.len(), 4);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    done();
}
