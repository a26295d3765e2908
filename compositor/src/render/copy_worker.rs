//! CPU-fallback copies of large buffers, off the event loop.
//!
//! DOC: the rule and the shape
//!
//! A CPU-fallback copy reads the whole client buffer through its mapping;
//! for a 4096×4096 buffer that is 64 MiB of memcpy, long enough to make every
//! other client miss frames if the event loop did it. Copies of at least
//! [`threshold`] bytes (default 1 MiB, `COMPOSITOR_CPU_COPY_THRESHOLD`) are
//! therefore handed to one worker thread:
//!
//! 1. The commit's pre-commit hook (`sync::cpu_copy`) submits a [`CopyJob`]
//!    and holds the commit with a smithay `Blocker`.
//! 2. The worker runs `CpuSource::stage_waiting` (lock → pin → unlock → wait
//!    for the implicit write fences, bounded → SYNC START → copy into a fresh
//!    staging `HostBuffer` → SYNC END → lock → unpin): no reservation is held
//!    while it copies or waits, and no Vulkan queue is touched.
//! 3. It sends a [`CopyDone`] through a calloop channel, which wakes the loop;
//!    the loop queues the staged upload on the texture and releases the
//!    blocker, so the commit applies with the new pixels.
//!
//! The loop keeps dispatching other clients meanwhile.
//!
//! DOC: blocking and locks
//!
//! The worker blocks in exactly two places, both with no lock held and both
//! announced to the validator with `lockdep::might_block`: the job receive
//! and the bounded fence wait inside the access bracket. Dropping the worker
//! closes the job channel and joins the thread (teardown).
//!
//! DOC: test gate
//!
//! With `COMPOSITOR_COPY_GATE=<path of a FIFO>`, the worker opens the FIFO and
//! reads one byte before each job: a test holds a copy "in progress" for as
//! long as it likes and shows other clients keep their frames meanwhile,
//! without sleeping (tests/tests/cpu_copy_worker.rs). Never set otherwise.

use std::io::Read;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use importer::lockdep;
use importer::vulkan::cpu_import::CpuSource;
use importer::vulkan::texture::StagedUpload;
use importer::vulkan::VkError;
use smithay::reexports::calloop::channel::Sender;
use tracing::{debug, warn};

/// Default: copies of 1 MiB or more run on the worker.
pub const DEFAULT_THRESHOLD: u64 = 1 << 20;

/// How long the worker waits for a buffer's implicit write fences. The
/// commit was normally held until they signaled (`sync::implicit`), so this
/// is a bound, not an expected wait.
const FENCE_WAIT: Duration = Duration::from_secs(5);

/// Copies of at least this many bytes go to the worker
/// (`COMPOSITOR_CPU_COPY_THRESHOLD`, bytes; default [`DEFAULT_THRESHOLD`]).
pub fn threshold() -> u64 {
    std::env::var("COMPOSITOR_CPU_COPY_THRESHOLD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_THRESHOLD)
}

/// One copy to make: the whole of `source`.
pub struct CopyJob {
    pub id: u64,
    pub source: Arc<CpuSource>,
}

/// A finished copy, sent back to the loop.
pub struct CopyDone {
    pub id: u64,
    pub result: Result<StagedUpload, VkError>,
    pub elapsed: Duration,
}

/// The worker thread and its job queue.
pub struct CopyWorker {
    jobs: Option<mpsc::Sender<CopyJob>>,
    thread: Option<JoinHandle<()>>,
    next_id: u64,
}

impl CopyWorker {
    /// Starts the worker; finished copies go to `done` (a calloop channel).
    pub fn spawn(done: Sender<CopyDone>) -> std::io::Result<CopyWorker> {
        let (tx, rx) = mpsc::channel::<CopyJob>();
        let gate = std::env::var_os("COMPOSITOR_COPY_GATE").map(PathBuf::from);
        let thread = std::thread::Builder::new()
            .name("cpu-copy".into())
            .spawn(move || run(rx, done, gate))?;
        Ok(CopyWorker {
            jobs: Some(tx),
            thread: Some(thread),
            next_id: 1,
        })
    }

    /// Queues a full copy of `source`; returns the job id.
    /// Locks: none needed; never blocks (unbounded channel).
    pub fn submit(&mut self, source: Arc<CpuSource>) -> Option<u64> {
        let id = self.next_id;
        self.next_id += 1;
        self.jobs.as_ref()?.send(CopyJob { id, source }).ok()?;
        Some(id)
    }
}

impl Drop for CopyWorker {
    /// Teardown: closes the queue and joins the thread (blocking).
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            lockdep::might_block("joining the CPU copy worker");
            let _ = t.join();
        }
    }
}

fn wait_gate(gate: &PathBuf) {
    lockdep::might_block("COMPOSITOR_COPY_GATE");
    let mut byte = [0u8; 1];
    match std::fs::File::open(gate).and_then(|mut f| f.read_exact(&mut byte)) {
        Ok(()) => debug!("copy gate opened"),
        Err(e) => warn!("COMPOSITOR_COPY_GATE {}: {e}", gate.display()),
    }
}

fn run(jobs: mpsc::Receiver<CopyJob>, done: Sender<CopyDone>, gate: Option<PathBuf>) {
    loop {
        lockdep::might_block("CPU copy worker: job receive");
        let Ok(job) = jobs.recv() else { return };
        if let Some(g) = &gate {
            wait_gate(g);
        }
        let start = Instant::now();
        let result = job.source.stage_waiting(None, FENCE_WAIT);
        let elapsed = start.elapsed();
        debug!(
            job = job.id,
            bytes = job.source.copy_bytes(),
            ?elapsed,
            "CPU copy staged on the worker"
        );
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
