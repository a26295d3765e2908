//! Large CPU-fallback copies run off the event loop: while a
//! 4096×4096 buffer's copy is in progress on the compositor's worker thread,
//! its commit is held (no frame callback, not presented) and a witness
//! client keeps getting frames. Once the copy finishes the commit applies and
//! the large window shows its pixels.
//!
//! The copy is held "in progress" without sleeping: the compositor's test gate
//! (`COMPOSITOR_COPY_GATE`, a FIFO) makes the worker wait for one byte before
//! copying, and the test writes it only after counting the witness's frames.
//! Then the real 64 MiB copy runs and the witness frames during it are
//! counted as well. The gate is a test hook: the compositor binary must be
//! built with its cargo feature `test-hooks` (the test says so first).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use testkit::harness::{CopyGate, StatsExt};
use testkit::image_compare::check_window_pixel;
use testkit::provider::provider_from_env;
use testkit::witness::Witness;
use testkit::{DmabufBuffer, Format, RgbaImage, Window};

const BLUE: [u8; 4] = [20, 40, 230, 255];
const SIZE: u32 = 4096;
/// Witness frames required while the copy is held.
const FRAMES: u64 = 20;
const BOUND: Duration = Duration::from_secs(20);

#[test]
fn witness_keeps_its_frames_while_a_large_cpu_copy_runs() -> Result<()> {
    let gate = CopyGate::new()?;
    let dir = tempfile::tempdir()?;
    let shot = dir.path().join("out.png");
    let mut comp = gate.spawn_with_screenshot(&shot)?;
    let mut witness = Witness::start(&comp.socket_path(), BOUND)?;

    let mut client = comp.connect()?;
    let provider = provider_from_env()?;
    let window = Window::new(&mut client, "large")?;
    let buffer = DmabufBuffer::new(&client, &*provider, SIZE, SIZE, Format::Xrgb8888, SIZE * 4, &|_, _| {
        Format::Xrgb8888.encode(BLUE)
    })?;
    window.attach(&buffer);
    let shown = window.frame(&client);
    window.surface.commit();
    client.roundtrip()?; // the commit reached the compositor: its copy is queued behind the gate

    let (w0, t) = (witness.frames(), Instant::now());
    witness
        .wait_for_frames(w0 + FRAMES, BOUND)
        .context("the witness stalled while the large copy was held")?;
    let held_rate = (witness.frames() - w0) as f64 / t.elapsed().as_secs_f64();
    client.roundtrip()?;
    ensure!(
        !shown.load(Ordering::Acquire),
        "the large buffer was presented before its copy was made"
    );

    // Let the worker copy the 64 MiB now, and count the witness meanwhile.
    let (w1, t) = (witness.frames(), Instant::now());
    gate.open()?;
    client.wait_flag("frame callback of the large commit after its copy", &shown)?;
    let copy_window = t.elapsed();
    let during = witness.frames() - w1;
    println!(
        "witness: {held_rate:.1} frames/s while the copy was held; {during} frames during the {:.3} s from releasing the copy to presenting it",
        copy_window.as_secs_f64()
    );
    window.damage_all();
    window.wait_frame(&mut client)?;
    witness.stop()?;
    comp.terminate()?;

    let image = RgbaImage::load_png(&shot)?;
    check_window_pixel(&image, 1, 10, BLUE).context("the large window")?;
    let stats = comp.stats()?;
    stats.require_test_hooks("COMPOSITOR_COPY_GATE")?;
    let copies = &stats.cpu_copies;
    println!("compositor cpu_copies stats: {copies:?}");
    ensure!(copies.worker >= 1, "no copy ran on the worker: {copies:?}");
    ensure!(copies.worker_failed == 0, "a worker copy failed: {copies:?}");
    drop(buffer);
    Ok(())
}
