//! Runs the compositor binary for integration tests.
//!
//! Each [`Compositor`] gets a fresh private `XDG_RUNTIME_DIR` and a unique
//! socket name, so tests can run in parallel. Start-up is synchronised on the
//! `READY <socket>` line the compositor prints once it listens; shutdown on
//! the process actually exiting (see [`crate::process`]).

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use crate::client::{default_timeout, Client};
use crate::image::RgbaImage;
use crate::image_compare::artifacts_dir;
use crate::process;
use crate::scenes::{self, OUTPUT_SIZE};
use crate::slots::Slot;

/// Path of the compositor binary: `$COMPOSITOR_BIN`, else
/// `<dir of the current exe>/../compositor` (i.e. `target/<profile>/compositor`
/// when called from `target/<profile>/deps/<test>`). Cargo does not build it
/// for `cargo test -p testkit`; run [`TEST_BUILD_COMMAND`] first.
pub fn compositor_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("COMPOSITOR_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("locate the current executable")?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("current exe has no grandparent directory")?;
    Ok(dir.join("compositor"))
}

/// Screenshot and stats written by the compositor for one scene run.
#[derive(Debug, Clone)]
pub struct SceneRun {
    pub image: RgbaImage,
    pub stats: Stats,
}

/// The `--stats` JSON, as the compositor writes it: its own schema type,
/// every field required, so a renamed or missing counter fails the parse
/// instead of making an assertion pass vacuously.
pub use compositor::stats::Stats;

/// Checks on a run's [`Stats`] that every test shares.
pub trait StatsExt {
    /// The locking rules held for the whole run: the validator was compiled
    /// in and counted no violation, and every client buffer's reservation was
    /// destroyed and freed through the graveyard by exit (nothing leaked,
    /// nothing still buried). Asserted for every compositor run.
    fn check_lock_rules(&self) -> Result<()>;

    /// The run's compositor was built with its test hooks (cargo feature
    /// `test-hooks`), which a test relying on the environment variable
    /// `hook` needs; the error says how to build it.
    fn require_test_hooks(&self, hook: &str) -> Result<()>;
}

impl StatsExt for Stats {
    fn check_lock_rules(&self) -> Result<()> {
        if !self.lockdep.enabled {
            bail!("the compositor was built without its lock validator (debug build or importer feature `lockdep` needed)");
        }
        if self.lockdep.violations != 0 {
            bail!(
                "the compositor's lock validator counted {} violation(s); see its log",
                self.lockdep.violations
            );
        }
        let resv = &self.reservations;
        if resv.destroyed != resv.created || resv.buried != 0 {
            bail!(
                "client-buffer reservations at exit: created {}, destroyed {}, still buried {}",
                resv.created,
                resv.destroyed,
                resv.buried
            );
        }
        if resv.destroyed > 0 && resv.freed < resv.destroyed {
            bail!(
                "{} reservations destroyed but only {} dead entries freed",
                resv.destroyed,
                resv.freed
            );
        }
        Ok(())
    }

    fn require_test_hooks(&self, hook: &str) -> Result<()> {
        if !self.test_hooks {
            bail!("{}", missing_test_hooks(hook));
        }
        Ok(())
    }
}

/// The build command the test scripts use (`scripts/test.sh`), for messages.
pub const TEST_BUILD_COMMAND: &str = "cargo build --workspace --bins --features compositor/test-hooks";

fn missing_test_hooks(hook: &str) -> String {
    let bin = compositor_bin().map_or_else(|e| format!("({e})"), |p| p.display().to_string());
    format!(
        "this test needs the compositor's test hook {hook}, which only a build with the cargo feature \
         `test-hooks` has, and {bin} was built without it (its --stats say \"test_hooks\": false); \
         build it with `{TEST_BUILD_COMMAND}` (scripts/test.sh does)"
    )
}

/// Fails unless the compositor binary the tests run was built with its test
/// hooks, for a test relying on the environment variable `hook` before it
/// has any run of its own to look at. Finds out once per test process, from
/// the `--stats` of a short headless run (one frame, no client).
pub fn require_test_hooks(hook: &str) -> Result<()> {
    static PROBE: std::sync::OnceLock<std::result::Result<bool, String>> = std::sync::OnceLock::new();
    let probe = PROBE.get_or_init(|| {
        let probe = || -> Result<bool> {
            let mut comp = Compositor::spawn(&["--size", "64x64", "--exit-after-frames", "1"])?;
            // Only `test_hooks` matters here: the lock rules are not checked.
            let status = comp.wait_exit_unchecked(default_timeout())?;
            ensure!(
                status.success(),
                "exited with {status}; log: {}",
                comp.log_path.display()
            );
            Ok(comp.stats()?.test_hooks)
        };
        probe().map_err(|e| format!("{e:#}"))
    });
    match probe {
        Ok(true) => Ok(()),
        Ok(false) => bail!("{}", missing_test_hooks(hook)),
        Err(e) => bail!("could not find out whether the compositor has its test hooks (for {hook}): {e}"),
    }
}

/// The FIFO behind the compositor's `COMPOSITOR_COPY_GATE` test hook: the
/// CPU copy worker reads one byte from it before each job, so a test holds
/// a copy "in progress" until it calls [`CopyGate::open`]. Removed on drop.
pub struct CopyGate {
    dir: tempfile::TempDir,
}

impl CopyGate {
    /// Checks the compositor has its test hooks, then makes the FIFO.
    pub fn new() -> Result<CopyGate> {
        // Without the hook the gate is ignored and copies are not held.
        require_test_hooks("COMPOSITOR_COPY_GATE")?;
        let gate = CopyGate {
            dir: tempfile::tempdir()?,
        };
        let c = std::ffi::CString::new(gate.path().as_os_str().as_encoded_bytes())?;
        // SAFETY: a valid NUL-terminated path.
        ensure!(
            unsafe { libc::mkfifo(c.as_ptr(), 0o600) } == 0,
            "mkfifo: {}",
            std::io::Error::last_os_error()
        );
        Ok(gate)
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("copy-gate")
    }

    /// The environment variable to start the compositor with.
    pub fn env(&self) -> Result<(&'static str, String)> {
        let path = self.path();
        let path = path.to_str().context("utf-8 temp path")?;
        Ok(("COMPOSITOR_COPY_GATE", path.to_string()))
    }

    /// A compositor with `--cpu-fallback`, then `args`, whose CPU copies
    /// wait at this gate.
    pub fn spawn_compositor<S: Into<OsString> + Clone>(&self, args: &[S]) -> Result<Compositor> {
        let (var, path) = self.env()?;
        let mut all: Vec<OsString> = vec!["--cpu-fallback".into()];
        all.extend(args.iter().cloned().map(Into::into));
        Compositor::spawn_with_env(&all, &[(var, path.as_str())])
    }

    /// [`spawn_compositor`](Self::spawn_compositor) with a 320×240 output
    /// whose last frame is written to `shot` at exit.
    pub fn spawn_with_screenshot(&self, shot: &Path) -> Result<Compositor> {
        let args: [&std::ffi::OsStr; 4] = [
            "--size".as_ref(),
            "320x240".as_ref(),
            "--screenshot".as_ref(),
            shot.as_os_str(),
        ];
        self.spawn_compositor(&args)
    }

    /// Lets one job through (blocks until the worker opens the FIFO).
    pub fn open(&self) -> Result<()> {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .write(true)
            .open(self.path())?
            .write_all(&[1])?;
        Ok(())
    }
}

/// Reads and parses a `--stats` file (no checks).
pub fn read_stats(path: &Path) -> Result<Stats> {
    let json = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    Stats::parse(&json).with_context(|| format!("stats {}", path.display()))
}

/// Reads a `--stats` file and checks [`StatsExt::check_lock_rules`].
pub fn check_stats_file(path: &Path) -> Result<Stats> {
    let stats = read_stats(path)?;
    stats
        .check_lock_rules()
        .with_context(|| format!("stats {}", path.display()))?;
    Ok(stats)
}

/// A running compositor; dropped = SIGTERM + bounded wait (SIGKILL after).
pub struct Compositor {
    child: Child,
    pub socket_name: String,
    /// Private runtime dir holding the socket; removed on drop.
    pub runtime_dir: tempfile::TempDir,
    /// Where the compositor's stderr goes (kept after the test for debugging).
    pub log_path: PathBuf,
    /// Its `--stats` file (the caller's, or one in `runtime_dir`): checked
    /// with [`check_stats_file`] after every clean exit.
    pub stats_path: PathBuf,
    /// SIGUSR1 snapshots asked for so far ([`Compositor::snapshot`]).
    snapshots: u64,
    /// Released after the process is reaped (field order: dropped last).
    _slot: Slot,
}

impl Compositor {
    /// Starts `compositor --backend headless --socket <unique> <args...>`
    /// (`--backend headless` only if `args` name no backend) and waits
    /// (bounded) for its `READY <socket>` line.
    pub fn spawn<S: Into<OsString> + Clone>(args: &[S]) -> Result<Compositor> {
        Compositor::spawn_with_env(args, &[])
    }

    /// [`Compositor::spawn`] with extra environment variables.
    pub fn spawn_with_env<S: Into<OsString> + Clone>(args: &[S], env: &[(&str, &str)]) -> Result<Compositor> {
        let slot = Slot::acquire();
        let runtime_dir = tempfile::Builder::new()
            .prefix("wl-test-")
            .tempdir()
            .context("create runtime dir")?;
        std::fs::set_permissions(runtime_dir.path(), std::fs::Permissions::from_mode(0o700))
            .context("chmod 0700 runtime dir")?;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let socket_name = format!(
            "wl-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let log_path = artifacts_dir().join("logs").join(format!("{socket_name}.log"));
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let log = File::create(&log_path).with_context(|| format!("create {}", log_path.display()))?;

        let bin = compositor_bin()?;
        let mut args: Vec<OsString> = args.iter().cloned().map(Into::into).collect();
        let stats_path = match args.iter().position(|a| a == "--stats") {
            Some(i) => PathBuf::from(args.get(i + 1).context("--stats without a path")?),
            None => {
                // Before a `--` (the spawned client's arguments), if any.
                let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
                let p = runtime_dir.path().join("stats.json");
                args.splice(at..at, ["--stats".into(), p.clone().into_os_string()]);
                p
            }
        };
        let mut cmd = Command::new(&bin);
        // Headless unless the test picks a backend itself (the drm VM test).
        if !args.iter().any(|a| a == "--backend") {
            cmd.args(["--backend", "headless"]);
        }
        cmd.args(["--socket", &socket_name])
            .args(&args)
            .env("XDG_RUNTIME_DIR", runtime_dir.path())
            .envs(env.iter().copied())
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("WAYLAND_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "spawn {} (build it with `{TEST_BUILD_COMMAND}` or set COMPOSITOR_BIN)",
                bin.display()
            )
        })?;
        let stdout = child.stdout.take().context("compositor stdout not piped")?;

        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout for the compositor's whole life so it never
        // blocks on a full pipe; only the first READY line is forwarded.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("READY ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line);
                        continue;
                    }
                }
                eprintln!("[compositor stdout] {line}");
            }
        });

        let mut comp = Compositor {
            child,
            socket_name,
            runtime_dir,
            log_path,
            stats_path,
            snapshots: 0,
            _slot: slot,
        };
        match rx.recv_timeout(default_timeout()) {
            Ok(line) => {
                let name = line.trim_start_matches("READY ").trim();
                if name != comp.socket_name {
                    bail!("compositor announced socket {name:?}, expected {:?}", comp.socket_name);
                }
                Ok(comp)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!(
                    "compositor printed no READY line within {:?}; log: {}",
                    default_timeout(),
                    comp.log_path.display()
                )
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = process::wait_timeout(&mut comp.child, default_timeout())?;
                bail!(
                    "compositor exited before READY ({status:?}); log: {}",
                    comp.log_path.display()
                )
            }
        }
    }

    /// The compositor's process id (its event loop runs on the main thread,
    /// whose thread id is the same).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Full path of the listening socket.
    pub fn socket_path(&self) -> PathBuf {
        self.runtime_dir.path().join(&self.socket_name)
    }

    /// A new client connection to this compositor.
    pub fn connect(&self) -> Result<Client> {
        Client::connect_to(&self.socket_path())
    }

    /// The `--stats` it wrote at exit, parsed (no checks; a clean exit
    /// through [`Compositor::wait_exit`] or [`Compositor::terminate`] has
    /// already checked the lock rules).
    pub fn stats(&self) -> Result<Stats> {
        read_stats(&self.stats_path).with_context(|| format!("compositor log: {}", self.log_path.display()))
    }

    /// Waits (bounded) until the compositor's log contains `needle` and
    /// returns that line; fails with the log's path if it never appears or
    /// the compositor exits first. Woken by inotify when the log is written.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = std::time::Instant::now() + timeout;
        let watch = LogWatch::new(&self.log_path)?;
        loop {
            let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
            if let Some(line) = log.lines().find(|l| l.contains(needle)) {
                return Ok(line.to_string());
            }
            if !self.is_running()? {
                bail!(
                    "compositor exited before logging {needle:?}; log: {}",
                    self.log_path.display()
                );
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                bail!(
                    "no {needle:?} in the log within {timeout:?}: {}",
                    self.log_path.display()
                );
            }
            // Also wakes every 500 ms to notice an exit that wrote nothing.
            watch.wait(left.min(Duration::from_millis(500)))?;
        }
    }

    /// The running compositor's stats: SIGUSR1 makes it write a snapshot to
    /// its `--stats` path; waits (bounded) for its log line, then reads it.
    pub fn snapshot(&mut self) -> Result<Stats> {
        self.snapshots += 1;
        let pid = libc::pid_t::try_from(self.pid()).context("pid")?;
        // SAFETY: signals our own child.
        ensure!(
            unsafe { libc::kill(pid, libc::SIGUSR1) } == 0,
            "kill -USR1: {}",
            std::io::Error::last_os_error()
        );
        self.wait_for_log(&format!("stats snapshot {} written", self.snapshots), default_timeout())?;
        read_stats(&self.stats_path)
    }

    /// Whether the compositor is still running.
    pub fn is_running(&mut self) -> Result<bool> {
        Ok(self.child.try_wait().context("query compositor status")?.is_none())
    }

    /// After a clean exit: the lock rules held ([`check_stats_file`]).
    fn check_clean_exit(&self, status: ExitStatus) -> Result<ExitStatus> {
        if status.success() {
            check_stats_file(&self.stats_path)
                .with_context(|| format!("compositor log: {}", self.log_path.display()))?;
        }
        Ok(status)
    }

    /// Waits (bounded) for the compositor to exit by itself; after a clean
    /// exit, checks its stats for lock-rule violations.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.wait_exit_unchecked(timeout).and_then(|s| self.check_clean_exit(s))
    }

    /// [`Compositor::wait_exit`] without the stats check (tests that plant
    /// a violation on purpose).
    pub fn wait_exit_unchecked(&mut self, timeout: Duration) -> Result<ExitStatus> {
        match process::wait_timeout(&mut self.child, timeout).context("wait for compositor")? {
            Some(status) => Ok(status),
            None => bail!(
                "compositor still running after {timeout:?}; log: {}",
                self.log_path.display()
            ),
        }
    }

    /// SIGTERM and wait (bounded); errors if SIGKILL was needed. After a
    /// clean exit, checks its stats for lock-rule violations.
    pub fn terminate(&mut self) -> Result<ExitStatus> {
        self.terminate_unchecked().and_then(|s| self.check_clean_exit(s))
    }

    /// [`Compositor::terminate`], and the exit must be a success.
    pub fn terminate_successfully(&mut self) -> Result<()> {
        let status = self.terminate()?;
        ensure!(
            status.success(),
            "compositor exited with {status} on SIGTERM; log: {}",
            self.log_path.display()
        );
        Ok(())
    }

    /// [`Compositor::terminate`] without the stats check.
    pub fn terminate_unchecked(&mut self) -> Result<ExitStatus> {
        let (status, killed) = process::stop(&mut self.child, default_timeout()).context("stop compositor")?;
        if killed {
            bail!("compositor ignored SIGTERM for {:?} and was killed", default_timeout());
        }
        Ok(status)
    }
}

impl Drop for Compositor {
    fn drop(&mut self) {
        if let Err(e) = process::stop(&mut self.child, default_timeout()) {
            eprintln!("failed to stop compositor: {e}");
        }
    }
}

/// Runs one scene end to end and returns the screenshot.
pub fn run_scene(scene_client: &Path, scene: &str) -> Result<RgbaImage> {
    Ok(run_scene_with_stats(scene_client, scene)?.image)
}

/// Runs `compositor --size WxH --screenshot .. --stats .. -- <scene-client>
/// --scene NAME` (the scene's [`crate::scenes::Scene::output_size`], 320x240
/// for most), requires exit status 0, and returns screenshot and stats.
pub fn run_scene_with_stats(scene_client: &Path, scene: &str) -> Result<SceneRun> {
    run_scene_with_args(scene_client, scene, &[])
}

/// [`run_scene_with_stats`] with extra compositor options (e.g.
/// `--cpu-fallback`). The run must keep the lock rules
/// ([`StatsExt::check_lock_rules`]: zero validator violations, every reservation
/// freed by exit).
pub fn run_scene_with_args(scene_client: &Path, scene: &str, extra: &[&str]) -> Result<SceneRun> {
    run_scene_with_env(scene_client, scene, extra, &[])
}

/// [`run_scene_with_args`] with extra environment for the compositor. The
/// lock-rule check happens in [`Compositor::wait_exit`].
pub fn run_scene_with_env(scene_client: &Path, scene: &str, extra: &[&str], env: &[(&str, &str)]) -> Result<SceneRun> {
    let (run, comp) = run_scene_unchecked(scene_client, scene, extra, env)?;
    run.stats
        .check_lock_rules()
        .with_context(|| format!("scene {scene}; log: {}", comp.display()))?;
    Ok(run)
}

/// Runs a scene without checking the lock rules (for the test that plants a
/// violation); returns the run and the compositor's log path.
pub fn run_scene_unchecked(
    scene_client: &Path,
    scene: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Result<(SceneRun, PathBuf)> {
    let out = tempfile::Builder::new()
        .prefix("wl-scene-")
        .tempdir()
        .context("create output dir")?;
    let shot = out.path().join("out.png");
    let stats = out.path().join("stats.json");
    let (w, h) = scenes::by_name(scene).map_or(OUTPUT_SIZE, |s| s.output_size);
    let size = format!("{w}x{h}");
    let mut args: Vec<OsString> = extra.iter().map(OsString::from).collect();
    args.extend::<Vec<OsString>>(vec![
        "--size".into(),
        size.into(),
        "--screenshot".into(),
        shot.clone().into(),
        "--stats".into(),
        stats.clone().into(),
        "--".into(),
        scene_client.into(),
        "--scene".into(),
        scene.into(),
    ]);
    let mut comp = Compositor::spawn_with_env(&args, env)?;
    // A scene maps a few windows and waits a few frames each; allow generous
    // time for software rendering on a loaded machine.
    let status = comp.wait_exit_unchecked(default_timeout() * 6)?;
    if !status.success() {
        bail!(
            "scene {scene}: compositor exited with {status}; log: {}",
            comp.log_path.display()
        );
    }
    let image = RgbaImage::load_png(&shot).with_context(|| format!("scene {scene}: read screenshot"))?;
    let stats = read_stats(&stats).with_context(|| format!("scene {scene}"))?;
    Ok((SceneRun { image, stats }, comp.log_path.clone()))
}

/// An inotify watch for writes to one file.
struct LogWatch(std::os::fd::OwnedFd);

impl LogWatch {
    fn new(path: &Path) -> Result<LogWatch> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain syscalls; the fd is owned from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        ensure!(fd >= 0, "inotify_init1: {}", std::io::Error::last_os_error());
        let watch = LogWatch(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
        // SAFETY: a valid fd and NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_MODIFY) };
        ensure!(
            wd >= 0,
            "inotify_add_watch {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        Ok(watch)
    }

    /// Returns once the file was written to or `timeout` passed; drains the events.
    fn wait(&self, timeout: Duration) -> Result<()> {
        use std::os::fd::AsRawFd;
        let mut pfd = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, ms) } < 0 {
            let err = std::io::Error::last_os_error();
            ensure!(err.kind() == std::io::ErrorKind::Interrupted, "poll inotify: {err}");
        }
        let mut buf = [0u8; 4096];
        // SAFETY: reads into a local buffer; EAGAIN once drained (non-blocking).
        while unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use compositor::stats::{Lockdep, ShellStats};
    use importer::import::{ImportStats, ReservationStats};

    /// A clean run's stats, as the compositor would write them.
    fn clean() -> Stats {
        Stats {
            frames: 7,
            imports: ImportStats {
                zero_copy_image: 2,
                gpu_buffer_copy: 1,
                ..ImportStats::default()
            },
            draws: Default::default(),
            buffer_sync: Default::default(),
            reservations: ReservationStats {
                created: 3,
                destroyed: 3,
                freed: 4,
                ..ReservationStats::default()
            },
            cpu_copies: Default::default(),
            lockdep: Lockdep {
                enabled: true,
                violations: 0,
            },
            shell: ShellStats::default(),
            scene: Default::default(),
            vulkan_objects: Default::default(),
            linux_dmabuf: Default::default(),
            limits: Default::default(),
            drm: None,
            test_hooks: true,
        }
    }

    #[test]
    fn stats_parse_the_compositors_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stats.json");
        clean().write(&path).expect("write");
        let s = read_stats(&path).expect("parse what the compositor writes");
        assert_eq!(
            (s.frames, s.imports, s.reservations),
            (7, clean().imports, clean().reservations)
        );
        assert!(s.lockdep.enabled && s.test_hooks && s.drm.is_none());
        // Every field is required: a missing section or a renamed counter fails.
        assert!(Stats::parse(r#"{"frames": 7}"#).is_err());
        let json = std::fs::read_to_string(&path).expect("read");
        assert!(json.contains("\"zero_copy_image\""), "{json}");
        assert!(Stats::parse(&json.replace("\"zero_copy_image\"", "\"dmabuf_image\"")).is_err());
        assert!(Stats::parse(&json.replace("\"buffer_sync\"", "\"sync\"")).is_err());
    }

    #[test]
    fn lock_rules() {
        let s = clean();
        s.check_lock_rules().expect("clean run");
        let mut bad = clean();
        bad.lockdep.violations = 1;
        assert!(bad.check_lock_rules().is_err());
        let mut bad = clean();
        bad.lockdep.enabled = false;
        assert!(bad.check_lock_rules().is_err());
        let mut bad = clean();
        bad.reservations.buried = 1;
        assert!(bad.check_lock_rules().is_err());
        let mut bad = clean();
        bad.reservations.destroyed = 2;
        assert!(bad.check_lock_rules().is_err());
        let mut bad = clean();
        bad.reservations.freed = 2;
        assert!(bad.check_lock_rules().is_err());
    }

    #[test]
    fn test_hooks_required() {
        clean().require_test_hooks("COMPOSITOR_COPY_GATE").expect("hooks");
        let mut plain = clean();
        plain.test_hooks = false;
        let err = plain
            .require_test_hooks("COMPOSITOR_COPY_GATE")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("COMPOSITOR_COPY_GATE") && err.contains("test-hooks") && err.contains(TEST_BUILD_COMMAND),
            "{err}"
        );
    }

    #[test]
    fn compositor_bin_from_env() {
        // Only checks the fallback shape; COMPOSITOR_BIN may be set by the caller.
        if std::env::var_os("COMPOSITOR_BIN").is_none() {
            let p = compositor_bin().expect("path");
            assert!(p.ends_with("compositor"));
        }
    }
}
