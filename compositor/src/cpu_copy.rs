//! CPU-fallback copies of large buffers, off the event loop: holding the
//! commit, the worker thread, and the completion, in one place.
//!
//! DOC: the shape
//!
//! A CPU-fallback copy reads the whole client buffer through its mapping;
//! for a 4096×4096 buffer that is 64 MiB of memcpy, long enough to make every
//! other client miss frames if the event loop did it. The importer marks
//! buffers whose copies reach the policy's threshold (`--cpu-copy-threshold`,
//! default 1 MiB) as belonging on a worker (`ClientBuffer::worker_copy`), and
//! for those:
//!
//! 1. A pre-commit hook (installed on every surface) sees such a buffer
//!    attached (`VkRenderer::worker_copy`, the one renderer call) and holds
//!    the commit with a [`FlagBlocker`].
//! 2. Once the buffer may be read (its explicit acquire point signaled, or,
//!    with implicit sync, its write fences: a calloop source watches either,
//!    so nobody waits), the loop sends a [`CopyJob`] to the worker thread.
//! 3. The worker runs `CpuSource::stage` (lock → pin → unlock → SYNC START →
//!    copy into a fresh staging buffer → SYNC END → lock → unpin): no
//!    reservation is held while it copies, and no Vulkan queue is touched.
//! 4. It sends a [`CopyDone`] through a calloop channel, which wakes the loop;
//!    the loop hands the staged upload to `ClientBuffer::accept_staged` (so
//!    the render-time refresh does not copy again), releases the blocker and
//!    calls `blocker_cleared`, which applies the commit.
//!
//! The loop keeps dispatching other clients meanwhile.
//!
//! DOC: blocking and locks (docs/locking-rules.md, rule B2)
//!
//! The worker blocks only in the job receive (and a test hook's gate), with no
//! lock held and announced to the validator with `lockdep::might_block`; the
//! SYNC ioctls of the access bracket run unlocked too. Everything on the
//! loop side runs with no reservation held. Dropping the worker closes the
//! job channel and joins the thread (teardown).

use std::collections::HashMap;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::{Interest, Mode, PostAction};

use importer::lockdep;
use importer::vulkan::client_buffer::ClientBuffer;
use importer::vulkan::upload::StagedUpload;
use importer::vulkan::VkError;
use smithay::reexports::calloop::channel::{self, Sender};
use smithay::reexports::calloop::LoopHandle;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{Client, DisplayHandle, Resource};
use smithay::wayland::compositor::{
    add_blocker, add_pre_commit_hook, with_states, BufferAssignment, CompositorHandler, SurfaceAttributes,
};
use smithay::wayland::dmabuf::get_dmabuf;
use tracing::{debug, warn};

use crate::buffer_sync::FlagBlocker;
use crate::state::State;

/// One copy to make: the whole of `buffer`.
struct CopyJob {
    id: u64,
    buffer: ClientBuffer,
}

/// A finished copy, sent back to the loop.
struct CopyDone {
    id: u64,
    result: Result<StagedUpload, VkError>,
    elapsed: Duration,
}

/// Counters for `--stats` (`"cpu_copies"`).
#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct CpuCopyStats {
    /// Copies made on the worker (commits held meanwhile).
    pub worker: u64,
    /// Worker copies that failed (the commit applied with the old pixels).
    pub worker_failed: u64,
    /// Longest worker copy, milliseconds.
    pub worker_max_ms: f64,
}

/// A commit held for a copy.
struct Held {
    client: Client,
    buffer: ClientBuffer,
    blocker: FlagBlocker,
}

/// The worker and the commits waiting for it.
#[derive(Default)]
pub struct CpuCopies {
    worker: Option<Worker>,
    next_id: u64,
    held: HashMap<u64, Held>,
    pub stats: CpuCopyStats,
}

impl CpuCopies {
    /// Exit: stops the worker after its current copy (joins it: teardown
    /// only, no lock held), so no pin is left on any buffer when the
    /// reservations are torn down.
    pub fn shutdown(&mut self) {
        self.worker = None;
        self.held.clear();
    }
}

/// Starts the worker and the channel that brings its results to the loop.
pub fn start(handle: &LoopHandle<'static, State>, state: &mut State) -> anyhow::Result<()> {
    let (tx, rx) = channel::channel::<CopyDone>();
    handle
        .insert_source(rx, |event, _, state: &mut State| {
            if let channel::Event::Msg(done) = event {
                on_copy_done(state, done);
            }
        })
        .map_err(|e| anyhow::anyhow!("inserting the CPU copy channel: {e}"))?;
    state.cpu_copies.worker = Some(Worker::spawn(tx)?);
    Ok(())
}

/// Installs the hook on a new surface.
pub fn on_new_surface(surface: &WlSurface) {
    add_pre_commit_hook::<State, _>(surface, copy_hook);
}

fn copy_hook(state: &mut State, _dh: &DisplayHandle, surface: &WlSurface) {
    let dmabuf = with_states(surface, |states| {
        match states.cached_state.get::<SurfaceAttributes>().pending().buffer.as_ref() {
            Some(BufferAssignment::NewBuffer(buffer)) => get_dmabuf(buffer).ok().cloned(),
            _ => None,
        }
    });
    let Some(dmabuf) = dmabuf else { return };
    let Some(buffer) = state.backend.renderer().worker_copy(&dmabuf) else {
        return;
    };
    let Some(client) = surface.client() else { return };
    if state.cpu_copies.worker.is_none() {
        return;
    }
    let copies = &mut state.cpu_copies;
    copies.next_id += 1;
    let id = copies.next_id;
    let blocker = FlagBlocker::default();
    copies.held.insert(
        id,
        Held {
            client,
            buffer,
            blocker: blocker.clone(),
        },
    );
    add_blocker(surface, blocker);
    let acquire = crate::protocols::drm_syncobj::pending_acquire(surface);
    match send_when_readable(state, id, acquire, &dmabuf) {
        Ok(true) => debug!(surface = ?surface.id(), job = id, "commit held; its CPU copy waits for the buffer's fence"),
        Ok(false) => {
            debug!(surface = ?surface.id(), job = id, "commit held while its CPU copy runs on the worker");
            send(state, id);
        }
        Err(e) => {
            warn!("cannot watch the buffer's fence ({e}); copying now");
            send(state, id);
        }
    }
}

/// Sends job `id` to the worker once its buffer may be read: after the
/// explicit acquire point signaled, or (implicit sync) the dma-buf's write
/// fences. `Ok(false)`: readable now, nothing watched. The loop watches the
/// fence (a calloop source); neither the loop nor the worker waits on it.
fn send_when_readable(
    state: &mut State,
    id: u64,
    acquire: Option<crate::protocols::drm_syncobj::TimelinePoint>,
    dmabuf: &smithay::backend::allocator::dmabuf::Dmabuf,
) -> anyhow::Result<bool> {
    let handle = state
        .buffer_sync
        .loop_handle
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no event loop yet"))?;
    let when_ready = move |state: &mut State| {
        send(state, id);
        PostAction::Remove
    };
    match acquire {
        Some(point) if point.is_signaled() => Ok(false),
        Some(point) => {
            let efd = point.eventfd(false)?;
            handle
                .insert_source(Generic::new(efd, Interest::READ, Mode::Level), move |_, _, state| {
                    Ok(when_ready(state))
                })
                .map_err(|e| anyhow::anyhow!("inserting the acquire point source: {e}"))?;
            Ok(true)
        }
        None => {
            // POLLIN on the dma-buf: its write fences signaled. A dup, so the
            // implicit acquire's own source on the same file is not disturbed
            // (epoll takes one registration per fd).
            let plane = dmabuf
                .handles()
                .next()
                .ok_or_else(|| anyhow::anyhow!("dma-buf without planes"))?;
            if importer::sync::implicit::poll_ready(plane, importer::sync::Access::Read)? {
                return Ok(false);
            }
            let fd = plane.try_clone_to_owned()?;
            handle
                .insert_source(Generic::new(fd, Interest::READ, Mode::Level), move |_, _, state| {
                    Ok(when_ready(state))
                })
                .map_err(|e| anyhow::anyhow!("inserting the dma-buf fence source: {e}"))?;
            Ok(true)
        }
    }
}

/// Hands held job `id` to the worker; if it is gone, releases the commit
/// (the render-time refresh copies on the loop).
fn send(state: &mut State, id: u64) {
    let copies = &mut state.cpu_copies;
    let Some(held) = copies.held.get(&id) else { return };
    let job = CopyJob {
        id,
        buffer: held.buffer.clone(),
    };
    if !copies.worker.as_ref().is_some_and(|w| w.submit(job)) {
        warn!("CPU copy worker is gone; copying on the loop at render time");
        if let Some(held) = copies.held.remove(&id) {
            release(state, &held);
        }
    }
}

/// Lets smithay apply the held commit.
fn release(state: &mut State, held: &Held) {
    held.blocker.release();
    let dh = state.display_handle.clone();
    state.client_compositor_state(&held.client).blocker_cleared(state, &dh);
}

fn on_copy_done(state: &mut State, done: CopyDone) {
    let Some(held) = state.cpu_copies.held.remove(&done.id) else {
        return;
    };
    let stats = &mut state.cpu_copies.stats;
    match done.result {
        Ok(staged) => {
            stats.worker += 1;
            stats.worker_max_ms = stats.worker_max_ms.max(done.elapsed.as_secs_f64() * 1e3);
            held.buffer.accept_staged(staged);
        }
        Err(e) => {
            stats.worker_failed += 1;
            warn!("CPU copy on the worker failed: {e}");
        }
    }
    release(state, &held);
}

/// The worker thread and its job queue.
struct Worker {
    jobs: Option<mpsc::Sender<CopyJob>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the worker; finished copies go to `done` (a calloop channel).
    fn spawn(done: Sender<CopyDone>) -> std::io::Result<Worker> {
        let (tx, rx) = mpsc::channel::<CopyJob>();
        let thread = std::thread::Builder::new()
            .name("cpu-copy".into())
            .spawn(move || run(rx, done))?;
        Ok(Worker {
            jobs: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues a job. Locks: none needed; never blocks (unbounded channel).
    fn submit(&self, job: CopyJob) -> bool {
        self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok())
    }
}

impl Drop for Worker {
    /// Teardown: closes the queue and joins the thread (blocking).
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            lockdep::might_block("joining the CPU copy worker");
            let _ = t.join();
        }
    }
}

fn run(jobs: mpsc::Receiver<CopyJob>, done: Sender<CopyDone>) {
    let gate = crate::test_hooks::copy_gate();
    loop {
        lockdep::might_block("CPU copy worker: job receive");
        let Ok(job) = jobs.recv() else { return };
        if let Some(gate) = &gate {
            gate.wait();
        }
        let start = Instant::now();
        // The loop sent the job once the buffer's fence allowed reading.
        let result = match job.buffer.worker_copy() {
            Some(source) => source.stage(None),
            None => Err(VkError::Unsupported("not a CPU-fallback buffer".into())),
        };
        let elapsed = start.elapsed();
        debug!(job = job.id, ?elapsed, "CPU copy staged on the worker");
        if done
            .send(CopyDone {
                id: job.id,
                result,
                elapsed,
            })
            .is_err()
        {
            return; // the loop is gone
        }
    }
}
