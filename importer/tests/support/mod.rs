//! What the importer's integration tests share.

use std::os::fd::OwnedFd;

/// A memfd holding `bytes`: on a host without udmabuf, the stand-in for a
/// client's dma-buf. `sealed`: against shrinking and growing, which the
/// importer requires of a memfd before it maps one.
pub fn memfd_holding(name: &str, bytes: &[u8], sealed: bool) -> OwnedFd {
    use rustix::fs::{fcntl_add_seals, memfd_create, MemfdFlags, SealFlags};
    let fd = memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
    rustix::io::write(&fd, bytes).unwrap();
    if sealed {
        fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW).unwrap();
    }
    fd
}
