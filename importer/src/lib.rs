//! Buffer-import library of the compositor: dma-buf descriptions and their
//! validation, the Vulkan device context, zero-copy import of client dma-bufs,
//! shm uploads and the small Vulkan renderer core the compositor drives.
//!
//! DOC: what lives here and what does not
//!
//! * No Wayland protocol code: the compositor crate turns protocol objects into
//!   [`dmabuf::DmabufDesc`] and calls in here.
//! * Every import says which path it took ([`stats::ImportPath`]): zero-copy
//!   image, zero-copy memory copied on the GPU (buffer path), or shm upload.
//!   The counters in [`stats::ImportCounters`] are what tests read.
//! * Nothing here blocks on a fence except the functions that say so in their
//!   name or doc (`wait*`); the event loop only polls fence status.

pub mod cpu;
pub mod dmabuf;
pub mod format;
pub mod ioctl;
pub mod lockdep;
pub mod reservation;
pub mod stats;
pub mod sync;
pub mod vulkan;

pub use dmabuf::{DmabufDesc, DmabufError, DmabufPlane};
pub use format::FormatInfo;
pub use stats::{ImportCounters, ImportPath, ImportStats};
