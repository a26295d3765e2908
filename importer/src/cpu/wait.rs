//! Waiting for a buffer's implicit write fences before the CPU reads it.
//!
//! DOC: `DMA_BUF_IOCTL_SYNC` gives cache coherency, not GPU completion
//! (locking rule A1, docs/locking-rules.md), so [`super::with_cpu_access`]
//! first waits through an [`ImplicitFences`]. A wait may sleep: it calls
//! `lockdep::might_block` and runs only after the reservation is unlocked
//! (rule B2).

use std::time::Duration;

use super::{CpuError, CpuMapping};
use crate::lockdep;

/// How to wait for the implicit write fences before reading. Called with no
/// lock held, before SYNC START.
pub trait ImplicitFences {
    fn wait_for_writers(&self, mapping: &CpuMapping) -> Result<(), CpuError>;
}

/// Polls every mapped dma-buf fd for POLLIN (last writer's fences
/// signaled, rule A3) up to `timeout` each. A memfd has no fences and is
/// not polled.
#[derive(Debug, Clone, Copy)]
pub struct PollReadable {
    pub timeout: Duration,
}

impl ImplicitFences for PollReadable {
    fn wait_for_writers(&self, mapping: &CpuMapping) -> Result<(), CpuError> {
        use rustix::event::{poll, PollFd, PollFlags};
        lockdep::might_block("poll(POLLIN) for implicit write fences");
        let ms = i32::try_from(self.timeout.as_millis()).unwrap_or(i32::MAX);
        for fd in mapping.dmabuf_fds() {
            loop {
                let mut fds = [PollFd::new(&fd, PollFlags::IN)];
                match poll(&mut fds, ms) {
                    Ok(0) => return Err(CpuError::FenceTimeout),
                    Ok(_) => break,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(CpuError::Wait(e.into())),
                }
            }
        }
        Ok(())
    }
}

/// The caller already waited (explicit sync: a client's acquire point, or a
/// sync_file from `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` waited on unlocked).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlreadyWaited;

impl ImplicitFences for AlreadyWaited {
    fn wait_for_writers(&self, _: &CpuMapping) -> Result<(), CpuError> {
        Ok(())
    }
}

impl<F: Fn(&CpuMapping) -> Result<(), CpuError>> ImplicitFences for F {
    fn wait_for_writers(&self, mapping: &CpuMapping) -> Result<(), CpuError> {
        self(mapping)
    }
}
