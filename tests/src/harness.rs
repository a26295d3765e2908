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

use anyhow::{bail, Context, Result};

use crate::client::{default_timeout, Client};
use crate::image::RgbaImage;
use crate::image_compare::artifacts_dir;
use crate::process;
use crate::scenes::OUTPUT_SIZE;
use crate::slots::Slot;

/// Path of the compositor binary: `$COMPOSITOR_BIN`, else
/// `<dir of the current exe>/../compositor` (i.e. `target/<profile>/compositor`
/// when called from `target/<profile>/deps/<test>`). Cargo does not build it
/// for `cargo test -p tests`; run `cargo build -p compositor` first.
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

/// The `--stats` JSON: `{"frames": N, "imports": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub frames: u64,
    pub dmabuf_image: u64,
    pub dmabuf_buffer: u64,
    pub shm: u64,
    pub cpu: u64,
    pub failed: u64,
}

impl Stats {
    /// Parses the stats file; missing counters are errors so a renamed
    /// field cannot make an assertion pass vacuously.
    pub fn parse(json: &str) -> Result<Stats> {
        let v: serde_json::Value = serde_json::from_str(json).context("stats is not JSON")?;
        let num = |ptr: &str| {
            v.pointer(ptr)
                .and_then(|n| n.as_u64())
                .with_context(|| format!("stats lacks {ptr}"))
        };
        Ok(Stats {
            frames: num("/frames")?,
            dmabuf_image: num("/imports/dmabuf_image")?,
            dmabuf_buffer: num("/imports/dmabuf_buffer")?,
            shm: num("/imports/shm")?,
            cpu: num("/imports/cpu")?,
            failed: num("/imports/failed")?,
        })
    }
}

/// A running compositor; dropped = SIGTERM + bounded wait (SIGKILL after).
pub struct Compositor {
    child: Child,
    pub socket_name: String,
    /// Private runtime dir holding the socket; removed on drop.
    pub runtime_dir: tempfile::TempDir,
    /// Where the compositor's stderr goes (kept after the test for debugging).
    pub log_path: PathBuf,
    /// Released after the process is reaped (field order: dropped last).
    _slot: Slot,
}

impl Compositor {
    /// Starts `compositor --backend headless --socket <unique> <args...>` and
    /// waits (bounded) for its `READY <socket>` line.
    pub fn spawn<S: Into<OsString> + Clone>(args: &[S]) -> Result<Compositor> {
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
        let log_path = artifacts_dir()
            .join("logs")
            .join(format!("{socket_name}.log"));
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let log =
            File::create(&log_path).with_context(|| format!("create {}", log_path.display()))?;

        let bin = compositor_bin()?;
        let mut cmd = Command::new(&bin);
        cmd.args(["--backend", "headless", "--socket", &socket_name])
            .args(args.iter().cloned().map(Into::into))
            .env("XDG_RUNTIME_DIR", runtime_dir.path())
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("WAYLAND_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "spawn {} (build it with `cargo build -p compositor` or set COMPOSITOR_BIN)",
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
            _slot: slot,
        };
        match rx.recv_timeout(default_timeout()) {
            Ok(line) => {
                let name = line.trim_start_matches("READY ").trim();
                if name != comp.socket_name {
                    bail!(
                        "compositor announced socket {name:?}, expected {:?}",
                        comp.socket_name
                    );
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

    /// Full path of the listening socket.
    pub fn socket_path(&self) -> PathBuf {
        self.runtime_dir.path().join(&self.socket_name)
    }

    /// A new client connection to this compositor.
    pub fn connect(&self) -> Result<Client> {
        Client::connect_to(&self.socket_path())
    }

    /// Whether the compositor is still running.
    pub fn is_running(&mut self) -> Result<bool> {
        Ok(self
            .child
            .try_wait()
            .context("query compositor status")?
            .is_none())
    }

    /// Waits (bounded) for the compositor to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        match process::wait_timeout(&mut self.child, timeout).context("wait for compositor")? {
            Some(status) => Ok(status),
            None => bail!(
                "compositor still running after {timeout:?}; log: {}",
                self.log_path.display()
            ),
        }
    }

    /// SIGTERM and wait (bounded); errors if SIGKILL was needed.
    pub fn terminate(&mut self) -> Result<ExitStatus> {
        let (status, killed) =
            process::stop(&mut self.child, default_timeout()).context("stop compositor")?;
        if killed {
            bail!(
                "compositor ignored SIGTERM for {:?} and was killed",
                default_timeout()
            );
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

/// Runs `compositor --size 320x240 --screenshot .. --stats .. -- <scene-client>
/// --scene NAME`, requires exit status 0, and returns screenshot and stats.
pub fn run_scene_with_stats(scene_client: &Path, scene: &str) -> Result<SceneRun> {
    run_scene_with_args(scene_client, scene, &[])
}

/// [`run_scene_with_stats`] with extra compositor options (e.g. `--cpu-fallback`).
pub fn run_scene_with_args(scene_client: &Path, scene: &str, extra: &[&str]) -> Result<SceneRun> {
    let out = tempfile::Builder::new()
        .prefix("wl-scene-")
        .tempdir()
        .context("create output dir")?;
    let shot = out.path().join("out.png");
    let stats = out.path().join("stats.json");
    let size = format!("{}x{}", OUTPUT_SIZE.0, OUTPUT_SIZE.1);
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
    let mut comp = Compositor::spawn(&args)?;
    // A scene maps a few windows and waits a few frames each; allow generous
    // time for software rendering on a loaded machine.
    let status = comp.wait_exit(default_timeout() * 6)?;
    if !status.success() {
        bail!(
            "scene {scene}: compositor exited with {status}; log: {}",
            comp.log_path.display()
        );
    }
    let image =
        RgbaImage::load_png(&shot).with_context(|| format!("scene {scene}: read screenshot"))?;
    let json = std::fs::read_to_string(&stats)
        .with_context(|| format!("scene {scene}: read {}", stats.display()))?;
    Ok(SceneRun {
        image,
        stats: Stats::parse(&json)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_parse() {
        let s = Stats::parse(r#"{"frames": 7, "imports": {"dmabuf_image": 2, "dmabuf_buffer": 1, "shm": 0, "cpu": 0, "failed": 0}}"#)
            .expect("parse");
        assert_eq!(
            s,
            Stats {
                frames: 7,
                dmabuf_image: 2,
                dmabuf_buffer: 1,
                shm: 0,
                cpu: 0,
                failed: 0
            }
        );
        assert!(Stats::parse(r#"{"frames": 7}"#).is_err());
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
