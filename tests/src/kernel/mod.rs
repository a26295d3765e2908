//! Real-kernel dma-buf helpers for the kernel VM tier (`scripts/vm/test.sh`):
//! udmabuf, dma-heaps, the CPU-access bracket and poll readiness on any
//! dma-buf, vgem fences, reading back what a KMS CRTC scans out (and who
//! holds DRM master), and switching VTs. The uapi structs and ioctl numbers
//! of those devices are defined here ([`uapi`]) rather than taken from C
//! headers; the dma-buf ioctls themselves (`DMA_BUF_IOCTL_SYNC`,
//! `EXPORT_SYNC_FILE`, `IMPORT_SYNC_FILE`) are the importer's
//! (`importer::sync::implicit`).
//!
//! None of these devices exist on the CI host (no `/dev/udmabuf`, no
//! `/dev/dri`); the tests that need them are `#[ignore]`d there with a reason
//! and run inside the VM with `--include-ignored`, where a missing device is a
//! failure.

pub mod dmabuf;
pub mod heap;
pub mod kms;
pub mod seatd;
pub mod uapi;
pub mod udmabuf;
pub mod vgem;
pub mod vt;

use std::io;

/// `DMABUF_TEST_TIER`, set to `vm` by `scripts/vm/run.sh` inside the guest.
pub fn tier() -> String {
    std::env::var("DMABUF_TEST_TIER").unwrap_or_else(|_| "host".to_owned())
}

/// Whether this process runs inside the kernel VM tier's guest.
pub fn in_vm() -> bool {
    tier() == "vm"
}

/// The running kernel's release (`uname -r`), for messages.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The project's one EINTR/EAGAIN-restarting ioctl (importer::ioctl).
pub(crate) use importer::ioctl::ioctl_retry;

/// Adds the path to an error, e.g. `open /dev/udmabuf: No such file or directory`.
pub(crate) fn with_path(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}
