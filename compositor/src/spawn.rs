//! The client given after `--`: spawned once the socket listens, watched via a
//! pidfd so its exit wakes the event loop without SIGCHLD handling or polling.

use std::{
    ffi::OsStr,
    os::{fd::OwnedFd, unix::process::ExitStatusExt},
    process::{Child, Command, ExitStatus},
};

use anyhow::Context;
use rustix::process::{pidfd_open, Pid, PidfdFlags};
use tracing::{info, warn};

/// The spawned client process.
pub struct ChildProcess {
    child: Child,
    exit_code: Option<i32>,
}

impl ChildProcess {
    /// Starts `argv` with `WAYLAND_DISPLAY` pointing at our socket.
    ///
    /// `XDG_RUNTIME_DIR` and the rest of the environment are inherited. std
    /// resets the signal mask in the child, so blocking SIGINT/SIGTERM for
    /// calloop's signalfd does not leak into it.
    pub fn spawn(argv: &[String], socket_name: &OsStr) -> anyhow::Result<ChildProcess> {
        let (program, args) = argv.split_first().context("empty client command")?;
        let mut command = Command::new(program);
        command.args(args).env("WAYLAND_DISPLAY", socket_name);
        crate::limits::restore_fd_limit_in_child(&mut command);
        let child = command
            .spawn()
            .with_context(|| format!("spawning client {program:?}"))?;
        info!(pid = child.id(), ?argv, "spawned client");
        Ok(ChildProcess { child, exit_code: None })
    }

    pub fn pid(&self) -> i32 {
        // Linux pids fit in i32 (pid_max <= 2^22).
        self.child.id() as i32
    }

    /// A pidfd that becomes readable when the child exits.
    pub fn pidfd(&self) -> anyhow::Result<OwnedFd> {
        let pid = Pid::from_child(&self.child);
        pidfd_open(pid, PidfdFlags::empty()).context("pidfd_open on the spawned client")
    }

    /// Reaps the child if it has exited, recording its exit code.
    pub fn try_reap(&mut self) -> anyhow::Result<Option<i32>> {
        if self.exit_code.is_some() {
            return Ok(self.exit_code);
        }
        let status = self.child.try_wait().context("waiting for the spawned client")?;
        if let Some(status) = status {
            let code = exit_code(status);
            info!(%status, code, "spawned client exited");
            self.exit_code = Some(code);
        }
        Ok(self.exit_code)
    }

    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code
    }

    /// Asks a still-running child to quit when we exit for another reason,
    /// so it does not outlive the compositor it was started for.
    pub fn terminate(&mut self) {
        if matches!(self.try_reap(), Ok(Some(_))) {
            return;
        }
        let pid = Pid::from_child(&self.child);
        if let Err(err) = rustix::process::kill_process(pid, rustix::process::Signal::Term) {
            warn!("failed to SIGTERM the spawned client: {err}");
        }
    }
}

/// Whether `pid` is `ancestor` or one of its descendants.
///
/// Lets `-- sh -c 'client; ...'` work like `-- client`: the connection comes
/// from a grandchild, and it must still count as the spawned client's. Walks
/// `/proc/<pid>/stat` parent links; the peer is alive while connecting, so
/// its chain is readable.
pub fn is_same_or_descendant(pid: i32, ancestor: i32) -> bool {
    let mut current = pid;
    // Bounded: a ppid cycle cannot happen, but a corrupt read must not loop.
    for _ in 0..64 {
        if current == ancestor {
            return true;
        }
        match parent_pid(current) {
            Some(parent) if parent > 1 => current = parent,
            _ => return false,
        }
    }
    false
}

/// Parent pid from `/proc/<pid>/stat` (field 4, after the parenthesised comm,
/// which may itself contain spaces or parentheses).
fn parent_pid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

/// Shell-style exit status: the code, or 128 + signal number if killed.
pub fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }

    #[test]
    fn descendant_check() {
        let me = std::process::id() as i32;
        let parent = parent_pid(me).unwrap();
        assert!(is_same_or_descendant(me, me));
        assert!(is_same_or_descendant(me, parent));
        assert!(!is_same_or_descendant(parent, me));
    }
}

/// Starts a `--startup` command (`sh -c CMD`: a terminal, a panel) with
/// `WAYLAND_DISPLAY` set. Unlike the client after `--`, it does not tie the
/// compositor's exit to its own; a failure to start is logged, not fatal.
pub fn spawn_startup(command: &str, socket_name: &OsStr) {
    let mut sh = Command::new("/bin/sh");
    sh.arg("-c").arg(command).env("WAYLAND_DISPLAY", socket_name);
    crate::limits::restore_fd_limit_in_child(&mut sh);
    match sh.spawn() {
        Ok(child) => {
            info!(pid = child.id(), command, "started startup command");
            // Reaped by a detached thread so it never lingers as a zombie.
            std::thread::spawn(move || {
                let mut child = child;
                let _ = child.wait();
            });
        }
        Err(err) => warn!(command, "failed to start startup command: {err}"),
    }
}
