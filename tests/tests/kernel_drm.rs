//! Kernel VM tier, DRM/KMS scan-out: the compositor runs `--backend drm`
//! on virtio-gpu's KMS card node (libseat `noop` session, as root), a client
//! presents two windows from real udmabuf dma-bufs, and the framebuffer the
//! CRTC actually scans out is read back *independently of the compositor*
//! (GETCRTC → GETFB2 → PRIME → mmap, from this process: `testkit::kernel::kms`)
//! and compared with the expected image: each window's colour at its
//! placement, the clear colour everywhere else. The stats are checked for
//! every frame being a completed page flip, rendered zero-copy into the
//! scan-out buffers. Ignored on the host (no KMS device there).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use compositor::backend::drm::DrmStats;
use testkit::client::{default_timeout, Client};
use testkit::harness::{read_stats, require_test_hooks, Compositor, Stats, StatsExt};
use testkit::image_compare::{artifacts_dir, compare, diff_image, DEFAULT_TOLERANCE};
use testkit::kernel::seatd::Seatd;
use testkit::kernel::{kms, vt};
use testkit::process::voluntary_switches;
use testkit::scenes::{toplevel_position, BACKGROUND};
use testkit::{DmabufBuffer, Format, RgbaImage, UdmabufProvider, Window};

const RED: [u8; 4] = [200, 40, 40, 255];
const BLUE: [u8; 4] = [40, 60, 210, 255];

/// (title, size, format, stride, colour) of the two windows.
const WINDOWS: [(&str, u32, Format, u32, [u8; 4]); 2] = [
    ("drm-red", 64, Format::Xrgb8888, 256, RED),
    ("drm-blue", 40, Format::Argb8888, 192, BLUE),
];

/// The expected output: the clear colour, each window at its place.
fn expected(width: u32, height: u32) -> RgbaImage {
    let mut img = RgbaImage::filled(width, height, BACKGROUND);
    for (n, (_, size, _, _, color)) in WINDOWS.iter().enumerate() {
        let (x0, y0) = toplevel_position(n);
        for y in y0 as u32..y0 as u32 + size {
            for x in x0 as u32..x0 as u32 + size {
                img.put(x, y, *color);
            }
        }
    }
    img
}

fn save(name: &str, img: &RgbaImage) -> std::path::PathBuf {
    let dir = artifacts_dir().join("kernel_drm");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(name);
    if let Err(e) = img.save_png(&path) {
        eprintln!("saving {}: {e}", path.display());
    }
    path
}

/// One compositor at a time on the card: libtest runs tests in parallel.
fn lock_card() -> std::sync::MutexGuard<'static, ()> {
    static CARD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CARD.lock().unwrap_or_else(|p| p.into_inner())
}

/// Polls the CRTC of `card` until the framebuffer it scans out matches
/// `expected(width, height)`. Each round waits for one more page flip (a
/// frame callback of `window`), so the compositor has had a full frame to
/// show every commit made before it; no sleeps. On a mismatch after the
/// timeout the images are saved as `<name>-{actual,expected,diff}.png`.
/// Returns what was scanned out and how many extra flips were waited for.
fn wait_for_scanout(
    card: &Path,
    expected: &dyn Fn(u32, u32) -> RgbaImage,
    window: &Window,
    client: &mut Client,
    log: &Path,
    name: &str,
) -> Result<(kms::ScanoutInfo, RgbaImage, usize)> {
    let deadline = Instant::now() + default_timeout();
    let mut flips_waited = 0;
    loop {
        let (info, image) = kms::read_scanout(card)?;
        ensure!(
            (info.width, info.height) == (u32::from(info.mode.0), u32::from(info.mode.1)),
            "framebuffer {}x{} does not cover the mode {:?}",
            info.width,
            info.height,
            info.mode
        );
        let want = expected(info.width, info.height);
        let cmp = compare(&image, &want, DEFAULT_TOLERANCE);
        if cmp.passed() {
            return Ok((info, image, flips_waited));
        }
        if Instant::now() > deadline {
            let got = save(&format!("{name}-actual.png"), &image);
            save(&format!("{name}-expected.png"), &want);
            save(
                &format!("{name}-diff.png"),
                &diff_image(&image, &want, DEFAULT_TOLERANCE),
            );
            bail!(
                "the CRTC's framebuffer never matched the expected image within {:?} ({flips_waited} flips waited): \
                 {cmp:?}; see {}; compositor log {}",
                default_timeout(),
                got.display(),
                log.display()
            );
        }
        window.damage_all();
        window.wait_frame(client).context("waiting for one more page flip")?;
        flips_waited += 1;
    }
}

/// `--backend drm` on `card`, with a screenshot and stats written to the given paths.
fn drm_args(card: &Path, shot: &Path, stats: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--backend".into(), "drm".into(), "--drm-device".into(), card.into()];
    args.extend(["--screenshot".into(), shot.into(), "--stats".into(), stats.into()]);
    args
}

/// The run both scan-out tests share: compositor on drm with `env`, two
/// windows, the CRTC read back and compared, clean exit. Returns the stats
/// and their `drm` section after the checks every path must pass.
fn scan_out_two_windows(env: &[(&str, &str)]) -> Result<(Stats, DrmStats)> {
    let _card = lock_card();
    let card = kms::find_card("virtio_gpu").context("virtio-gpu card node (qemu -device virtio-gpu-pci)")?;
    let before = kms::active_crtcs(&card)?;
    eprintln!("{}: active CRTCs before the compositor: {before:?}", card.display());

    let out = tempfile::tempdir()?;
    let (shot, stats_path) = (out.path().join("shot.png"), out.path().join("stats.json"));
    let args = drm_args(&card, &shot, &stats_path);
    let started = Instant::now();
    let mut env = env.to_vec();
    env.push(("LIBSEAT_BACKEND", "noop"));
    let mut comp = Compositor::spawn_with_env(&args, &env)?;
    let mut client = comp.connect()?;
    let udmabuf = UdmabufProvider::open()?;

    let mut shown = Vec::new();
    for (title, size, format, stride, color) in WINDOWS {
        let window = Window::new(&mut client, title)?;
        let buffer = DmabufBuffer::new(&client, &udmabuf, size, size, format, stride, &|_, _| {
            format.encode(color)
        })?;
        window.attach(&buffer);
        // On drm a frame callback is sent when a page flip completes.
        window
            .wait_frame(&mut client)
            .with_context(|| format!("{title}: first frame callback (page flip)"))?;
        shown.push((window, buffer));
    }

    let (info, image, flips_waited) =
        wait_for_scanout(&card, &expected, &shown[0].0, &mut client, &comp.log_path, "scanout")?;
    eprintln!("scanned out: {info:?} after {flips_waited} extra flips");
    // Spot checks that make a mismatch message obvious even without the images.
    for (n, (_, size, _, _, color)) in WINDOWS.iter().enumerate() {
        let (x, y) = toplevel_position(n);
        ensure!(
            image.get(x as u32 + size / 2, y as u32 + size / 2) == *color,
            "window {n} centre"
        );
    }
    ensure!(image.get(0, 0) == BACKGROUND, "top-left corner is not the clear colour");

    comp.terminate()?; // SIGTERM: clean exit, lock rules checked on its stats
    let ran = started.elapsed();
    drop(shown);

    // The compositor's own --screenshot reads the same front buffer.
    let own = RgbaImage::load_png(&shot).context("compositor screenshot")?;
    let cmp = compare(&own, &expected(info.width, info.height), DEFAULT_TOLERANCE);
    ensure!(
        cmp.passed(),
        "the compositor's --screenshot differs from the expected image: {cmp:?}"
    );

    check_clean_exit(&card, info.fb_id, &before)?;

    let stats = read_stats(&stats_path)?;
    let drm = stats.drm.clone().context("stats lack the drm section")?;
    let page_flips = drm.page_flips;
    eprintln!("drm stats: {drm:?}");
    // Every counted frame is a completed page flip, and there were enough of
    // them for the frame callbacks this test waited for.
    ensure!(
        stats.frames == page_flips && page_flips >= (WINDOWS.len() + flips_waited) as u64,
        "frames {} vs page flips {page_flips} (waited for {} callbacks)",
        stats.frames,
        WINDOWS.len() + flips_waited
    );
    ensure!(drm.flips_queued >= page_flips, "more flips completed than queued");
    // Paced at the mode's refresh: virtio-gpu completes flips without a
    // vblank, so without pacing this loop would flip hundreds of times a
    // second. At most the refresh rate (+20%) over the compositor's lifetime.
    let hz: f64 = drm
        .mode
        .rsplit('@')
        .next()
        .and_then(|hz| hz.parse().ok())
        .with_context(|| format!("drm.mode {:?}: expected WxH@Hz", drm.mode))?;
    let max_flips = (hz * 1.2 * ran.as_secs_f64()).ceil() as u64 + 2;
    ensure!(
        page_flips <= max_flips,
        "{page_flips} page flips in {ran:?} at {hz} Hz (at most {max_flips}): frames are not paced"
    );
    ensure!(drm.modesets == 1, "expected exactly one modeset (the first frame)");
    ensure!(
        drm.allocator == "dumb",
        "virtio-gpu without virgl should fall back to dumb buffers + PRIME"
    );
    ensure!(
        drm.session == "libseat/noop",
        "session backend not reported as libseat/noop"
    );
    // The client's buffers were real dma-bufs imported zero-copy: none failed,
    // none fell back to the CPU path.
    let imports = &stats.imports;
    ensure!(
        imports.zero_copy_image >= 2 && imports.failed == 0 && imports.cpu_fallback == 0,
        "client imports: {imports:?}"
    );
    Ok((stats, drm))
}

/// After the compositor exited: the framebuffer it last scanned out was
/// removed and the CRTCs are as they were before it started (the console).
/// smithay's own restore commit fails on virtio-gpu (EINVAL, logged); the
/// kernel's fbdev emulation restores its console when the master goes away.
fn check_clean_exit(card: &Path, fb_id: u32, before: &[(u32, u32, (u16, u16))]) -> Result<()> {
    ensure!(
        !kms::framebuffer_exists(card, fb_id)?,
        "framebuffer {fb_id} still exists after the compositor exited"
    );
    let after = kms::active_crtcs(card)?;
    eprintln!("{}: active CRTCs after exit: {after:?}", card.display());
    ensure!(
        after == before,
        "CRTC state after exit {after:?} differs from before {before:?}"
    );
    Ok(())
}

#[test]
#[ignore = "kernel VM tier: needs virtio-gpu's KMS card node, root and /dev/udmabuf (run scripts/vm/test.sh)"]
fn drm_backend_scans_out_what_the_client_presented() -> Result<()> {
    let (_, drm) = scan_out_two_windows(&[])?;
    ensure!(
        drm.zero_copy && drm.copied_frames == 0,
        "frames were not rendered straight into the scan-out dma-bufs: {drm:?}"
    );
    // Rendering is fast enough here that virtio-gpu's instant flips need
    // pacing (see the flip-rate bound in scan_out_two_windows).
    ensure!(
        drm.paced_by_timer > 0,
        "virtio-gpu flips were never paced by the timer: {drm:?}"
    );
    Ok(())
}

/// The scan-out path under the validation layer (synchronization validation
/// and best practices on, `testkit::validation`): imported scan-out images,
/// acquired from and released to the foreign queue family every frame. No
/// error, and only the warnings docs/validation.md keeps.
#[test]
#[ignore = "kernel VM tier: needs virtio-gpu's KMS card node, root and /dev/udmabuf (run scripts/vm/test.sh)"]
fn drm_scan_out_path_passes_the_validation_layer() -> Result<()> {
    let layer = testkit::validation::Layer::new()?;
    let env = layer.env()?;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, drm) = scan_out_two_windows(&env)?;
    ensure!(
        drm.zero_copy,
        "the scan-out buffers were not rendered into directly: {drm:?}"
    );
    let report = layer.check("drm scan-out")?;
    eprintln!("drm scan-out under validation: kept warnings {:?}", report.warnings);
    Ok(())
}

/// The fallback when scan-out buffers cannot be imported (forced here by the
/// test hook `COMPOSITOR_DRM_FORCE_COPY`, compositor feature `test-hooks`):
/// rendered offscreen, copied into the mapped buffer, same pixels on the
/// CRTC, and every queued frame counted as a copy.
#[test]
#[ignore = "kernel VM tier: needs virtio-gpu's KMS card node, root and /dev/udmabuf (run scripts/vm/test.sh)"]
fn drm_backend_copy_fallback_scans_out_the_same() -> Result<()> {
    const HOOK: &str = "COMPOSITOR_DRM_FORCE_COPY";
    require_test_hooks(HOOK)?;
    let (stats, drm) = scan_out_two_windows(&[(HOOK, "1")])?;
    stats.require_test_hooks(HOOK)?;
    ensure!(
        !drm.zero_copy && drm.copied_frames == drm.flips_queued,
        "expected every queued frame to be a CPU copy: {drm:?}"
    );
    Ok(())
}

/// The VT test's window: one window, solid colour, at the first placement.
const VT_WINDOW: u32 = 64;
const GREEN: [u8; 4] = [40, 180, 60, 255];

/// The clear colour with one `VT_WINDOW` square of `color` at the first
/// toplevel placement.
fn one_window(color: [u8; 4]) -> impl Fn(u32, u32) -> RgbaImage {
    move |width, height| {
        let mut img = RgbaImage::filled(width, height, BACKGROUND);
        let (x0, y0) = toplevel_position(0);
        for y in y0 as u32..y0 as u32 + VT_WINDOW {
            for x in x0 as u32..x0 as u32 + VT_WINDOW {
                img.put(x, y, color);
            }
        }
        img
    }
}

/// Waits (bounded, polling the file) until the compositor's log has `line`.
fn wait_for_log(log: &Path, line: &str) -> Result<()> {
    let deadline = Instant::now() + default_timeout();
    loop {
        if std::fs::read_to_string(log).is_ok_and(|text| text.contains(line)) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "the compositor did not log {line:?} within {:?}; log {}",
            default_timeout(),
            log.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Ends the test on the VT it started on, whatever failed in between.
struct BackToVt(u32);

impl Drop for BackToVt {
    fn drop(&mut self) {
        if vt::active().is_ok_and(|now| now != self.0) {
            if let Err(e) = vt::switch_to(self.0, default_timeout()) {
                eprintln!("switching back to VT {}: {e}", self.0);
            }
        }
    }
}

/// A compositor on virtio-gpu under a real seat manager: seatd is started
/// first (VT-bound seat0), then the compositor with `LIBSEAT_BACKEND=seatd`,
/// whose session is the foreground VT (`home`). Field order is drop order:
/// the compositor, then back to `home`, then seatd.
struct SeatdRun {
    comp: Compositor,
    _back: BackToVt,
    seatd: Seatd,
    card: PathBuf,
    /// Active CRTCs before the compositor started (the console's).
    before: Vec<(u32, u32, (u16, u16))>,
    home: u32,
    /// The VT switched to.
    away: u32,
    shot: PathBuf,
    stats_path: PathBuf,
    _out: tempfile::TempDir,
}

impl SeatdRun {
    fn start(name: &str) -> Result<SeatdRun> {
        let card = kms::find_card("virtio_gpu").context("virtio-gpu card node (qemu -device virtio-gpu-pci)")?;
        let before = kms::active_crtcs(&card)?;
        let home = vt::active().context("the foreground VT (is the kernel built with CONFIG_VT?)")?;
        let away = if home < 63 { home + 1 } else { home - 1 };
        eprintln!(
            "{}: active CRTCs before the compositor: {before:?}; foreground VT {home}",
            card.display()
        );
        ensure!(
            !kms::master_held_elsewhere(&card)?,
            "someone already holds DRM master on {}",
            card.display()
        );
        let logs = artifacts_dir().join("logs");
        std::fs::create_dir_all(&logs)?;
        let seatd = Seatd::start(&logs.join(format!("seatd-{name}.log")), default_timeout())?;
        eprintln!("seatd {} ready on {}", seatd.pid(), testkit::kernel::seatd::SOCKET);
        let back = BackToVt(home);

        let out = tempfile::tempdir()?;
        let (shot, stats_path) = (out.path().join("shot.png"), out.path().join("stats.json"));
        let args = drm_args(&card, &shot, &stats_path);
        let comp = Compositor::spawn_with_env(&args, &[("LIBSEAT_BACKEND", "seatd")])?;
        Ok(SeatdRun {
            comp,
            _back: back,
            seatd,
            card,
            before,
            home,
            away,
            shot,
            stats_path,
            _out: out,
        })
    }

    /// The `drm` section of the stats written at exit, and the stats.
    fn stats(&self) -> Result<(Stats, DrmStats)> {
        let stats = read_stats(&self.stats_path)?;
        let drm = stats.drm.clone().context("stats lack the drm section")?;
        eprintln!("drm stats: {drm:?}");
        ensure!(
            drm.session == "libseat/seatd",
            "session backend not reported as libseat/seatd: {drm:?}"
        );
        ensure!(
            stats.frames == drm.page_flips,
            "frames {} vs page flips: {drm:?}",
            stats.frames
        );
        // No import failed, and none fell back to the CPU path.
        let imports = &stats.imports;
        ensure!(
            imports.failed == 0 && imports.cpu_fallback == 0,
            "client imports: {imports:?}"
        );
        Ok((stats, drm))
    }
}

/// A `VT_WINDOW`-square XRGB8888 udmabuf of one colour.
fn solid_buffer(client: &Client, udmabuf: &UdmabufProvider, color: [u8; 4]) -> Result<DmabufBuffer> {
    DmabufBuffer::new(
        client,
        udmabuf,
        VT_WINDOW,
        VT_WINDOW,
        Format::Xrgb8888,
        VT_WINDOW * 4,
        &move |_, _| Format::Xrgb8888.encode(color),
    )
}

/// Clean VT switching: a real seat manager (seatd, VT-bound seat0)
/// gives the compositor its session on the foreground VT; switching to
/// another VT (`VT_ACTIVATE`, as `chvt` does) must pause it (DRM master
/// dropped, the console's framebuffer back on the CRTC, no frame callbacks
/// and no display taken back while away), and switching back must resume
/// it (master taken back, the CRTC scanning out the compositor's framebuffer
/// with what the client committed while paused, page flips going on). Then
/// SIGTERM: a clean exit with the console back.
#[test]
#[ignore = "kernel VM tier: needs virtio-gpu's KMS card node, VTs, seatd, root and /dev/udmabuf (run scripts/vm/test.sh)"]
fn drm_backend_pauses_and_resumes_across_a_vt_switch() -> Result<()> {
    let _card = lock_card();
    let mut run = SeatdRun::start("vt-switch")?;
    let (card, before, home, away) = (run.card.clone(), run.before.clone(), run.home, run.away);
    let log = run.comp.log_path.clone();
    let mut client = run.comp.connect()?;
    let udmabuf = UdmabufProvider::open()?;
    let buffer = |color: [u8; 4]| solid_buffer(&client, &udmabuf, color);
    let red = buffer(RED)?;
    let green = buffer(GREEN)?;
    let window = Window::new(&mut client, "vt-switch")?;
    window.attach(&red);
    window
        .wait_frame(&mut client)
        .context("first frame callback (page flip)")?;
    let (shown, _, _) = wait_for_scanout(&card, &one_window(RED), &window, &mut client, &log, "vt-before")?;
    eprintln!("before the switch: scanning out {shown:?}");
    ensure!(
        kms::master_held_elsewhere(&card)?,
        "the compositor does not hold DRM master while its session is active"
    );

    // ---- away ----------------------------------------------------------
    vt::switch_to(away, default_timeout()).context("switching away (seatd must acknowledge the release)")?;
    eprintln!("switched to VT {away}");
    wait_for_log(&log, "session paused")?;
    ensure!(
        !kms::master_held_elsewhere(&card)?,
        "DRM master is still held after the switch away: the compositor's fd kept it"
    );
    let paused = kms::active_crtcs(&card)?;
    eprintln!("paused: active CRTCs {paused:?}");
    ensure!(
        paused == before,
        "while paused the CRTC state is {paused:?}, not the console's {before:?}"
    );
    // A commit while paused (new colour): its frame callback must wait for
    // the session to come back, and the compositor must not touch the CRTC.
    window.attach(&green);
    let done = window.frame(&client);
    window.surface.commit();
    client.roundtrip().context("roundtrip while paused")?;
    // Over a quiet half second: no frame callback, and the compositor's
    // event loop (its main thread) sleeps until the session comes back
    // rather than retrying frames at the refresh rate (~37 wake-ups at 75 Hz).
    let quiet = std::time::Duration::from_millis(500);
    let woken = voluntary_switches(run.comp.pid(), run.comp.pid())?;
    let _ = client.dispatch_until_within(quiet, "no frame callback while paused", |_| {
        done.load(std::sync::atomic::Ordering::Acquire)
    });
    let wakeups = voluntary_switches(run.comp.pid(), run.comp.pid())? - woken;
    eprintln!("paused: the compositor's event loop woke {wakeups} times in {quiet:?}");
    ensure!(
        wakeups <= 5,
        "while paused the compositor's event loop woke {wakeups} times in {quiet:?}: it keeps polling"
    );
    ensure!(
        !done.load(std::sync::atomic::Ordering::Acquire),
        "a frame callback arrived while the session was paused"
    );
    ensure!(
        client.protocol_error().is_none() && run.comp.is_running()?,
        "compositor gone while paused"
    );
    ensure!(
        kms::active_crtcs(&card)? == before && !kms::master_held_elsewhere(&card)?,
        "the compositor took the display back while its session was paused"
    );

    // ---- back ----------------------------------------------------------
    vt::switch_to(home, default_timeout()).context("switching back")?;
    eprintln!("switched back to VT {home}");
    client
        .wait_flag("the frame callback of the commit made while paused", &done)
        .context("no page flip after switching back")?;
    let (resumed, image, waited) =
        wait_for_scanout(&card, &one_window(GREEN), &window, &mut client, &log, "vt-resumed")?;
    eprintln!("resumed: scanning out {resumed:?} after {waited} extra flips");
    ensure!(
        !before.iter().any(|&(_, fb, _)| fb == resumed.fb_id),
        "the CRTC still shows the console's framebuffer {}",
        resumed.fb_id
    );
    ensure!(image.get(0, 0) == BACKGROUND, "top-left corner is not the clear colour");
    ensure!(
        kms::master_held_elsewhere(&card)?,
        "the compositor did not take DRM master back"
    );
    // Page flips go on.
    for n in 0..3 {
        window.damage_all();
        window
            .wait_frame(&mut client)
            .with_context(|| format!("page flip {n} after resuming"))?;
    }

    // ---- exit ----------------------------------------------------------
    run.comp.terminate()?;
    drop((window, red, green));
    check_clean_exit(&card, resumed.fb_id, &before)?;
    let own = RgbaImage::load_png(&run.shot).context("compositor screenshot")?;
    let want = one_window(GREEN)(resumed.width, resumed.height);
    ensure!(
        compare(&own, &want, DEFAULT_TOLERANCE).passed(),
        "the compositor's --screenshot differs from the expected image"
    );

    let (_, drm) = run.stats()?;
    ensure!(
        drm.session_pauses == 1 && drm.session_activations == 1,
        "expected one pause and one activation: {drm:?}"
    );
    ensure!(
        drm.modesets == 2,
        "expected two modesets (the first frame, the first after switching back): {drm:?}"
    );
    ensure!(run.seatd.stop(default_timeout())?, "seatd ignored SIGTERM");
    Ok(())
}

/// Clean exit: SIGTERM while the session is paused (switched
/// away). The compositor exits by itself with success and removes its
/// framebuffers although it is not DRM master; the console stays on the
/// CRTC, and switching back to the compositor's VT (which seatd gave back
/// to text mode) shows the console too.
#[test]
#[ignore = "kernel VM tier: needs virtio-gpu's KMS card node, VTs, seatd, root and /dev/udmabuf (run scripts/vm/test.sh)"]
fn drm_backend_exits_cleanly_while_paused() -> Result<()> {
    let _card = lock_card();
    let mut run = SeatdRun::start("exit-paused")?;
    let (card, before, home, away) = (run.card.clone(), run.before.clone(), run.home, run.away);
    let log = run.comp.log_path.clone();
    let mut client = run.comp.connect()?;
    let udmabuf = UdmabufProvider::open()?;
    let red = solid_buffer(&client, &udmabuf, RED)?;
    let window = Window::new(&mut client, "vt-exit")?;
    window.attach(&red);
    window
        .wait_frame(&mut client)
        .context("first frame callback (page flip)")?;
    let (shown, _, _) = wait_for_scanout(&card, &one_window(RED), &window, &mut client, &log, "vt-exit")?;

    vt::switch_to(away, default_timeout()).context("switching away")?;
    wait_for_log(&log, "session paused")?;
    let status = run.comp.terminate()?;
    ensure!(
        status.success(),
        "compositor exited with {status:?} while paused; log {}",
        log.display()
    );
    drop((window, red));
    ensure!(
        !kms::master_held_elsewhere(&card)?,
        "DRM master held after the compositor exited"
    );
    check_clean_exit(&card, shown.fb_id, &before)?;
    vt::switch_to(home, default_timeout()).context("switching back to the compositor's VT after it exited")?;
    let home_again = kms::active_crtcs(&card)?;
    eprintln!("back on VT {home} after the exit: active CRTCs {home_again:?}");
    ensure!(
        home_again == before,
        "back on VT {home}, the CRTC state is {home_again:?}, not the console's {before:?}"
    );
    // The screenshot was read from the front buffer while paused.
    let own = RgbaImage::load_png(&run.shot).context("compositor screenshot")?;
    ensure!(
        compare(&own, &one_window(RED)(shown.width, shown.height), DEFAULT_TOLERANCE).passed(),
        "the compositor's --screenshot differs from the expected image"
    );
    let (_, drm) = run.stats()?;
    ensure!(
        drm.session_pauses == 1 && drm.session_activations == 0 && drm.modesets == 1,
        "expected one pause, no activation and only the first modeset: {drm:?}"
    );
    ensure!(run.seatd.stop(default_timeout())?, "seatd ignored SIGTERM");
    Ok(())
}
