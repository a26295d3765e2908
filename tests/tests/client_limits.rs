//! Per-client limits, stalled commits and a client that stops reading: what
//! one client does past its budget costs that client only. Each test runs a
//! witness client beside the offender and checks it keeps getting frames.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use testkit::harness::{Compositor, CopyGate};
use testkit::provider::provider_from_env;
use testkit::witness::Witness;
use testkit::{Client, DmabufBuffer, Format, ParamsBuilder, ProtocolError, Window};

const BOUND: Duration = Duration::from_secs(20);
/// Witness frames required after the offender was dealt with.
const FRAMES: u64 = 10;

/// `wl_display.error` `no_memory`, naming the limit's flag.
fn ensure_no_memory(err: &ProtocolError, flag: &str) -> Result<()> {
    ensure!(
        err.object_interface == "wl_display" && err.code == 2,
        "expected wl_display no_memory, got {err:?}"
    );
    ensure!(err.message.contains(flag), "the error should name {flag}: {err:?}");
    Ok(())
}

fn small_buffer(client: &Client) -> Result<DmabufBuffer> {
    let provider = provider_from_env()?;
    DmabufBuffer::new(client, &*provider, 16, 16, Format::Xrgb8888, 64, &|_, _| {
        Format::Xrgb8888.encode([200, 30, 30, 255])
    })
}

/// After the offender is gone: the witness keeps its frames, a fresh client
/// gets its full budget, and the compositor counted one disconnect.
fn others_unharmed(
    mut comp: Compositor,
    mut witness: Witness,
    budget: impl Fn(&mut Client) -> Result<()>,
) -> Result<()> {
    let base = witness.frames();
    witness
        .wait_for_frames(base + FRAMES, BOUND)
        .context("the witness stopped getting frames")?;
    let mut fresh = comp.connect()?;
    budget(&mut fresh).context("a fresh client could not use its own budget")?;
    fresh.roundtrip()?;
    drop(fresh);
    witness.stop()?;
    comp.terminate()?;
    let stats = comp.stats()?;
    ensure!(stats.limits.disconnects == 1, "disconnects: {:?}", stats.limits);
    Ok(())
}

#[test]
fn params_past_the_limit_disconnect_only_that_client() -> Result<()> {
    let comp = Compositor::spawn(&["--size", "320x240", "--max-client-params", "4"])?;
    let witness = Witness::start(&comp.socket_path(), BOUND)?;
    let mut client = comp.connect()?;
    let first: Vec<_> = (0..4).map(|_| ParamsBuilder::new(&client)).collect();
    client.roundtrip().context("four params objects are within the limit")?;
    // Destroyed params objects give their charge back.
    first[..2].iter().for_each(ParamsBuilder::destroy);
    let _again: Vec<_> = (0..2).map(|_| ParamsBuilder::new(&client)).collect();
    client
        .roundtrip()
        .context("destroyed params objects were not given back")?;
    let _fifth = ParamsBuilder::new(&client);
    ensure_no_memory(&client.expect_protocol_error()?, "--max-client-params")?;
    others_unharmed(comp, witness, |c| {
        let _held: Vec<_> = (0..4).map(|_| ParamsBuilder::new(c)).collect();
        c.roundtrip()
    })
}

#[test]
fn dmabufs_past_the_limit_disconnect_only_that_client() -> Result<()> {
    let comp = Compositor::spawn(&["--size", "320x240", "--max-client-dmabufs", "3"])?;
    let witness = Witness::start(&comp.socket_path(), BOUND)?;
    let mut client = comp.connect()?;
    let buffers = (0..3).map(|_| small_buffer(&client)).collect::<Result<Vec<_>>>()?;
    client.roundtrip().context("three buffers are within the limit")?;
    buffers[0].buffer.destroy();
    let _fourth = small_buffer(&client)?;
    client.roundtrip().context("a destroyed wl_buffer was not given back")?;
    let _fifth = small_buffer(&client)?;
    ensure_no_memory(&client.expect_protocol_error()?, "--max-client-dmabufs")?;
    others_unharmed(comp, witness, |c| {
        let _held = (0..3).map(|_| small_buffer(c)).collect::<Result<Vec<_>>>()?;
        c.roundtrip()
    })
}

#[test]
fn plane_fds_past_the_limit_disconnect_only_that_client() -> Result<()> {
    let comp = Compositor::spawn(&["--size", "320x240", "--max-client-fds", "2"])?;
    let witness = Witness::start(&comp.socket_path(), BOUND)?;
    let mut client = comp.connect()?;
    let _two = (0..2).map(|_| small_buffer(&client)).collect::<Result<Vec<_>>>()?;
    client
        .roundtrip()
        .context("two one-plane buffers are within the limit")?;
    let _third = small_buffer(&client)?;
    ensure_no_memory(&client.expect_protocol_error()?, "--max-client-fds")?;
    others_unharmed(comp, witness, |c| {
        let _held = (0..2).map(|_| small_buffer(c)).collect::<Result<Vec<_>>>()?;
        c.roundtrip()
    })
}

/// A commit held forever (its CPU copy never runs: the test gate stays shut)
/// is logged as stalled after `--stall-timeout`, the surface's later commits
/// queue behind it up to `--max-client-held-commits`, and the next one
/// disconnects the client.
#[test]
fn a_stalled_client_is_logged_and_its_queued_commits_are_capped() -> Result<()> {
    let gate = CopyGate::new()?;
    let mut comp = gate.spawn_compositor(&[
        "--size",
        "320x240",
        "--max-client-held-commits",
        "6",
        "--stall-timeout",
        "0.2",
    ])?;
    let witness = Witness::start(&comp.socket_path(), BOUND)?;

    let mut client = comp.connect()?;
    let window = Window::new(&mut client, "stalled")?;
    // 4 MiB: past the default --cpu-copy-threshold, so its copy goes to the
    // worker (and waits at the gate); the witness's small copies do not.
    let provider = provider_from_env()?;
    let buffer = DmabufBuffer::new(&client, &*provider, 1024, 1024, Format::Xrgb8888, 4096, &|_, _| {
        Format::Xrgb8888.encode([30, 30, 200, 255])
    })?;
    window.attach(&buffer);
    window.damage_all();
    window.surface.commit(); // held: its copy waits at the gate
    client.roundtrip()?;
    let line = comp.wait_for_log("client stalled", BOUND)?;
    ensure!(line.contains("WARN"), "the stall should be a warning: {line}");

    // Five more commits queue behind the held one: six units, the limit.
    for _ in 0..5 {
        window.damage_all();
        window.surface.commit();
    }
    client
        .roundtrip()
        .context("six held or queued commits are within the limit")?;
    window.damage_all();
    window.surface.commit();
    ensure_no_memory(&client.expect_protocol_error()?, "--max-client-held-commits")?;

    // Let the worker finish the one copy it was given, so it can shut down.
    gate.open()?;
    others_unharmed(comp, witness, |c| {
        let w = Window::new(c, "fresh")?;
        let b = small_buffer(c)?;
        w.attach(&b);
        w.damage_all();
        w.surface.commit();
        c.roundtrip()
    })
}

/// A client that floods `wl_display.sync` and never reads the replies is
/// disconnected once its socket and the compositor's buffer for it are full;
/// the compositor never waits on it.
#[test]
fn a_client_that_stops_reading_is_disconnected() -> Result<()> {
    let mut comp = Compositor::spawn(&["--size", "320x240"])?;
    let mut witness = Witness::start(&comp.socket_path(), BOUND)?;
    let mut socket = UnixStream::connect(comp.socket_path())?;
    // A compositor that stopped reading us would block the writes: fail then.
    socket.set_write_timeout(Some(BOUND))?;
    // wl_display (object 1) opcode 0 `sync(new_id)`: 12 bytes, ids from 2 up.
    let mut next_id = 2u32;
    let mut batch = Vec::with_capacity(12 * 1024);
    let mut sent = 0u64;
    let closed = loop {
        batch.clear();
        for _ in 0..1024 {
            batch.extend_from_slice(&1u32.to_ne_bytes());
            batch.extend_from_slice(&(12u32 << 16).to_ne_bytes());
            batch.extend_from_slice(&next_id.to_ne_bytes());
            next_id += 1;
        }
        match socket.write_all(&batch) {
            Ok(()) => sent += 1024,
            Err(e) => break e,
        }
        ensure!(next_id < 4_000_000, "still connected after {sent} unread sync replies");
    };
    ensure!(
        matches!(
            closed.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ),
        "the connection should be closed by the compositor: {closed}"
    );
    comp.wait_for_log("it stopped reading", BOUND)?;
    let base = witness.frames();
    witness.wait_for_frames(base + FRAMES, BOUND)?;
    witness.stop()?;
    comp.terminate()?;
    Ok(())
}

/// Every dma-buf plane costs an fd: the soft RLIMIT_NOFILE is raised to the
/// hard limit at start-up.
#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit() -> Result<()> {
    // Start the compositor below its hard limit (it inherits ours), so the
    // raise is observed even where soft and hard are equal to begin with.
    let mut ours = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on this process.
    ensure!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut ours) } == 0);
    let lowered = libc::rlimit {
        rlim_cur: ours.rlim_max.min(4096) - 1,
        rlim_max: ours.rlim_max,
    };
    ensure!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) } == 0);
    let spawned = Compositor::spawn(&["--size", "64x64"]);
    ensure!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &ours) } == 0);
    let mut comp = spawned?;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", comp.pid()))?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .context("no 'Max open files' in /proc/PID/limits")?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (soft, hard) = (fields[3], fields[4]);
    ensure!(soft == hard, "soft {soft} != hard {hard}: {line}");
    comp.terminate()?;
    Ok(())
}
