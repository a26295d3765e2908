//! Mapping the fds of a buffer: whole fd from offset 0, one mapping per file.
//!
//! DOC: see the module doc of [`crate::cpu`] for the rules; in short: dma-buf
//! or `F_SEAL_SHRINK`-sealed memfd only, size checked against every plane,
//! `PROT_READ`, `MAP_SHARED`, offset 0. Construction does no blocking work (no
//! fence wait, no SYNC ioctl); it runs under the reservation via
//! [`super::map_planes`]. Dropping unmaps; the reservation makes sure that
//! happens only once unpinned and after the fences (rule B3,
//! docs/locking-rules.md).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use super::CpuError;
use crate::dmabuf::{fd_size, DmabufDesc};

pub use crate::dmabuf::FdKind;

/// One plane as the client described it.
#[derive(Debug, Clone, Copy)]
pub struct PlaneSource<'a> {
    pub fd: BorrowedFd<'a>,
    /// Byte offset of the plane in its fd; need not be page aligned.
    pub offset: u64,
    pub stride: u64,
    /// Bytes of pixel data per row (width × bytes per pixel).
    pub row_bytes: u64,
    pub rows: u64,
}

struct FdMap {
    fd: OwnedFd,
    ptr: NonNull<u8>,
    len: usize,
    kind: FdKind,
    key: (u64, u64),
}

/// Where a plane lies inside its fd's mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MappedPlane {
    pub map: usize,
    pub offset: usize,
    pub stride: usize,
    pub row_bytes: usize,
    pub rows: usize,
}

/// The read-only CPU mapping of a buffer's fds.
pub struct CpuMapping {
    maps: Vec<FdMap>,
    planes: Vec<MappedPlane>,
}

// SAFETY: the mapping is read-only shared memory owned by this value; the raw
// pointers are only read through `CpuView` between the SYNC brackets.
unsafe impl Send for CpuMapping {}
unsafe impl Sync for CpuMapping {}

impl std::fmt::Debug for CpuMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<_> = self.maps.iter().map(|m| (m.kind, m.len)).collect();
        f.debug_struct("CpuMapping")
            .field("maps", &kinds)
            .field("planes", &self.planes)
            .finish()
    }
}

fn classify(fd: BorrowedFd<'_>, plane: usize) -> Result<FdKind, CpuError> {
    crate::dmabuf::classify_fd(fd)
        .map_err(|source| CpuError::Inspect { plane, source })?
        .ok_or(CpuError::Unsealed { plane })
}

fn check_plane(p: &PlaneSource<'_>, plane: usize, size: u64) -> Result<(), CpuError> {
    if p.row_bytes > p.stride && p.rows > 1 {
        return Err(CpuError::RowTooWide {
            plane,
            row_bytes: p.row_bytes,
            stride: p.stride,
        });
    }
    let end = p
        .stride
        .checked_mul(p.rows.saturating_sub(1))
        .and_then(|v| v.checked_add(p.row_bytes))
        .and_then(|v| v.checked_add(p.offset))
        .unwrap_or(u64::MAX);
    if p.rows == 0 || end > size || usize::try_from(end).is_err() {
        return Err(CpuError::OutOfBounds {
            plane,
            offset: p.offset,
            stride: p.stride,
            rows: p.rows,
            end,
            size,
        });
    }
    Ok(())
}

impl CpuMapping {
    /// Maps `planes`. Locks: called under the buffer's reservation (use
    /// [`super::map_planes`]); does not block.
    pub fn new(planes: &[PlaneSource<'_>]) -> Result<CpuMapping, CpuError> {
        let mut out = CpuMapping {
            maps: Vec::new(),
            planes: Vec::new(),
        };
        for (i, p) in planes.iter().enumerate() {
            let st = rustix::fs::fstat(p.fd).map_err(|e| CpuError::Inspect {
                plane: i,
                source: e.into(),
            })?;
            let key = (st.st_dev as u64, st.st_ino as u64);
            let map = match out.maps.iter().position(|m| m.key == key) {
                Some(m) => m,
                None => {
                    out.maps.push(Self::map_fd(p.fd, i, key)?);
                    out.maps.len() - 1
                }
            };
            check_plane(p, i, out.maps[map].len as u64)?;
            out.planes.push(MappedPlane {
                map,
                offset: p.offset as usize,
                stride: p.stride as usize,
                row_bytes: p.row_bytes as usize,
                rows: p.rows as usize,
            });
        }
        Ok(out)
    }

    /// Maps a validated linux-dmabuf description (single-plane formats:
    /// `rows = height`, `row_bytes = width × bpp`).
    pub fn from_desc(desc: &DmabufDesc) -> Result<CpuMapping, CpuError> {
        let bpp = desc.format().map(|f| f.bytes_per_pixel).unwrap_or(4) as u64;
        let planes: Vec<PlaneSource<'_>> = desc
            .planes
            .iter()
            .map(|p| PlaneSource {
                fd: p.fd.as_fd(),
                offset: p.offset as u64,
                stride: p.stride as u64,
                row_bytes: desc.width as u64 * bpp,
                rows: desc.height as u64,
            })
            .collect();
        CpuMapping::new(&planes)
    }

    fn map_fd(fd: BorrowedFd<'_>, plane: usize, key: (u64, u64)) -> Result<FdMap, CpuError> {
        let kind = classify(fd, plane)?;
        // Size after the seal check: with F_SEAL_SHRINK it can only grow.
        let size = fd_size(fd).map_err(|e| CpuError::Inspect { plane, source: e })?;
        let len = usize::try_from(size).map_err(|_| CpuError::Mmap {
            len: size,
            source: std::io::ErrorKind::InvalidInput.into(),
        })?;
        if len == 0 {
            return Err(CpuError::OutOfBounds {
                plane,
                offset: 0,
                stride: 0,
                rows: 0,
                end: 1,
                size: 0,
            });
        }
        let dup = fd
            .try_clone_to_owned()
            .map_err(|e| CpuError::Inspect { plane, source: e })?;
        // SAFETY: fresh mapping of a file we checked cannot shrink below `len`.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ,
                rustix::mm::MapFlags::SHARED,
                &dup,
                0,
            )
        }
        .map_err(|e| CpuError::Mmap {
            len: size,
            source: e.into(),
        })?;
        let ptr = NonNull::new(ptr.cast::<u8>()).expect("mmap returned null");
        tracing::debug!(?kind, len, "mapped client fd for CPU access");
        Ok(FdMap {
            fd: dup,
            ptr,
            len,
            kind,
            key,
        })
    }

    pub fn plane_count(&self) -> usize {
        self.planes.len()
    }

    /// Distinct files mapped (planes sharing a file share a mapping).
    pub fn fd_count(&self) -> usize {
        self.maps.len()
    }

    pub fn fd_kind(&self, map: usize) -> Option<FdKind> {
        self.maps.get(map).map(|m| m.kind)
    }

    /// The mapped files that are dma-bufs: the only ones with implicit
    /// fences to wait for and a SYNC bracket. A sealed memfd has neither
    /// (its poll is always readable, its SYNC ioctl fails with ENOTTY), so
    /// it costs no system call per access.
    pub fn dmabuf_fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.maps
            .iter()
            .filter(|m| m.kind == FdKind::DmaBuf)
            .map(|m| m.fd.as_fd())
    }

    pub(crate) fn plane(&self, i: usize) -> Option<MappedPlane> {
        self.planes.get(i).copied()
    }

    /// Base pointer and length of mapping `map`.
    pub(crate) fn raw(&self, map: usize) -> (*const u8, usize) {
        let m = &self.maps[map];
        (m.ptr.as_ptr(), m.len)
    }
}

impl Drop for CpuMapping {
    fn drop(&mut self) {
        for m in &self.maps {
            // SAFETY: mapped in `map_fd` with this length; no view outlives us.
            if let Err(e) = unsafe { rustix::mm::munmap(m.ptr.as_ptr().cast(), m.len) } {
                tracing::error!("munmap failed: {e}");
            }
        }
    }
}
