//! Sync primitives: sync_files, a dma-buf's implicit fences, DRM syncobj
//! timelines, and their bridges to Vulkan semaphores. No Wayland code; the
//! compositor's `sync` module drives these from its event loop.
//!
//! DOC: what each primitive is for
//!
//! | primitive | module | used for |
//! |---|---|---|
//! | owned sync_file: poll readiness, `SYNC_IOC_MERGE`, `SYNC_IOC_FILE_INFO` | [`sync_file`] | every fence handed around |
//! | `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` / `IMPORT_SYNC_FILE`, poll fallback on `ENOTTY` | [`dmabuf`] | implicit acquire (READ export) and release (READ import), bridging (WRITE import) |
//! | syncobj timelines: point ↔ sync_file, signal, query, eventfd (± `WAIT_AVAILABLE`), caps probe | [`syncobj`] | `wp_linux_drm_syncobj_v1` |
//! | `SYNC_FD` semaphores: temporary import (GPU wait), export (GPU completion) | [`vk`] | waiting on the GPU instead of the loop, early release |
//!
//! Nothing here blocks except the functions named `wait` (tests and
//! teardown); the compositor polls fds from calloop.

pub mod dmabuf;
pub mod sync_file;
pub mod syncobj;
pub mod vk;

pub use dmabuf::{Access, FenceIoError};
pub use sync_file::{FenceStatus, SyncFile, SyncFileInfo};
pub use syncobj::{RenderNode, Syncobj, SyncobjCaps};
pub use vk::SemaphoreSyncFd;
