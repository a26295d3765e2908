//! The state a reservation guards, and the guard's operations.
//!
//! DOC: every method here takes `&self`/`&mut self` on a [`ReservationGuard`],
//! so "Locks: this buffer's reservation" is the type signature. None of them
//! blocks or frees memory: replaced or invalidated objects go to the dead list
//! (with the fences in flight at that moment) and are dropped by
//! [`Reservation::reap`] after unlocking.
//!
//! DOC: pins
//!
//! [`ReservationGuard::pin`] counts a user of the *current* CPU mapping and
//! hands out a [`Pin`] holding it; the count lives under the lock. A pinned
//! mapping that gets invalidated stays mapped (it moves to the dead list with
//! its count) until [`ReservationGuard::unpin`] brings the count to zero and
//! its fences signal. New pins only ever reach the live mapping, so a dead one
//! is never handed out again.

use std::sync::Arc;

use super::fence::{all_signaled, FenceRef};
use super::mutex::MutexGuard;
use super::{Reservation, ResvError};
use crate::lockdep::HeldLock;

/// Which device a GPU import belongs to (the compositor numbers its devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceId(pub u32);

/// Why imports are being invalidated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidate {
    /// The client destroyed the buffer or disconnected: everything dies and
    /// no new import or mapping is allowed.
    Destroyed,
    /// Cache eviction/trimming: everything dies, the buffer may be re-imported.
    Evicted,
    /// A device was lost: only that device's import dies.
    DeviceLost(DeviceId),
}

/// What one [`Reservation::reap`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReapStats {
    /// Dead entries freed.
    pub freed: usize,
    /// Dead entries still waiting for fences or pins.
    pub pending: usize,
}

pub(crate) struct MapSlot<M> {
    slot: u64,
    map: Arc<M>,
    pins: u32,
}

pub(crate) enum Corpse<G, M> {
    Gpu(#[allow(dead_code)] Arc<G>),
    Cpu(MapSlot<M>),
}

struct Dead<G, M> {
    corpse: Corpse<G, M>,
    fences: Vec<FenceRef>,
}

impl<G, M> Dead<G, M> {
    fn ready(&self) -> bool {
        let unpinned = match &self.corpse {
            Corpse::Cpu(m) => m.pins == 0,
            Corpse::Gpu(_) => true,
        };
        unpinned && all_signaled(&self.fences)
    }
}

pub(crate) struct ResvState<G, M> {
    gone: bool,
    gpu: Vec<(DeviceId, Arc<G>)>,
    cpu: Option<MapSlot<M>>,
    fences: Vec<FenceRef>,
    dead: Vec<Dead<G, M>>,
    next_slot: u64,
}

impl<G, M> ResvState<G, M> {
    pub(crate) fn new() -> Self {
        ResvState {
            gone: false,
            gpu: Vec::new(),
            cpu: None,
            fences: Vec::new(),
            dead: Vec::new(),
            next_slot: 1,
        }
    }
}

impl<G, M> Drop for ResvState<G, M> {
    /// The last reference went away with work possibly in flight (nobody kept
    /// it in a [`super::Graveyard`]): leak rather than free memory the GPU may
    /// still use.
    fn drop(&mut self) {
        let busy = !all_signaled(&self.fences)
            || self.dead.iter().any(|d| !d.ready())
            || self.cpu.as_ref().is_some_and(|m| m.pins > 0);
        if busy {
            tracing::error!("reservation dropped with fences unsignaled or pins held; leaking its imports");
            std::mem::forget(std::mem::take(&mut self.gpu));
            std::mem::forget(self.cpu.take());
            std::mem::forget(std::mem::take(&mut self.dead));
        }
    }
}

/// Proof that this thread holds one buffer's reservation. Only
/// [`Reservation::lock`], [`Reservation::try_lock`] and an
/// [`super::AcquireCtx`] create one; dropping it unlocks. Not `Send`.
pub struct ReservationGuard<'a, G, M> {
    res: &'a Reservation<G, M>,
    state: MutexGuard<'a, ResvState<G, M>>,
    _held: HeldLock,
}

/// A pinned CPU mapping: the mapping stays valid until this is handed back to
/// [`ReservationGuard::unpin`]. Holding a `Pin` holds no lock.
#[must_use = "a pin must be handed back to ReservationGuard::unpin"]
pub struct Pin<M> {
    resv: u64,
    slot: u64,
    map: Option<Arc<M>>,
}

impl<M> Pin<M> {
    /// The pinned mapping. Touching its memory is CPU access: see
    /// [`crate::cpu`] for the SYNC bracket it needs.
    pub fn mapping(&self) -> &M {
        self.map.as_ref().expect("pin already released")
    }
    /// The buffer this pin belongs to.
    pub fn buffer_id(&self) -> u64 {
        self.resv
    }
}

impl<M> Drop for Pin<M> {
    fn drop(&mut self) {
        if self.map.is_some() {
            // The count stays up, so the mapping is leaked, never freed early.
            tracing::error!(
                buffer = self.resv,
                "Pin dropped without unpin; its mapping will never be freed"
            );
        }
    }
}

impl<'a, G, M> ReservationGuard<'a, G, M> {
    pub(crate) fn new(res: &'a Reservation<G, M>, state: MutexGuard<'a, ResvState<G, M>>, held: HeldLock) -> Self {
        ReservationGuard {
            res,
            state,
            _held: held,
        }
    }

    /// The reservation this guard locks.
    pub fn reservation(&self) -> &'a Reservation<G, M> {
        self.res
    }

    pub fn id(&self) -> u64 {
        self.res.id
    }

    /// True once the buffer was destroyed ([`Invalidate::Destroyed`]).
    pub fn is_gone(&self) -> bool {
        self.state.gone
    }

    fn check_alive(&self) -> Result<(), ResvError> {
        if self.state.gone {
            Err(ResvError::Gone(self.id()))
        } else {
            Ok(())
        }
    }

    fn bury(&mut self, corpse: Corpse<G, M>) {
        self.prune_fences();
        let fences = self.state.fences.clone();
        self.state.dead.push(Dead { corpse, fences });
    }

    /// The live GPU import for `dev`, if any.
    pub fn gpu_import(&self, dev: DeviceId) -> Option<&Arc<G>> {
        self.state.gpu.iter().find(|(d, _)| *d == dev).map(|(_, g)| g)
    }

    /// Installs the GPU import for `dev` (creating it is mapping work, rule
    /// B1); a previous import for `dev` moves to the dead list.
    pub fn set_gpu_import(&mut self, dev: DeviceId, import: G) -> Result<Arc<G>, ResvError> {
        self.check_alive()?;
        let import = Arc::new(import);
        if let Some(i) = self.state.gpu.iter().position(|(d, _)| *d == dev) {
            let (_, old) = self.state.gpu.swap_remove(i);
            self.bury(Corpse::Gpu(old));
        }
        self.state.gpu.push((dev, import.clone()));
        Ok(import)
    }

    /// The live CPU mapping, if any.
    pub fn cpu_mapping(&self) -> Option<&Arc<M>> {
        self.state.cpu.as_ref().map(|m| &m.map)
    }

    /// Returns the live CPU mapping, creating it with `create` (mmap: mapping
    /// work, under the lock, rule B1) if there is none.
    pub fn ensure_cpu_mapping<E: From<ResvError>>(
        &mut self,
        create: impl FnOnce() -> Result<M, E>,
    ) -> Result<Arc<M>, E> {
        self.check_alive()?;
        if let Some(m) = &self.state.cpu {
            return Ok(m.map.clone());
        }
        let map = Arc::new(create()?);
        let slot = self.state.next_slot;
        self.state.next_slot += 1;
        self.state.cpu = Some(MapSlot {
            slot,
            map: map.clone(),
            pins: 0,
        });
        Ok(map)
    }

    /// Drops the CPU mapping (vunmap analog): it moves to the dead list and
    /// is unmapped by `reap` once unpinned.
    pub fn unmap_cpu(&mut self) {
        if let Some(m) = self.state.cpu.take() {
            self.bury(Corpse::Cpu(m));
        }
    }

    /// Pins the live CPU mapping. Then unlock before touching its memory.
    pub fn pin(&mut self) -> Result<Pin<M>, ResvError> {
        self.check_alive()?;
        let id = self.id();
        let m = self.state.cpu.as_mut().ok_or(ResvError::NotMapped(id))?;
        m.pins += 1;
        Ok(Pin {
            resv: id,
            slot: m.slot,
            map: Some(m.map.clone()),
        })
    }

    /// Hands a pin back. Returns `true` if the mapping was still the live one
    /// (`false`: it was invalidated meanwhile and is now free to be reaped).
    pub fn unpin(&mut self, mut pin: Pin<M>) -> Result<bool, ResvError> {
        if pin.resv != self.id() {
            return Err(ResvError::WrongReservation {
                pin: pin.resv,
                resv: self.id(),
            });
        }
        let st = &mut *self.state;
        let (slot, live) = match st.cpu.as_mut().filter(|m| m.slot == pin.slot) {
            Some(m) => (m, true),
            None => {
                let dead = st.dead.iter_mut().find_map(|d| match &mut d.corpse {
                    Corpse::Cpu(m) if m.slot == pin.slot => Some(m),
                    _ => None,
                });
                (dead.expect("pinned mapping vanished while pinned"), false)
            }
        };
        slot.pins -= 1;
        // Not the last reference: the slot still holds one until reaped.
        pin.map = None;
        Ok(live)
    }

    /// Pins on the live CPU mapping.
    pub fn pin_count(&self) -> u32 {
        self.state.cpu.as_ref().map_or(0, |m| m.pins)
    }

    /// Records a fence of work that uses this buffer (a frame sampling it, an
    /// imported implicit fence). Signaled fences are pruned on the way.
    ///
    /// Dead GPU imports still waiting to be reaped get the fence too: a
    /// renderer may sample an import that was invalidated while a handle to
    /// it lived on (a destroyed `wl_buffer` stays on screen until replaced),
    /// and that import must then outlive this work as well (rule B3).
    pub fn add_fence(&mut self, fence: FenceRef) {
        self.prune_fences();
        for d in &mut self.state.dead {
            if matches!(d.corpse, Corpse::Gpu(_)) {
                d.fences.retain(|f| !f.is_signaled());
                d.fences.push(fence.clone());
            }
        }
        self.state.fences.push(fence);
    }

    /// Drops signaled fences. Never blocks.
    pub fn prune_fences(&mut self) {
        self.state.fences.retain(|f| !f.is_signaled());
    }

    /// Unsignaled fences in flight (after pruning).
    pub fn fences_pending(&mut self) -> usize {
        self.prune_fences();
        self.state.fences.len()
    }

    /// No pins and no fences in flight: evicting it frees memory soon.
    pub fn is_idle(&mut self) -> bool {
        self.pin_count() == 0 && self.fences_pending() == 0
    }

    /// Dead entries waiting to be reaped.
    pub fn dead_len(&self) -> usize {
        self.state.dead.len()
    }

    /// Marks imports (and for `Destroyed`/`Evicted` the CPU mapping) dead and
    /// records the fences they wait on (move_notify analog, rule B3). Frees
    /// nothing, never blocks. Returns how many entries died.
    pub fn invalidate(&mut self, why: Invalidate) -> usize {
        let before = self.state.dead.len();
        let gpu = std::mem::take(&mut self.state.gpu);
        for (dev, g) in gpu {
            match why {
                Invalidate::DeviceLost(lost) if lost != dev => self.state.gpu.push((dev, g)),
                _ => self.bury(Corpse::Gpu(g)),
            }
        }
        if !matches!(why, Invalidate::DeviceLost(_)) {
            self.unmap_cpu();
        }
        if why == Invalidate::Destroyed {
            self.state.gone = true;
        }
        let died = self.state.dead.len() - before;
        tracing::debug!(buffer = self.id(), ?why, died, "invalidated");
        died
    }

    /// Removes dead entries whose fences signaled and that no one pins; the
    /// caller drops them after unlocking.
    pub(crate) fn take_reapable(&mut self) -> (Vec<Corpse<G, M>>, ReapStats) {
        let dead = std::mem::take(&mut self.state.dead);
        let mut out = Vec::new();
        for d in dead {
            if d.ready() {
                out.push(d.corpse);
            } else {
                self.state.dead.push(d);
            }
        }
        let stats = ReapStats {
            freed: out.len(),
            pending: self.state.dead.len(),
        };
        (out, stats)
    }
}
