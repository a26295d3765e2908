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

/// A 320x240 compositor writing `shot` and `stats` at exit, with `extra`
/// options.
fn spawn(shot: &std::path::Path, stats: &std::path::Path, extra: &[&str]) -> Result<Compositor> {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--size".as_ref(),
        "320x240".as_ref(),
        "--screenshot".as_ref(),
        shot.as_os_str(),
        "--stats".as_ref(),
        stats.as_os_str(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    Compositor::spawn(&args)
}

#[test]
#[ignore = "kernel VM tier: needs vgem fences on a client dma-buf (run scripts/vm/test.sh)"]
fn fenced_buffer_is_held_while_another_client_keeps_its_rate() -> Result<()> {
    let out = tempfile::tempdir()?;
    let (shot, stats) = (out.path().join("out.png"), out.path().join("stats.json"));
    let mut comp = spawn(&shot, &stats, &[])?;
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

/// A buffer whose write fence is still pending when `create_immed` imports
/// it is created (no `invalid_wl_buffer`), its commit is held, and it is
/// shown once the fence signals, on the zero-copy image, the GPU buffer copy,
/// the CPU fallback copied on the loop and the CPU fallback copied on the
/// worker. Until then the importer neither waits for the fence nor reads the
/// pixels.
#[test]
#[ignore = "kernel VM tier: needs vgem fences on a client dma-buf (run scripts/vm/test.sh)"]
fn a_buffer_fenced_at_creation_is_created_and_shown_after_the_signal() -> Result<()> {
    let cases: [(&str, &[&str], fn(&compositor::stats::Stats) -> bool); 4] = [
        ("zero-copy image", &[], |s| s.imports.zero_copy_image >= 1),
        ("GPU buffer copy", &["--force-buffer-path"], |s| {
            s.imports.gpu_buffer_copy >= 1
        }),
        ("CPU fallback", &["--cpu-fallback"], |s| s.imports.cpu_fallback >= 1),
        (
            "CPU fallback, worker",
            &["--cpu-fallback", "--cpu-copy-threshold", "0"],
            |s| s.imports.cpu_fallback >= 1 && s.cpu_copies.worker >= 1,
        ),
    ];
    for (what, extra, took_path) in cases {
        let out = tempfile::tempdir()?;
        let (shot, stats) = (out.path().join("out.png"), out.path().join("stats.json"));
        let mut comp = spawn(&shot, &stats, extra)?;
        let mut client = comp.connect()?;
        let vgem = VgemProvider::open()?;
        let window = Window::new(&mut client, "fenced at creation")?;
        let fence = std::cell::RefCell::new(None);
        let paint = |_, _| Format::Xrgb8888.encode(RED);
        let buffer = DmabufBuffer::new_filled_then(&client, &vgem, (64, 64), Format::Xrgb8888, 256, &paint, &|fd| {
            Ok(*fence.borrow_mut() = Some(vgem.attach_fence(fd, true)?))
        })?;
        let fence = fence.into_inner().context("no fence attached")?;
        client
            .roundtrip()
            .with_context(|| format!("{what}: create_immed with a pending fence"))?;
        let status = fences::export_sync_file(buffer.fd().as_fd(), Access::Read)?.status()?;
        ensure!(
            status == FenceStatus::Active,
            "{what}: the fence is not pending after the import"
        );

        window.attach(&buffer);
        let shown = window.frame(&client);
        window.surface.commit();
        client.roundtrip()?;
        ensure!(
            !shown.load(std::sync::atomic::Ordering::Acquire),
            "{what}: shown before the fence signaled"
        );
        vgem.signal(fence)?;
        client
            .wait_flag("frame callback after the fence signaled", &shown)
            .with_context(|| what.to_owned())?;
        window.damage_all();
        window.wait_frame(&mut client)?;
        comp.terminate()?; // the window is still mapped for the screenshot
        drop(client);

        let image = RgbaImage::load_png(&shot)?;
        check_window_pixel(&image, 0, 10, RED).with_context(|| format!("{what}: the window after the signal"))?;
        let stats = read_stats(&stats)?;
        ensure!(
            took_path(&stats),
            "{what}: not the path under test: {:?}",
            stats.imports
        );
        ensure!(stats.imports.failed == 0, "{what}: {:?}", stats.imports);
        ensure!(stats.buffer_sync.implicit_held >= 1, "{what}: the commit was not held");
        println!(
            "{what}: created with a pending fence, shown after it signaled; {:?}",
            stats.imports
        );
        drop(buffer);
    }
    Ok(())
}
