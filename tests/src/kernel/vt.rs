//! Virtual terminals: which VT is in the foreground, and switching to another
//! one the way `chvt` does (`VT_ACTIVATE`, then `VT_WAITACTIVE`, on
//! `/dev/tty0`). Used by the kernel VM tier to switch a compositor's session
//! away and back (`tests/tests/kernel_drm.rs`).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::time::Duration;

use rustix::fs::{Mode, OFlags};

use super::uapi::{VT_ACTIVATE, VT_WAITACTIVE};
use super::{ioctl_retry, with_path};

/// The foreground VT's number, from `/sys/class/tty/tty0/active` (`tty1`).
pub fn active() -> io::Result<u32> {
    let path = "/sys/class/tty/tty0/active";
    let text = std::fs::read_to_string(path).map_err(|e| with_path(e, path))?;
    let name = text.trim();
    name.strip_prefix("tty")
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| io::Error::other(format!("{path}: unexpected {name:?}")))
}

fn open_tty0() -> io::Result<OwnedFd> {
    rustix::fs::open(
        "/dev/tty0",
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| with_path(e.into(), "open /dev/tty0"))
}

/// `VT_WAITACTIVE`: blocks until `vt` is the foreground VT.
fn wait_active(vt: u32) -> io::Result<()> {
    let tty0 = open_tty0()?;
    // SAFETY: VT_WAITACTIVE takes the VT number as the argument value; the
    // kernel does not dereference it.
    unsafe { ioctl_retry(tty0.as_fd(), VT_WAITACTIVE, vt as usize as *mut libc::c_void) }
        .map_err(|e| with_path(e, &format!("VT_WAITACTIVE {vt}")))?;
    Ok(())
}

/// Switches the foreground to VT `vt` and waits, at most `timeout`, until
/// the switch is done. Switching away from a VT in `VT_PROCESS` mode (a
/// seat manager's session) completes only once that VT's owner acknowledged
/// the release (`VT_RELDISP`); if it never does, this fails after `timeout`
/// (the `VT_WAITACTIVE` thread is left blocked: it cannot be interrupted).
pub fn switch_to(vt: u32, timeout: Duration) -> io::Result<()> {
    let tty0 = open_tty0()?;
    // SAFETY: VT_ACTIVATE takes the VT number as the argument value.
    unsafe { ioctl_retry(tty0.as_fd(), VT_ACTIVATE, vt as usize as *mut libc::c_void) }
        .map_err(|e| with_path(e, &format!("VT_ACTIVATE {vt}")))?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("vt-waitactive-{vt}"))
        .spawn(move || {
            let _ = tx.send(wait_active(vt));
        })?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result?,
        Err(_) => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "VT {vt} did not become active within {timeout:?} (still on {:?}); did the \
                     owner of the VT being left acknowledge the release?",
                    active()
                ),
            ))
        }
    }
    let now = active()?;
    if now != vt {
        return Err(io::Error::other(format!(
            "VT_WAITACTIVE {vt} returned but the active VT is {now}"
        )));
    }
    Ok(())
}
