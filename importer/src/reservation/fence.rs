//! Fences of work in flight on a buffer.
//!
//! DOC: fences are polled, never waited on under a lock
//!
//! A [`Fence`] only answers "signaled yet?" without blocking; that is all the
//! reservation and the graveyard ever ask (rule B3). The blocking waits that
//! exist ([`SyncFileFence::wait`], `FrameFence::wait`) call
//! [`lockdep::might_block`] first, so calling them with a reservation held is
//! caught in debug and test builds (rule B2).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use crate::lockdep;

/// Something that signals once the work it stands for is done.
pub trait Fence: Send + Sync {
    /// Non-blocking status check.
    fn is_signaled(&self) -> bool;
}

/// A shared fence: one frame's fence is recorded on every buffer it samples.
pub type FenceRef = Arc<dyn Fence>;

/// A fence that is already signaled.
#[derive(Debug, Default, Clone, Copy)]
pub struct Signaled;

impl Fence for Signaled {
    fn is_signaled(&self) -> bool {
        true
    }
}

impl Fence for crate::vulkan::frame::FrameFence {
    fn is_signaled(&self) -> bool {
        crate::vulkan::frame::FrameFence::is_signaled(self)
    }
}

/// A sync_file (an exported implicit fence, or a client's explicit one).
#[derive(Debug)]
pub struct SyncFileFence(pub OwnedFd);

impl SyncFileFence {
    fn poll(&self, timeout_ms: i32) -> std::io::Result<bool> {
        use rustix::event::{poll, PollFd, PollFlags};
        loop {
            let mut fds = [PollFd::new(&self.0, PollFlags::IN)];
            match poll(&mut fds, timeout_ms) {
                Ok(n) => return Ok(n > 0),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Blocks up to `timeout` for the fence. Locks: none may be a reservation
    /// (checked by [`lockdep::might_block`]).
    pub fn wait(&self, timeout: Duration) -> std::io::Result<bool> {
        lockdep::might_block("sync_file wait");
        self.poll(i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX))
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Fence for SyncFileFence {
    fn is_signaled(&self) -> bool {
        // A broken fd cannot signal later either; treat errors as signaled so
        // the graveyard does not hold memory forever (the fd is the client's).
        self.poll(0).unwrap_or(true)
    }
}

/// True when every fence in `fences` has signaled. Never blocks.
pub fn all_signaled(fences: &[FenceRef]) -> bool {
    fences.iter().all(|f| f.is_signaled())
}
