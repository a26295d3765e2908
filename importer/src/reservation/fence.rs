//! Fences of work in flight on a buffer.
//!
//! DOC: fences are polled, never waited on under a lock
//!
//! A [`Fence`] only answers "signaled yet?" without blocking; that is all the
//! reservation and the graveyard ever ask (locking rule B3,
//! docs/locking-rules.md). The blocking waits that exist (`SyncFile::wait`,
//! `FrameFence::wait`) call `lockdep::might_block` first, so calling them
//! with a reservation held is caught in debug and test builds (rule B2).
//!
//! Fences of the layers above implement [`Fence`] where they are defined
//! (the Vulkan frame fence in `vulkan::ring`); sync_files, from the layer
//! below, implement it here.

use std::sync::Arc;

use crate::sync::SyncFile;

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

/// A sync_file: an exported implicit fence, or a client's explicit one. A
/// broken fd cannot signal later either, so errors count as signaled and the
/// graveyard does not hold memory forever (see `SyncFile::is_signaled`).
impl Fence for SyncFile {
    fn is_signaled(&self) -> bool {
        SyncFile::is_signaled(self)
    }
}

/// True when every fence in `fences` has signaled. Never blocks.
pub fn all_signaled(fences: &[FenceRef]) -> bool {
    fences.iter().all(|f| f.is_signaled())
}
