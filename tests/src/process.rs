//! Bounded waiting for child processes, on the kernel's exit notification
//! (a pidfd becomes readable when the process exits) rather than by polling
//! in a sleep loop.

use std::io;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, PidfdFlags, Signal};

/// Waits up to `timeout` for `child` to exit; `Ok(None)` on timeout.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    if let Some(status) = child.try_wait()? {
        return Ok(Some(status));
    }
    let pidfd = rustix::process::pidfd_open(Pid::from_child(child), PidfdFlags::empty())?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, ms) {
            Ok(0) => return child.try_wait(),
            Ok(_) => return child.wait().map(Some),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sends `SIGTERM`.
pub fn terminate(child: &Child) -> io::Result<()> {
    rustix::process::kill_process(Pid::from_child(child), Signal::Term).map_err(Into::into)
}

/// SIGTERM, wait up to `grace`, then SIGKILL and reap. Returns the status
/// and whether SIGKILL was needed.
pub fn stop(child: &mut Child, grace: Duration) -> io::Result<(ExitStatus, bool)> {
    if let Some(status) = child.try_wait()? {
        return Ok((status, false));
    }
    terminate(child)?;
    if let Some(status) = wait_timeout(child, grace)? {
        return Ok((status, false));
    }
    child.kill()?;
    Ok((child.wait()?, true))
}

/// How often thread `tid` of process `pid` blocked and was woken again
/// (`voluntary_ctxt_switches` in `/proc/PID/task/TID/status`): for an event
/// loop's thread, roughly how many times it woke up.
pub fn voluntary_switches(pid: u32, tid: u32) -> io::Result<u64> {
    let path = format!("/proc/{pid}/task/{tid}/status");
    let status = std::fs::read_to_string(&path)?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("{path}: no voluntary_ctxt_switches")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn voluntary_switches_count_wakeups() {
        let pid = std::process::id();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        let before = voluntary_switches(pid, tid).expect("read own status");
        std::thread::sleep(Duration::from_millis(5)); // blocks: one switch at least
        assert!(voluntary_switches(pid, tid).expect("again") > before);
    }

    #[test]
    fn wait_timeout_sees_exit_and_times_out() {
        let mut quick = Command::new("true").spawn().expect("spawn true");
        let status = wait_timeout(&mut quick, Duration::from_secs(10)).expect("wait");
        assert!(status.expect("exited").success());

        let mut slow = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        assert!(wait_timeout(&mut slow, Duration::from_millis(50))
            .expect("wait")
            .is_none());
        let (status, killed) = stop(&mut slow, Duration::from_secs(5)).expect("stop");
        assert!(!killed, "sleep exits on SIGTERM");
        assert!(!status.success());
    }
}
