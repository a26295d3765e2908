//! Leak soak: 10,000 client lifetimes against one compositor leave its open
//! fds, live Vulkan objects, reservations and resident memory where they
//! were.
//!
//! The cycles rotate through seven ways a client ends:
//! 1. shows a dma-buf window, waits for its frame, disconnects;
//! 2. commits a dma-buf window and disconnects at once, with the frame that
//!    samples it possibly still running;
//! 3. creates a dma-buf `wl_buffer` and disconnects without a roundtrip;
//! 4. is disconnected by the compositor for passing `--max-client-params`;
//! 5. sends the first bytes of a request and closes the socket mid-request;
//! 6. shows a `wl_shm` window whose `wl_buffer` it destroys right after the
//!    commit, so the frame imports a buffer that is already destroyed,
//!    then disconnects;
//! 7. shows a window with a synchronized dma-buf subsurface, waits for its
//!    frame, disconnects.
//!
//! Counts come from SIGUSR1 snapshots of `--stats` (Vulkan objects,
//! reservations), `/proc/PID/fd` and `VmRSS`, taken after a warm-up and
//! after the last cycle, each once the compositor is quiet: no frame in
//! flight, nothing buried, and the counts unchanged over five frame ticks.
//! Bounds: fds, Vulkan objects and live reservations equal; resident memory
//! within [`RSS_BOUND_KIB`]. The counts are printed and written to
//! `<test artifacts>/leak-soak.txt` (`scripts/test.sh` prints it).
//! `LEAK_SOAK_CYCLES` overrides the cycle count.

use std::io::Write;
use std::os::unix::net::UnixStream;

use anyhow::{ensure, Context, Result};
use testkit::explicit::shm_buffer;
use testkit::harness::Compositor;
use testkit::image_compare::artifacts_dir;
use testkit::provider::provider_from_env;
use testkit::{Client, DmabufBuffer, Format, ParamsBuilder, Subsurface, Window};

const CYCLES: usize = 10_000;
/// `--max-client-params` of the soak's compositor: cycle 4 passes it.
const PARAMS_LIMIT: usize = 4;
const WARM_UP: usize = 40;
/// Resident memory may grow this much (allocator slack, caches that reach
/// their size); a leak of one buffer's import per cycle would be far more.
const RSS_BOUND_KIB: i64 = 8 * 1024;
/// Snapshots tried while waiting for the compositor to be quiet.
const QUIET_TRIES: usize = 2000;
/// Frame ticks the counts must stay unchanged for.
const QUIET_TICKS: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    fds: usize,
    vulkan: importer::vulkan::census::LiveObjects,
    live_reservations: u64,
    buried: u64,
    rss_kib: i64,
    /// Frame ticks so far (the compositor's housekeeping runs on each).
    frames: u64,
}

impl Counts {
    /// Everything but resident memory, which never settles exactly.
    fn settled(&self) -> (usize, importer::vulkan::census::LiveObjects, u64, u64) {
        (self.fds, self.vulkan, self.live_reservations, self.buried)
    }
}

fn counts(comp: &mut Compositor) -> Result<Counts> {
    let stats = comp.snapshot()?;
    let pid = comp.pid();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/PID/status")?;
    let r = stats.reservations;
    Ok(Counts {
        fds,
        vulkan: stats.vulkan_objects,
        live_reservations: r.created - r.destroyed,
        buried: r.buried,
        rss_kib,
        frames: stats.frames,
    })
}

/// Snapshots until nothing is in flight or buried and the counts stayed the
/// same over [`QUIET_TICKS`] frame ticks (each tick frees what finished).
fn quiet_counts(comp: &mut Compositor) -> Result<Counts> {
    let mut since = counts(comp)?;
    for _ in 0..QUIET_TRIES {
        let now = counts(comp)?;
        if now.settled() != since.settled() || now.vulkan.frame_fences != 0 || now.buried != 0 {
            since = now;
        } else if now.frames >= since.frames + QUIET_TICKS {
            return Ok(now);
        }
    }
    anyhow::bail!("the compositor did not become quiet: last {since:?}")
}

fn dmabuf(client: &Client, shade: u8) -> Result<DmabufBuffer> {
    let provider = provider_from_env()?;
    DmabufBuffer::new(client, &*provider, 64, 64, Format::Xrgb8888, 256, &|_, _| {
        Format::Xrgb8888.encode([shade, 90, 160, 255])
    })
}

/// Ways a client ends (the module's list).
const ENDINGS: usize = 7;

/// One client lifetime, ending the way `cycle % ENDINGS` picks.
fn cycle(comp: &Compositor, n: usize) -> Result<()> {
    let shade = (n % 200) as u8;
    match n % ENDINGS {
        0 => {
            let mut client = comp.connect()?;
            let window = Window::new(&mut client, "soak")?;
            let buffer = dmabuf(&client, shade)?;
            window.attach(&buffer);
            window.wait_frame(&mut client)?;
        }
        1 => {
            let mut client = comp.connect()?;
            let window = Window::new(&mut client, "soak")?;
            let buffer = dmabuf(&client, shade)?;
            window.attach(&buffer);
            window.surface.commit();
            client.conn.flush().context("flush")?;
        }
        2 => {
            let client = comp.connect()?;
            let _buffer = dmabuf(&client, shade)?;
            client.conn.flush().context("flush")?;
        }
        3 => {
            // Killed for a protocol error: past --max-client-params.
            let mut client = comp.connect()?;
            let _params: Vec<_> = (0..=PARAMS_LIMIT).map(|_| ParamsBuilder::new(&client)).collect();
            client.expect_protocol_error()?;
        }
        4 => {
            // wl_display.get_registry is 12 bytes; send 6 and hang up.
            let mut socket = UnixStream::connect(comp.socket_path())?;
            socket.write_all(&[1, 0, 0, 0, 1, 0])?;
        }
        5 => {
            let mut client = comp.connect()?;
            let window = Window::new(&mut client, "soak")?;
            let buffer = shm_buffer(&client, 64, 64)?;
            window.attach_wl_buffer(&buffer, 64, 64);
            window.surface.commit();
            buffer.destroy();
            window.wait_frame(&mut client)?;
        }
        _ => {
            let mut client = comp.connect()?;
            let window = Window::new(&mut client, "soak")?;
            let child = Subsurface::new(&client, &window.surface);
            child.set_position(8, 8);
            let (main, small) = (dmabuf(&client, shade)?, dmabuf(&client, shade / 2)?);
            child.attach_commit(&small);
            window.attach(&main);
            window.wait_frame(&mut client)?;
        }
    }
    Ok(())
}

#[test]
fn ten_thousand_clients_leave_no_fd_vulkan_object_or_reservation_behind() -> Result<()> {
    let cycles = match std::env::var("LEAK_SOAK_CYCLES") {
        Ok(v) => v.parse().context("LEAK_SOAK_CYCLES")?,
        Err(_) => CYCLES,
    };
    let dir = tempfile::tempdir()?;
    let stats = dir.path().join("stats.json");
    let limit = PARAMS_LIMIT.to_string();
    let mut comp = Compositor::spawn(&[
        "--size".as_ref(),
        "320x240".as_ref(),
        "--max-client-params".as_ref(),
        limit.as_ref(),
        "--stats".as_ref(),
        stats.as_os_str(),
    ])?;
    for n in 0..WARM_UP {
        cycle(&comp, n).with_context(|| format!("warm-up cycle {n}"))?;
    }
    let baseline = quiet_counts(&mut comp)?;
    let started = std::time::Instant::now();
    for n in 0..cycles {
        cycle(&comp, n).with_context(|| format!("cycle {n}"))?;
    }
    let elapsed = started.elapsed();
    let last = quiet_counts(&mut comp)?;

    let report = format!(
        "leak soak: {cycles} connect -> surface -> disconnect cycles ({ENDINGS} endings) in {:.1} s\n\
         {:<20} {:>10} {:>10}\n\
         {:<20} {:>10} {:>10}\n\
         {:<20} {:>10} {:>10}\n\
         {:<20} {:>10} {:>10}\n\
         {:<20} {:>10} {:>10}\n\
         {:<20} {:>10} {:>10}\n\
         {:<20} {:>10} {:>10}\n\
         bounds: fds, Vulkan objects and live reservations equal; resident memory within {RSS_BOUND_KIB} KiB\n",
        elapsed.as_secs_f64(),
        "count",
        "baseline",
        "final",
        "open fds",
        baseline.fds,
        last.fds,
        "vk textures",
        baseline.vulkan.textures,
        last.vulkan.textures,
        "vk host buffers",
        baseline.vulkan.host_buffers,
        last.vulkan.host_buffers,
        "vk targets",
        baseline.vulkan.targets,
        last.vulkan.targets,
        "live reservations",
        baseline.live_reservations,
        last.live_reservations,
        "resident KiB",
        baseline.rss_kib,
        last.rss_kib,
    );
    eprint!("{report}");
    let out = artifacts_dir();
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("leak-soak.txt"), &report)?;

    ensure!(last.settled() == baseline.settled(), "counts changed:\n{report}");
    ensure!(
        last.rss_kib - baseline.rss_kib <= RSS_BOUND_KIB,
        "resident memory grew past the bound:\n{report}"
    );
    comp.terminate()?;
    Ok(())
}
