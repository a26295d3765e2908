//! Sync primitives: sync_files, a dma-buf's implicit fences, DRM syncobj
//! timelines, and their bridges to Vulkan semaphores. No Wayland code; the
//! compositor's `sync` module drives these from its event loop.
//!
//! DOC: what each primitive is for
//!
//! | primitive | module | used for |
//! |---|---|---|
//! | owned sync_file: poll readiness, `SYNC_IOC_MERGE`, `SYNC_IOC_FILE_INFO` | [`sync_file`] | every fence handed around |
//! | `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` / `IMPORT_SYNC_FILE`, poll fallback on `ENOTTY`; `DMA_BUF_IOCTL_SYNC` | [`implicit`] | implicit acquire (READ export) and release (READ import), bridging (WRITE import); the CPU access bracket |
//! | syncobj timelines: point ↔ sync_file, signal, query, eventfd (± `WAIT_AVAILABLE`), caps probe | [`syncobj`] | `wp_linux_drm_syncobj_v1` |
//!
//! Nothing here blocks except the functions named `wait` (tests and
//! teardown); the compositor polls fds from calloop.

pub mod implicit;
pub mod sync_file;
pub mod syncobj;

pub use implicit::{dma_buf_sync, Access, FenceIoError, SyncDir, SyncOutcome};
pub use sync_file::{FenceStatus, SyncFile, SyncFileInfo};
pub use syncobj::{RenderNode, Syncobj, SyncobjCaps};
