//! CPU access to client dma-bufs (screenshots, readback, software fallback).
//!
//! DOC: mapping (docs/locking-rules.md, rules A2, B1, B6)
//!
//! * Each distinct fd is mapped once, whole, from offset 0 (mmap offsets must
//!   be page aligned); planes are addressed at their offset *inside* that
//!   mapping, so a plane offset need not be page aligned. Planes sharing one
//!   fd, or dups of one file (same `st_dev`/`st_ino`), share one mapping.
//! * Only memory that cannot shrink under us is mapped: a real dma-buf
//!   (`fstatfs` magic `DMA_BUF_MAGIC`; dma-bufs never change size) or a memfd
//!   sealed with `F_SEAL_SHRINK`. Anything else (an unsealed memfd, a tmpfs or
//!   disk file) is refused with [`CpuError::Unsealed`]: a client could truncate
//!   it and turn our read into SIGBUS. The size (`lseek SEEK_END`) is checked
//!   against every plane at map time, so with the seal no read can fault.
//! * Creating the mapping is mapping work (vmap analog): it runs under the
//!   buffer's reservation, through [`map_planes`] which takes the guard.
//!
//! DOC: access (rules A1, B2)
//!
//! [`with_cpu_access`] is the only way to reach the bytes, in the kernel's own
//! shape: lock → pin → unlock → wait for the implicit write fences
//! ([`ImplicitFences`], unlocked) → `DMA_BUF_IOCTL_SYNC` START → read → SYNC
//! END (same direction) → lock → unpin → unlock. The SYNC ioctl and the read
//! run with no reservation held; both call `lockdep::might_block`, so doing
//! it with any reservation held fails in debug and test builds. The ioctl is
//! restarted on EINTR/EAGAIN. The fence wait and the SYNC bracket concern the
//! buffer's dma-buf fds only: a sealed memfd has no fences and no cache
//! maintenance (its SYNC ioctl would fail with ENOTTY), and the mapping
//! knows each file's kind from when it was made. The bytes are handed out
//! only as a [`CpuView`] that exists inside the bracket.

mod access;
mod map;
mod wait;

use std::io;

use thiserror::Error;

use crate::reservation::ResvError;

pub use access::{copy_plane_rect, copy_plane_rows, map_planes, with_cpu_access, CpuView};
pub use map::{CpuMapping, FdKind, PlaneSource};
pub use wait::{AlreadyWaited, ImplicitFences, PollReadable};

/// Why CPU access was refused or failed.
#[derive(Debug, Error)]
pub enum CpuError {
    #[error("plane {plane}: fd is neither a dma-buf nor a memfd sealed with F_SEAL_SHRINK; refusing to map memory the client can truncate (SIGBUS)")]
    Unsealed { plane: usize },
    #[error("plane {plane}: cannot inspect the fd: {source}")]
    Inspect { plane: usize, source: io::Error },
    #[error("plane {plane}: offset {offset} + stride {stride} × {rows} rows needs {end} bytes, the fd has {size}")]
    OutOfBounds {
        plane: usize,
        offset: u64,
        stride: u64,
        rows: u64,
        end: u64,
        size: u64,
    },
    #[error("plane {plane}: row of {row_bytes} bytes is wider than the stride {stride}")]
    RowTooWide { plane: usize, row_bytes: u64, stride: u64 },
    #[error("mmap of {len} bytes failed: {source}")]
    Mmap { len: u64, source: io::Error },
    #[error("DMA_BUF_IOCTL_SYNC {what} failed: {source}")]
    Sync { what: &'static str, source: io::Error },
    #[error("waiting for the implicit write fence failed: {0}")]
    Wait(io::Error),
    #[error("timed out waiting for the implicit write fence")]
    FenceTimeout,
    #[error("no plane {0} in this mapping")]
    NoPlane(usize),
    #[error("upload of the mapped bytes failed: {0}")]
    Upload(String),
    #[error("copy of {rows} rows × {width} bytes does not fit: {what}")]
    CopyBounds {
        rows: usize,
        width: usize,
        what: &'static str,
    },
    #[error(transparent)]
    Reservation(#[from] ResvError),
}
