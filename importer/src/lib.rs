//! Buffer-import library of the compositor: dma-buf descriptions and their
//! validation, sync primitives, reservations, CPU mapping, the Vulkan import
//! paths, and the small renderer core the compositor drives.
//!
//! DOC: layers
//!
//! Each layer imports only the layers below it (checked by
//! `tests/tests/module_layers.rs`):
//!
//! 1. [`lockdep`] (the lock validator) and [`ioctl`] (the uapi encoding);
//! 2. [`format`] and [`dmabuf`]: what a client buffer is, and its validation;
//! 3. [`sync`]: sync_files, a dma-buf's implicit fences, syncobj timelines;
//! 4. [`reservation`]: one lock per imported buffer, fences, the graveyard;
//! 5. [`cpu`]: CPU mappings and the access bracket;
//! 6. [`vulkan`]: device, textures, dma-buf images, uploads, frames;
//! 7. [`import`]: the one entry point that decides a client buffer's path;
//! 8. [`renderer`]: the renderer core the compositor drives.
//!
//! DOC: what lives here and what does not
//!
//! * No Wayland protocol code: the compositor crate turns protocol objects into
//!   [`dmabuf::DmabufDesc`] and calls in here.
//! * Every import says which path it took ([`import::ImportPath`]); the
//!   counters are what `--stats` and the tests read.
//! * Nothing here blocks on a fence except the functions that say so in their
//!   name or doc (`wait*`); the event loop only polls fence status.
//! * The locking rules the code follows are docs/locking-rules.md; code cites
//!   them by ID (A1–A6, B1–B6).

pub mod cpu;
pub mod dmabuf;
pub mod format;
pub mod import;
pub mod ioctl;
pub mod lockdep;
pub mod renderer;
pub mod reservation;
pub mod sync;
pub mod vulkan;

/// The build script's SPIR-V rewrite, compiled here too so its unit tests run.
#[cfg(test)]
#[path = "../build/spirv.rs"]
mod build_spirv;

pub use dmabuf::{DmabufDesc, DmabufError, DmabufPlane};
pub use format::FormatInfo;
pub use import::{ImportPath, ImportPolicy, ImportStats, Importer, ReservationStats};
