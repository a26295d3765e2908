//! A "witness" client: a window redrawn on every frame callback on its own
//! thread. Protocol tests use it to show that one client's protocol error
//! does not stall or kill the compositor for everyone else
//! ([`expect_protocol_errors`]).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};

use crate::buffer::DmabufBuffer;
use crate::client::{default_timeout, Client};
use crate::harness::Compositor;
use crate::pixel::Format;
use crate::provider::provider_from_env;
use crate::window::Window;

#[derive(Default)]
struct Progress {
    frames: u64,
    /// Set when the witness thread ended (error or stop), to wake waiters.
    finished: bool,
}

#[derive(Default)]
struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Handle to a running witness thread.
pub struct Witness {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Witness {
    /// Connects to `socket`, maps a window and returns once its first frame
    /// callback arrived (bounded by `timeout`).
    pub fn start(socket: &Path, timeout: Duration) -> Result<Witness> {
        let shared = Arc::new(Shared::default());
        let (s, path) = (shared.clone(), socket.to_path_buf());
        let thread = std::thread::Builder::new()
            .name("witness".into())
            .spawn(move || {
                let res = run(&path, &s);
                s.lock().finished = true;
                s.changed.notify_all();
                res
            })
            .context("spawn witness thread")?;
        let mut w = Witness {
            shared,
            thread: Some(thread),
        };
        if let Err(e) = w.wait_for_frames(1, timeout) {
            return Err(w.failure().unwrap_or(e).context("witness never got its first frame"));
        }
        Ok(w)
    }

    /// Frame callbacks received so far.
    pub fn frames(&self) -> u64 {
        self.shared.lock().frames
    }

    /// Blocks until at least `target` frames were received, failing on
    /// timeout or if the witness thread died.
    pub fn wait_for_frames(&mut self, target: u64, timeout: Duration) -> Result<()> {
        let guard = self.shared.lock();
        let (guard, res) = self
            .shared
            .changed
            .wait_timeout_while(guard, timeout, |p| p.frames < target && !p.finished)
            .unwrap_or_else(|e| e.into_inner());
        let (frames, finished) = (guard.frames, guard.finished);
        drop(guard);
        if frames >= target {
            return Ok(());
        }
        if finished {
            let err = self.failure().unwrap_or_else(|| anyhow!("witness stopped"));
            return Err(err.context(format!("witness ended at {frames} frames, wanted {target}")));
        }
        debug_assert!(res.timed_out());
        bail!("witness got only {frames} of {target} frames within {timeout:?}")
    }

    /// The witness thread's error, if it already ended.
    fn failure(&mut self) -> Option<anyhow::Error> {
        if !self.shared.lock().finished {
            return None;
        }
        match self.thread.take()?.join() {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(anyhow!("witness thread panicked")),
        }
    }

    /// Stops the loop (after its current frame) and returns the frame count,
    /// or the error that ended the thread.
    pub fn stop(mut self) -> Result<u64> {
        self.shared.stop.store(true, Ordering::Release);
        let thread = self.thread.take().context("witness thread already joined")?;
        thread.join().map_err(|_| anyhow!("witness thread panicked"))??;
        Ok(self.frames())
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        // Never join here: a stuck compositor would hang the test; the
        // thread's waits are bounded and it ends on its own.
        self.shared.stop.store(true, Ordering::Release);
    }
}

/// One misbehaving client for [`expect_protocol_errors`]: a name for
/// messages, and the requests it sends on its fresh connection.
pub type BadClient<'a> = (&'a str, &'a dyn Fn(&mut Client) -> Result<()>);

/// Starts a compositor (`--size 320x240`) and a [`Witness`], then for each
/// of `cases`, in order: connects a fresh client, sends its requests,
/// requires exactly the protocol error `code` on an `interface` object, drops
/// that client, and requires the witness to get at least 5 more frames (the
/// other clients keep running). At the end the compositor must still run
/// and exit cleanly on SIGTERM.
pub fn expect_protocol_errors(interface: &str, code: u32, cases: &[BadClient<'_>]) -> Result<()> {
    expect_protocol_errors_with_env(interface, code, &[], cases)
}

/// [`expect_protocol_errors`] with extra environment for the compositor.
pub fn expect_protocol_errors_with_env(
    interface: &str,
    code: u32,
    env: &[(&str, &str)],
    cases: &[BadClient<'_>],
) -> Result<()> {
    let mut comp = Compositor::spawn_with_env(&["--size", "320x240"], env)?;
    let mut witness = Witness::start(&comp.socket_path(), default_timeout())?;

    for &(name, bad) in cases {
        let mut client = comp.connect()?;
        bad(&mut client).with_context(|| format!("{name}: sending the requests"))?;
        let err = client.expect_protocol_error().with_context(|| name.to_owned())?;
        ensure!(
            err.object_interface == interface && err.code == code,
            "{name}: expected {interface} error {code}, got {}@{} code {}: {}",
            err.object_interface,
            err.object_id,
            err.code,
            err.message
        );
        drop(client);

        let after_error = witness.frames();
        witness
            .wait_for_frames(after_error + 5, default_timeout())
            .with_context(|| format!("{name}: other clients must keep getting frames after the protocol error"))?;
    }
    witness.stop()?;
    ensure!(comp.is_running()?, "compositor died; log: {}", comp.log_path.display());
    comp.terminate_successfully()
}

fn run(socket: &Path, shared: &Shared) -> Result<()> {
    let mut client = Client::connect_to(socket)?;
    let provider = provider_from_env()?;
    let window = Window::new(&mut client, "witness")?;
    let pixels = |_, _| Format::Xrgb8888.encode([90, 200, 90, 255]);
    let buffer = DmabufBuffer::new(&client, &*provider, 64, 64, Format::Xrgb8888, 256, &pixels)?;
    window.attach(&buffer);
    while !shared.stop.load(Ordering::Acquire) {
        // Re-damage so damage-driven compositors repaint and send `done`.
        window.damage_all();
        window.wait_frame(&mut client)?;
        shared.lock().frames += 1;
        shared.changed.notify_all();
    }
    Ok(())
}
