//! Wayland compositor with a Vulkan renderer that imports client dma-bufs
//! zero-copy, headless or on DRM/KMS.
//!
//! `main` only sets up logging, parses the command line and turns the outcome
//! into an exit status; [`run`] wires the event loop together.

use std::{
    io::{IsTerminal, Write},
    os::unix::net::UnixStream,
    sync::Arc,
};

use anyhow::Context;
use clap::Parser;
use smithay::{
    reexports::calloop::{generic::Generic, EventLoop, Interest, Mode, PostAction},
    wayland::socket::ListeningSocketSource,
};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

use compositor::{
    app,
    backend::{
        drm::DrmOptions,
        headless::{HeadlessBackend, HeadlessOptions},
    },
    cli::{BackendKind, Cli},
    screenshot, spawn,
    spawn::ChildProcess,
    state::{Lifecycle, State},
    stats,
};

fn main() {
    init_tracing();
    init_lockdep();
    let cli = Cli::parse();
    let code = match run(&cli) {
        Ok(code) => code,
        Err(err) => {
            error!("{err:#}");
            1
        }
    };
    std::process::exit(code);
}

/// Logs go to stderr: stdout carries only the `READY` line scripts wait for.
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// The lock validator (compiled in with debug assertions or the importer's
/// `lockdep` feature). DOC: in the compositor binary a violation is logged
/// (tracing error, with both lock chains) and counted instead of panicking,
/// so one broken rule does not take every client down with it; the count is
/// written to `--stats` (`"lockdep": {"violations": N}`) and the test harness
/// fails any run where it is not zero (docs/locking-rules.md).
/// `COMPOSITOR_LOCKDEP_PANIC=1` panics instead.
fn init_lockdep() {
    importer::lockdep::set_panic_on_violation(std::env::var_os("COMPOSITOR_LOCKDEP_PANIC").is_some_and(|v| v == "1"));
    compositor::test_hooks::plant_lockdep_violation();
}

/// Runs the compositor until an exit rule fires; returns the exit status.
fn run(cli: &Cli) -> anyhow::Result<i32> {
    let kind = cli.backend_kind();
    info!(backend = ?kind, explicit = cli.backend.is_some(), "backend");
    let mut event_loop: EventLoop<'static, State> = EventLoop::try_new().context("creating the event loop")?;
    // Block SIGINT/SIGTERM before Vulkan starts its worker threads: they
    // inherit the mask, so the signals reach our signalfd instead of killing
    // the process through a thread that left them unblocked.
    let signals = block_exit_signals()?;

    match compositor::limits::raise_fd_limit() {
        Ok(limit) => info!(limit, "open file limit (RLIMIT_NOFILE) raised to the hard limit"),
        Err(err) => warn!("cannot raise the open file limit: {err}"),
    }
    let lifecycle = Lifecycle::new(None, cli.exit_after_frames);
    let mut state = match kind {
        BackendKind::Headless => app::init_headless(&event_loop, create_backend(cli)?, lifecycle)?,
        BackendKind::Drm => {
            let options = DrmOptions {
                device: cli.drm_device.clone(),
                allocator: cli.drm_allocator,
                scale: cli.scale,
            };
            app::init_drm(&event_loop, &cli.renderer_options(), &options, lifecycle)?
        }
    };

    state.limits = cli.limits;
    state.held_commits.timeout = cli.stall_timeout;
    let socket_name = listen(&event_loop, cli.socket.as_deref())?;
    insert_signal_source(&event_loop, signals, cli.stats.clone())?;

    announce_ready(&socket_name)?;
    if !cli.command.is_empty() {
        let child = ChildProcess::spawn(&cli.command, &socket_name)?;
        insert_child_watch(&event_loop, &child)?;
        state.lifecycle.child = Some(child);
    }
    for command in &cli.startup {
        spawn::spawn_startup(command, &socket_name);
    }

    event_loop
        .run(None, &mut state, app::after_dispatch)
        .context("running the event loop")?;

    let code = state.lifecycle.exit_code.unwrap_or(0);
    finish(&mut state, cli)?;
    Ok(code)
}

/// Creates the Vulkan renderer and the offscreen output.
fn create_backend(cli: &Cli) -> anyhow::Result<HeadlessBackend> {
    app::create_headless_backend(
        &cli.renderer_options(),
        HeadlessOptions {
            size: (cli.size.width, cli.size.height),
            scale: cli.scale,
            refresh_hz: cli.refresh,
        },
    )
}

/// Binds the wayland socket and accepts clients, tagging each with its pid.
fn listen(event_loop: &EventLoop<'static, State>, name: Option<&str>) -> anyhow::Result<std::ffi::OsString> {
    let source = match name {
        Some(name) => ListeningSocketSource::with_name(name).with_context(|| format!("binding socket {name:?}"))?,
        None => ListeningSocketSource::new_auto().context("binding a wayland socket")?,
    };
    let socket_name = source.socket_name().to_os_string();
    event_loop
        .handle()
        .insert_source(source, |stream, _, state| accept_client(state, stream))
        .map_err(|e| anyhow::anyhow!("inserting the socket source: {e}"))?;
    info!(socket = ?socket_name, "listening");
    Ok(socket_name)
}

fn accept_client(state: &mut State, stream: UnixStream) {
    let pid = rustix::net::sockopt::get_socket_peercred(&stream)
        .map(|cred| cred.pid.as_raw_nonzero().get())
        .map_err(|err| warn!("SO_PEERCRED failed: {err}"))
        .ok();
    // Kept to tell, at disconnect, a client that hung up from one that
    // stopped reading (state::ClientState).
    let socket = stream.try_clone().map(std::os::fd::OwnedFd::from).ok();
    let client_state = state.client_state_for(pid, socket);
    if let Err(err) = state.display_handle.insert_client(stream, Arc::new(client_state)) {
        warn!("failed to add client: {err}");
    }
}

/// Blocks SIGINT, SIGTERM and SIGUSR1 in this thread (and every thread started after) and
/// returns the signalfd source that receives them.
fn block_exit_signals() -> anyhow::Result<calloop::signals::Signals> {
    use calloop::signals::{Signal, Signals};
    Signals::new(&[Signal::SIGINT, Signal::SIGTERM, Signal::SIGUSR1]).context("blocking SIGINT/SIGTERM/SIGUSR1")
}

/// SIGINT/SIGTERM end the run cleanly (status 0, screenshot still written).
/// SIGUSR1 writes a `--stats` snapshot of the running compositor (logged as
/// "stats snapshot N written"), e.g. to compare counts over a long run.
fn insert_signal_source(
    event_loop: &EventLoop<'static, State>,
    signals: calloop::signals::Signals,
    stats: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let mut snapshots = 0u64;
    event_loop
        .handle()
        .insert_source(signals, move |event, _, state| match event.signal() {
            calloop::signals::Signal::SIGUSR1 => {
                snapshots += 1;
                write_snapshot(state, stats.as_deref(), snapshots);
            }
            signal => state.request_exit(0, &format!("received {signal:?}")),
        })
        .map_err(|e| anyhow::anyhow!("inserting the signal source: {e}"))?;
    Ok(())
}

/// Writes the running compositor's stats to `path` (SIGUSR1).
fn write_snapshot(state: &State, path: Option<&std::path::Path>, n: u64) {
    let Some(path) = path else {
        info!("SIGUSR1: no --stats path, no snapshot written");
        return;
    };
    match collect_stats(state).write(path) {
        Ok(()) => info!(path = %path.display(), "stats snapshot {n} written"),
        Err(err) => warn!("SIGUSR1: writing the stats snapshot: {err:#}"),
    }
}

/// Wakes the loop when the spawned client exits, whether or not it connected.
fn insert_child_watch(event_loop: &EventLoop<'static, State>, child: &ChildProcess) -> anyhow::Result<()> {
    let pidfd = child.pidfd()?;
    event_loop
        .handle()
        .insert_source(Generic::new(pidfd, Interest::READ, Mode::Level), |_, _, state| {
            let Some(child) = state.lifecycle.child.as_mut() else {
                return Ok(PostAction::Remove);
            };
            match child.try_reap() {
                Ok(Some(code)) => {
                    state.request_exit(code, "spawned client exited");
                    Ok(PostAction::Remove)
                }
                Ok(None) => Ok(PostAction::Continue),
                Err(err) => {
                    error!("{err:#}");
                    state.request_exit(1, "lost track of the spawned client");
                    Ok(PostAction::Remove)
                }
            }
        })
        .map_err(|e| anyhow::anyhow!("inserting the child watch: {e}"))?;
    Ok(())
}

/// Prints the line tests wait for; must come after the socket is bound.
fn announce_ready(socket_name: &std::ffi::OsStr) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "READY {}", socket_name.to_string_lossy()).context("writing READY")?;
    stdout.flush().context("flushing READY")?;
    Ok(())
}

/// Exit-time outputs: screenshot of the last frame, stats, child clean-up.
fn finish(state: &mut State, cli: &Cli) -> anyhow::Result<()> {
    info!(frames = state.backend.frames(), "stopping");
    if let Some(child) = state.lifecycle.child.as_mut() {
        child.terminate();
    }
    if cli.screenshot.is_some() && state.backend.renderer().core().device_lost() {
        warn!("no screenshot: the GPU device was lost");
    } else if let Some(path) = &cli.screenshot {
        let image = state.backend.screenshot(&state.space)?;
        screenshot::write_png(&image, path)?;
        info!(path = %path.display(), "screenshot written");
    }
    // No frame follows: nothing kept for one may pin a buffer or a texture.
    state.backend.forget_kept_elements();
    // No copy may still pin a buffer: stop the CPU copy worker first.
    state.cpu_copies.shutdown();
    // Every client buffer: invalidated under its reservation, freed after the
    // device went idle (teardown; rule B3 with the fences all signaled).
    state.backend.renderer_mut().teardown_imports();
    if let Some(path) = &cli.stats {
        let stats = collect_stats(state);
        stats.write(path)?;
        info!(path = %path.display(), ?stats, "stats written");
    }
    Ok(())
}

/// Every counter `--stats` holds (see `compositor::stats`).
fn collect_stats(state: &State) -> stats::Stats {
    let renderer = state.backend.renderer();
    let releases = state.backend.releases();
    let mut sync = state.buffer_sync.stats;
    sync.early_releases = releases.early;
    sync.fence_releases = releases.after_fence;
    sync.explicit_releases = releases.explicit_after_fence;
    if let Some(syncobj) = &state.syncobj_state {
        let c = syncobj.release_counters();
        sync.release_points_from_fence = c.from_fence.load(std::sync::atomic::Ordering::Relaxed);
        sync.release_points_cpu = c.cpu.load(std::sync::atomic::Ordering::Relaxed);
        sync.release_points_failed = c.failed.load(std::sync::atomic::Ordering::Relaxed);
    }
    sync.explicit_buffers_tracked = releases.explicit_tracked() as u64;
    sync.deferred_texture_frees = renderer.deferred_texture_frees();
    let shell = stats::ShellStats {
        windows_at_exit: state.space.elements().count() as u64,
        surfaces_held: compositor::handlers::compositor::surfaces_held(),
        ..state.shell_stats
    };
    stats::Stats {
        frames: state.backend.frames(),
        imports: renderer.import_stats(),
        draws: renderer.draw_stats(),
        buffer_sync: sync,
        reservations: renderer.reservation_stats(),
        cpu_copies: state.cpu_copies.stats,
        lockdep: stats::Lockdep::now(),
        shell,
        scene: state.backend.scene_stats(),
        vulkan_objects: importer::vulkan::census::live_objects(),
        linux_dmabuf: state.linux_dmabuf.stats,
        limits: compositor::limits::LimitStats::now(state.held_commits.warned, state.held_commits.len() as u64),
        drm: compositor::backend::drm::stats(&state.backend),
        test_hooks: compositor::test_hooks::ENABLED,
    }
}
