//! Implicit sync through the compositor: a client buffer carrying an
//! unsignaled vgem write fence is not presented (its commit, with its frame
//! callback, is held) until the fence signals, while a second client's frames
//! keep coming at their normal rate.
//! Kernel VM tier (vgem); ignored on the host with the reason.
//!
//! Not vacuous: vgem signals a fence by itself after 10 s, so "still held"
//! is asserted together with the fence's own status (SYNC_IOC_FILE_INFO of
//! an EXPORT_SYNC_FILE(READ)) at that moment: if the fence had timed out the
//! test fails instead of passing.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use importer::sync::{implicit as fences, Access, FenceStatus};
use testkit::client::default_timeout;
use testkit::harness::{read_stats, Compositor};
use testkit::image_compare::check_window_pixel;
use testkit::sync::VgemProvider;
use testkit::witness::Witness;
use testkit::{DmabufBuffer, Format, RgbaImage, Window};

const RED: [u8; 4] = [220, 30, 30, 255];
/// Witness frames counted for the baseline and during the hold.
const FRAMES: u64 = 15;
/// The held window must end well inside vgem's 10 s auto-signal. Only the
/// steps after the fence is attached are bound by it; start-up and the
/// baseline use the harness's (load-aware) timeout.
const BOUND: Duration = Duration::from_secs(8);

#[test]
#[ignore = "kernel VM tier: needs vgem fences on a client dma-buf (run scripts/vm/test.sh)"]
fn fenced_buffer_is_held_while_another_client_keeps_its_rate() -> Result<()> {
    let out = tempfile::tempdir()?;
    let (shot, stats) = (out.path().join("out.png"), out.path().join("stats.json"));
    let mut comp = Compositor::spawn(&[
        "--size".as_ref(),
        "320x240".as_ref(),
        "--screenshot".as_ref(),
        shot.as_os_str(),
        "--stats".as_ref(),
        stats.as_os_str(),
    ])?;
    let mut witness = Witness::start(&comp.socket_path(), default_timeout())?;
    // Baseline rate of the witness.
    let (b0, t) = (witness.frames(), Instant::now());
    witness.wait_for_frames(b0 + FRAMES, default_timeout())?;
    let baseline = (witness.frames() - b0) as f64 / t.elapsed().as_secs_f64();

    let mut client = comp.connect()?;
    let vgem = VgemProvider::open()?;
    let window = Window::new(&mut client, "fenced")?;
    let buffer = DmabufBuffer::new(&client, &vgem, 64, 64, Format::Xrgb8888, 256, &|_, _| {
        Format::Xrgb8888.encode(RED)
    })?;
    let fence = vgem.attach_fence(buffer.fd(), true)?;
    let fence_status =
        || -> Result<FenceStatus> { Ok(fences::export_sync_file(buffer.fd().as_fd(), Access::Read)?.status()?) };
    ensure!(fence_status()? == FenceStatus::Active, "the vgem fence is not pending");

    window.attach(&buffer);
    let shown = window.frame(&client);
    window.surface.commit();
    client.roundtrip()?; // the commit has reached the compositor
    let (w0, t) = (witness.frames(), Instant::now());
    witness
        .wait_for_frames(w0 + FRAMES, BOUND)
        .context("the witness stalled while the fenced commit was held")?;
    let held_rate = (witness.frames() - w0) as f64 / t.elapsed().as_secs_f64();
    client.roundtrip()?;
    let still_pending = fence_status()?;
    let presented = shown.load(std::sync::atomic::Ordering::Acquire);
    println!(
        "witness: baseline {baseline:.1} frames/s, {held_rate:.1} frames/s while the fenced commit was held \
         ({FRAMES} frames in {:.2} s); fenced window presented: {presented}; vgem fence: {still_pending:?}",
        t.elapsed().as_secs_f64()
    );
    ensure!(
        still_pending == FenceStatus::Active,
        "the vgem fence signaled on its own (timeout) during the window"
    );
    ensure!(!presented, "the fenced buffer was presented before its fence signaled");
    // The output refreshes at 60 Hz; frame callbacks may come faster than
    // that (one per commit of the witness), so compare with the lower one.
    let normal = baseline.min(60.0);
    ensure!(
        held_rate >= normal * 0.5,
        "the witness slowed down: {held_rate:.1} vs {normal:.1} frames/s"
    );

    let t = Instant::now();
    vgem.signal(fence)?;
    client.wait_flag("frame callback of the fenced commit after the signal", &shown)?;
    println!(
        "fenced window presented {:.3} s after the signal",
        t.elapsed().as_secs_f64()
    );
    // One more frame so the screenshot surely shows it.
    window.damage_all();
    window.wait_frame(&mut client)?;
    witness.stop()?;
    comp.terminate()?;

    let image = RgbaImage::load_png(&shot)?;
    check_window_pixel(&image, 1, 10, RED).context("the fenced window")?;
    let sync = read_stats(&stats)?.buffer_sync;
    println!("compositor sync stats: {sync:?}");
    ensure!(sync.implicit_held >= 1, "no commit was counted as held: {sync:?}");
    drop(buffer);
    Ok(())
}
