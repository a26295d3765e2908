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
//!    with implicit sync, the write fences of every plane: calloop sources
//!    watch them, so nobody waits), the loop sends a [`CopyJob`] to the
//!    worker thread. A held copy whose surface dies meanwhile is dropped
//!    with its sources at the next frame tick ([`prune`]).
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

use std::os::fd::OwnedFd;

use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::{Interest, Mode, PostAction, RegistrationToken};

use importer::lockdep;
use importer::vulkan::client_buffer::ClientBuffer;
use importer::vulkan::upload::StagedUpload;
use importer::vulkan::VkError;
use smithay::reexports::calloop::channel::{self, Sender};
use smithay::reexports::calloop::LoopHandle;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{Client, DisplayHandle, Resource, Weak};
use smithay::wayland::compositor::{
    add_pre_commit_hook, with_states, BufferAssignment, CompositorHandler, SurfaceAttributes,
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
    surface: Weak<WlSurface>,
    buffer: ClientBuffer,
    blocker: FlagBlocker,
    /// Fences still to signal before the job is sent (0: sent).
    waiting: usize,
    /// The loop sources watching them, removed when the job goes or the
    /// surface dies.
    sources: Vec<RegistrationToken>,
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
    // A copy staged for an earlier commit and never used must not stand in
    // for this one.
    buffer.forget_staged();
    let copies = &mut state.cpu_copies;
    copies.next_id += 1;
    let id = copies.next_id;
    let blocker = FlagBlocker::default();
    copies.held.insert(
        id,
        Held {
            client,
            surface: surface.downgrade(),
            buffer,
            blocker: blocker.clone(),
            waiting: 0,
            sources: Vec::new(),
        },
    );
    crate::buffer_sync::hold::hold_commit(state, surface, blocker);
    let acquire = crate::protocols::drm_syncobj::pending_acquire(surface);
    match watch_fences(state, id, acquire, &dmabuf) {
        Ok(0) => {
            debug!(surface = ?surface.id(), job = id, "commit held while its CPU copy runs on the worker");
            send(state, id);
        }
        Ok(n) => {
            debug!(surface = ?surface.id(), job = id, fences = n, "commit held; its CPU copy waits for the buffer's fences")
        }
        Err(e) => {
            warn!("cannot watch the buffer's fences ({e}); copying now");
            send(state, id);
        }
    }
}

/// Watches what job `id` must wait for before its buffer may be read: the
/// explicit acquire point, or (implicit sync) the write fences of every
/// distinct plane fd (POLLIN on a dup, so the implicit acquire's own source
/// on the same file is not disturbed: epoll takes one registration per fd).
/// Returns how many fences are pending; each source calls [`fence_ready`].
/// Neither the loop nor the worker waits on them.
fn watch_fences(
    state: &mut State,
    id: u64,
    acquire: Option<crate::protocols::drm_syncobj::TimelinePoint>,
    dmabuf: &smithay::backend::allocator::dmabuf::Dmabuf,
) -> anyhow::Result<usize> {
    let handle = state
        .buffer_sync
        .loop_handle
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no event loop yet"))?;
    let fds: Vec<OwnedFd> = match acquire {
        Some(point) if point.is_signaled() => Vec::new(),
        Some(point) => vec![point.eventfd(false)?],
        None => pending_plane_fds(dmabuf)?,
    };
    let mut sources = Vec::with_capacity(fds.len());
    for fd in fds {
        let token = handle
            .insert_source(Generic::new(fd, Interest::READ, Mode::Level), move |_, _, state| {
                fence_ready(state, id);
                Ok(PostAction::Remove)
            })
            .map_err(|e| anyhow::anyhow!("inserting a fence source: {e}"))?;
        sources.push(token);
    }
    let n = sources.len();
    if let Some(held) = state.cpu_copies.held.get_mut(&id) {
        held.waiting = n;
        held.sources = sources;
    }
    Ok(n)
}

/// Dups of the distinct plane fds of `dmabuf` whose write fences are still
/// pending.
fn pending_plane_fds(dmabuf: &smithay::backend::allocator::dmabuf::Dmabuf) -> anyhow::Result<Vec<OwnedFd>> {
    use importer::sync::{implicit::poll_ready, Access};
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for fd in dmabuf.handles() {
        let st = rustix::fs::fstat(fd)?;
        if seen.contains(&(st.st_dev, st.st_ino)) {
            continue;
        }
        seen.push((st.st_dev, st.st_ino));
        if !poll_ready(fd, Access::Read)? {
            out.push(fd.try_clone_to_owned()?);
        }
    }
    Ok(out)
}

/// One of job `id`'s fences signaled; the last one sends the job.
fn fence_ready(state: &mut State, id: u64) {
    let Some(held) = state.cpu_copies.held.get_mut(&id) else {
        return;
    };
    held.waiting = held.waiting.saturating_sub(1);
    if held.waiting == 0 {
        held.sources.clear();
        send(state, id);
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

/// Frame tick: drops held copies whose surface is gone (the client
/// destroyed it or disconnected), with the sources still watching their
/// fences, so nothing is kept for a commit that will never apply.
pub fn prune(state: &mut State) {
    let Some(handle) = state.buffer_sync.loop_handle.clone() else {
        return;
    };
    let dead: Vec<u64> = state
        .cpu_copies
        .held
        .iter()
        .filter(|(_, h)| h.surface.upgrade().is_err())
        .map(|(id, _)| *id)
        .collect();
    for id in dead {
        if let Some(held) = state.cpu_copies.held.remove(&id) {
            debug!(job = id, "surface gone; dropping its held CPU copy");
            for token in held.sources {
                handle.remove(token);
            }
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
            held.buffer.forget_staged();
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
