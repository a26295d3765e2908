//! Third-party clients from Debian's packages (installed by
//! scripts/setup-host.sh) against the headless compositor.
//!
//! Each test starts `compositor --screenshot --stats -- CLIENT`, waits until
//! the client's toplevel is mapped, lets it run for a while, stops the
//! compositor (SIGTERM still writes the screenshot and stats) and checks:
//! * the client's content is in the screenshot where the first window is
//!   placed (logical (32, 32)), by colour, not just "something changed";
//! * the client kept committing (it redraws on frame callbacks, so many
//!   commits mean frame callbacks fired); clients with a small buffer pool
//!   (weston-simple-shm: two) abort when no buffer comes back, so their
//!   surviving shows releases;
//! * the client did not die (the compositor would exit with its status).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::harness::{Compositor, Stats};
use testkit::image::RgbaImage;

const SIZE: (u32, u32) = (640, 480);
/// Where the first toplevel's window geometry starts (README placement rule).
const ORIGIN: u32 = 32;

struct Run {
    image: RgbaImage,
    stats: Stats,
    log: PathBuf,
}

impl Run {
    /// Pixels in `rect` (x, y, w, h) within `tol` of `rgb`.
    fn count_near(&self, rect: (u32, u32, u32, u32), rgb: [u8; 3], tol: u8) -> u64 {
        let mut n = 0;
        for y in rect.1..(rect.1 + rect.3).min(self.image.height) {
            for x in rect.0..(rect.0 + rect.2).min(self.image.width) {
                let p = self.image.get(x, y);
                if (0..3).all(|c| p[c].abs_diff(rgb[c]) <= tol) {
                    n += 1;
                }
            }
        }
        n
    }

    /// Number of distinct colours (quantised to 5 bits) in `rect`.
    fn distinct_colors(&self, rect: (u32, u32, u32, u32)) -> usize {
        let mut seen = std::collections::HashSet::new();
        for y in rect.1..(rect.1 + rect.3).min(self.image.height) {
            for x in rect.0..(rect.0 + rect.2).min(self.image.width) {
                let p = self.image.get(x, y);
                seen.insert([p[0] >> 3, p[1] >> 3, p[2] >> 3]);
            }
        }
        seen.len()
    }

    /// Saves the screenshot as an artifact, for a failing assertion to point at.
    fn save(&self, name: &str) -> PathBuf {
        let path = testkit::image_compare::artifacts_dir().join(format!("real-client-{name}.png"));
        let _ = std::fs::create_dir_all(path.parent().unwrap());
        let _ = self.image.save_png(&path);
        path
    }
}

/// Whether `program` is installed (PATH lookup, as the compositor's spawn does).
fn installed(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `argv` under the compositor until its window has been mapped for
/// `settle`, then stops the compositor and collects screenshot and stats.
fn run_client(name: &str, argv: &[&str], settle: Duration) -> Run {
    assert!(
        installed(argv[0]),
        "{} is not installed: run scripts/setup-host.sh",
        argv[0]
    );
    let out = tempfile::tempdir().unwrap();
    let shot = out.path().join("shot.png");
    let stats = out.path().join("stats.json");
    let size = format!("{}x{}", SIZE.0, SIZE.1);
    let mut args: Vec<String> = vec![
        "--size".into(),
        size,
        "--screenshot".into(),
        shot.display().to_string(),
        "--stats".into(),
        stats.display().to_string(),
        "--".into(),
    ];
    args.extend(argv.iter().map(|s| s.to_string()));
    let mut comp = Compositor::spawn(&args).expect("compositor starts");
    let deadline = Instant::now() + testkit::client::default_timeout() * 4;
    loop {
        let log = std::fs::read_to_string(&comp.log_path).unwrap_or_default();
        if log.contains("mapping toplevel") {
            break;
        }
        assert!(
            comp.is_running().unwrap(),
            "{name}: compositor exited before a window mapped; log: {}",
            comp.log_path.display()
        );
        assert!(
            Instant::now() < deadline,
            "{name}: no window mapped in time; log: {}",
            comp.log_path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(settle);
    assert!(
        comp.is_running().unwrap(),
        "{name}: the client died (the compositor exited with it); log: {}",
        comp.log_path.display()
    );
    let status = comp.terminate().expect("compositor stops on SIGTERM");
    assert!(
        status.success(),
        "{name}: compositor exit {status}; log: {}",
        comp.log_path.display()
    );
    let image = RgbaImage::load_png(&shot).expect("screenshot");
    let stats = comp.stats().expect("stats");
    Run {
        image,
        stats,
        log: comp.log_path.clone(),
    }
}

fn assert_paced(run: &Run, name: &str, min_commits: u64) {
    let commits = run.stats.shell.commits;
    assert!(run.stats.shell.windows_mapped >= 1, "{name}: no window mapped");
    assert!(
        commits >= min_commits,
        "{name}: only {commits} commits: the client is not being paced by frame callbacks; log: {}",
        run.log.display()
    );
}

/// weston-simple-shm: a 250x250 wl_shm window redrawn from frame callbacks
/// with two buffers; it aborts ("Both buffers busy") if buffers are not
/// released, so surviving many frames shows releases (shm releases are not
/// counted in --stats, which counts GPU-tracked dma-buf releases). Its
/// pattern is many colours over the whole window.
#[test]
fn weston_simple_shm_presents() {
    let run = run_client("weston-simple-shm", &["weston-simple-shm"], Duration::from_secs(2));
    let shot = run.save("weston-simple-shm");
    let window = (ORIGIN + 10, ORIGIN + 10, 230, 230);
    let background = run.count_near(window, [32, 32, 32], 0);
    assert!(
        background < 230 * 230 / 10,
        "weston-simple-shm: window area is mostly background ({background} px): {}",
        shot.display()
    );
    assert!(
        run.distinct_colors(window) > 50,
        "weston-simple-shm: pattern missing: {}",
        shot.display()
    );
    // Still running after ~2 s of frames (checked by run_client): with two
    // buffers it would have aborted had we not released them.
    assert_paced(&run, "weston-simple-shm", 20);
}

/// vkcube (vulkan-tools' `vkcube-wayland`; Debian's `vkcube` is the X11
/// build) through Vulkan WSI on lavapipe: the textured cube on vkcube's
/// grey clear colour (0.2 -> 51). Its swapchain images are dma-bufs or shm,
/// whichever Mesa's WSI picks; dma-buf releases are counted when it does.
#[test]
fn vkcube_presents_through_wsi() {
    let run = run_client("vkcube", &["vkcube-wayland"], Duration::from_secs(3));
    let shot = run.save("vkcube");
    let window = (ORIGIN, ORIGIN, 400, 400);
    let clear = run.count_near(window, [51, 51, 51], 2);
    assert!(
        clear > 1000,
        "vkcube: its clear colour is not on screen: {}",
        shot.display()
    );
    assert!(
        run.distinct_colors(window) > 30,
        "vkcube: no textured cube: {}",
        shot.display()
    );
    assert_paced(&run, "vkcube", 10);
}

/// foot (a terminal) with its background overridden to magenta: the
/// terminal area shows it. foot draws its own decorations (we say
/// client-side) and renders with pixman into wl_shm buffers.
#[test]
fn foot_terminal_presents() {
    let run = run_client(
        "foot",
        &[
            "foot",
            "--override=colors.background=c000c0",
            "--override=main.font=DejaVu Sans Mono:size=10",
            "sh",
            "-c",
            "echo hello; sleep 60",
        ],
        Duration::from_secs(2),
    );
    let shot = run.save("foot");
    let window = (ORIGIN, ORIGIN, 300, 200);
    let magenta = run.count_near(window, [0xc0, 0, 0xc0], 2);
    assert!(
        magenta > 300 * 200 / 2,
        "foot: terminal background missing ({magenta} px): {}",
        shot.display()
    );
    // "hello" was printed: some non-background glyph pixels.
    let glyphs = 300 * 200 - magenta - run.count_near(window, [32, 32, 32], 0);
    assert!(glyphs > 20, "foot: no text drawn: {}", shot.display());
    assert_paced(&run, "foot", 2);
}

/// A GTK 4 program (python3-gi, gir1.2-gtk-4.0): an undecorated window
/// filled with #00c000 by CSS. Rendered with GTK's cairo renderer (wl_shm):
/// its GL renderer needs EGL on a render node, which the host lacks.
#[test]
fn gtk4_window_presents() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/gtk4-color.py");
    let script = script.display().to_string();
    let run = run_client(
        "gtk4",
        &[
            "env",
            "GSK_RENDERER=cairo",
            "GDK_BACKEND=wayland",
            "/usr/bin/python3",
            &script,
        ],
        Duration::from_secs(2),
    );
    let shot = run.save("gtk4");
    let window = (ORIGIN + 20, ORIGIN + 20, 160, 110);
    let green = run.count_near(window, [0, 0xc0, 0], 2);
    assert!(
        green > 160 * 110 * 9 / 10,
        "gtk4: window colour missing ({green} px): {}",
        shot.display()
    );
    assert_paced(&run, "gtk4", 1);
}

/// weston-simple-egl: GLES through Mesa's EGL on llvmpipe (wl_shm or
/// dma-buf via linux-dmabuf v3), a rotating RGB triangle.
#[test]
fn weston_simple_egl_presents() {
    let run = run_client("weston-simple-egl", &["weston-simple-egl"], Duration::from_secs(3));
    let shot = run.save("weston-simple-egl");
    let window = (ORIGIN, ORIGIN, 250, 250);
    assert!(
        run.distinct_colors(window) > 30,
        "weston-simple-egl: no triangle: {}",
        shot.display()
    );
    assert_paced(&run, "weston-simple-egl", 10);
}
