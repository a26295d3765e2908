//! A real seat manager for the kernel VM tier: Debian's `seatd` (0.7), run
//! as root by the test. Its seat `seat0` is VT-bound: a client's session is
//! the VT that was in the foreground when it opened the seat, seatd puts
//! that VT in `VT_PROCESS` mode, and a switch away (or back) reaches the
//! client as libseat's disable (enable) seat event, with DRM master dropped
//! (set) by seatd on the device fds it handed out.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};

/// The socket libseat's seatd backend connects to.
pub const SOCKET: &str = "/run/seatd.sock";

/// A running `seatd`; dropped = SIGTERM and a bounded wait (it removes its
/// socket and gives its VTs back to text mode on exit).
pub struct Seatd {
    child: Child,
    pub log_path: PathBuf,
}

impl Seatd {
    /// Starts `seatd -g root -l debug` with its log in `log_path` and waits,
    /// at most `timeout`, for its readiness notification (`-n FD`: one
    /// newline once the socket listens), then checks [`SOCKET`] is there.
    pub fn start(log_path: &Path, timeout: Duration) -> io::Result<Seatd> {
        let log = File::create(log_path).map_err(|e| super::with_path(e, &log_path.display().to_string()))?;
        let (ready_r, ready_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let ready_fd = ready_w.as_raw_fd();
        let mut cmd = Command::new("seatd");
        cmd.args(["-g", "root", "-l", "debug", "-n", &ready_fd.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: only fcntl (async-signal-safe) between fork and exec: the
        // readiness pipe's write end stays open in seatd.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(ready_fd, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("spawn seatd (apt-get install seatd): {e}")))?;
        drop(ready_w);
        let mut seatd = Seatd {
            child,
            log_path: log_path.to_path_buf(),
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let ready = loop {
            let mut fds = [PollFd::new(&ready_r, PollFlags::IN)];
            match rustix::event::poll(&mut fds, ms) {
                Ok(n) => break n > 0,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let mut byte = [0u8; 1];
        let got = if ready { File::from(ready_r).read(&mut byte)? } else { 0 };
        if got != 1 {
            let status = seatd.child.try_wait()?;
            return Err(io::Error::other(format!(
                "seatd not ready within {timeout:?} (exit status {status:?}); log: {}",
                log_path.display()
            )));
        }
        let is_socket = std::fs::symlink_metadata(SOCKET).is_ok_and(|m| m.file_type().is_socket());
        if !is_socket {
            return Err(io::Error::other(format!(
                "seatd reported ready but {SOCKET} is not a socket"
            )));
        }
        Ok(seatd)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and a bounded wait; whether it exited by itself.
    pub fn stop(&mut self, timeout: Duration) -> io::Result<bool> {
        let (_, killed) = crate::process::stop(&mut self.child, timeout)?;
        Ok(!killed)
    }
}

impl Drop for Seatd {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(10));
    }
}
