//! A client dma-buf as linux-dmabuf describes it, and its validation.
//!
//! DOC: validation rules
//!
//! A description is checked before any driver sees it, with overflow-safe
//! arithmetic on `u64`:
//! * the format is in the importer's table (`crate::format`) and the plane
//!   count matches it;
//! * width and height are non-zero and every plane's stride is at least its
//!   row of samples (`plane width × bytes per sample`, subsampling rounded up);
//! * `offset + stride × rows` of every plane lies within its fd's size, which
//!   `lseek(fd, 0, SEEK_END)` reports for dma-bufs and memfds alike.
//!
//! * every plane's fd is a real dma-buf or a memfd sealed against shrinking
//!   ([`classify_fd`]). Drivers that import by mmap (lavapipe) and the CPU path
//!   read the memory directly; a file the client can truncate would turn those
//!   reads into SIGBUS in the compositor. Such fds are refused up front.
//!
//! The description owns its fds; importing dups them, so the description (and
//! the client's protocol object) can go away independently of the import.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use drm_fourcc::{DrmFourcc, DrmModifier};
use thiserror::Error;

use crate::format::{format_info, FormatInfo};

/// One plane of a dma-buf.
#[derive(Debug)]
pub struct DmabufPlane {
    pub fd: OwnedFd,
    pub offset: u32,
    pub stride: u32,
}

/// A dma-buf as a client described it.
#[derive(Debug)]
pub struct DmabufDesc {
    pub width: u32,
    pub height: u32,
    pub fourcc: DrmFourcc,
    pub modifier: DrmModifier,
    /// zwp_linux_buffer_params_v1 flags (y_invert, interlaced, bottom_first).
    pub flags: u32,
    pub planes: Vec<DmabufPlane>,
}

/// Why a dma-buf description was refused.
#[derive(Debug, Error)]
pub enum DmabufError {
    #[error("format {0:?} is not supported by the importer")]
    UnsupportedFormat(DrmFourcc),
    #[error("format {format:?} with modifier {modifier:#x} is not advertised")]
    NotAdvertised { format: DrmFourcc, modifier: u64 },
    #[error("format {format:?} needs {expected} plane(s), got {got}")]
    PlaneCount {
        format: DrmFourcc,
        expected: usize,
        got: usize,
    },
    #[error("invalid dimensions {width}x{height}")]
    InvalidDimensions { width: u32, height: u32 },
    #[error("plane {plane}: stride {stride} is less than width × bpp = {min}")]
    StrideTooSmall { plane: usize, stride: u32, min: u64 },
    #[error("plane {plane}: offset {offset} + stride {stride} × {rows} rows = {end} exceeds the fd size {size}")]
    OutOfBounds {
        plane: usize,
        offset: u32,
        stride: u32,
        rows: u32,
        end: u64,
        size: u64,
    },
    #[error("plane {plane}: size arithmetic overflows")]
    Overflow { plane: usize },
    #[error("plane {plane}: fd is neither a dma-buf nor a memfd sealed with F_SEAL_SHRINK; the client could truncate it under us (SIGBUS)")]
    Shrinkable { plane: usize },
    #[error("plane {plane}: cannot query the fd size: {source}")]
    SizeQuery { plane: usize, source: io::Error },
}

/// `DMA_BUF_MAGIC` from `include/uapi/linux/magic.h`: the filesystem of dma-buf files.
const DMA_BUF_MAGIC: u64 = 0x444d_4142;

/// What backs a buffer fd that is safe to read through a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    /// A real dma-buf: SYNC brackets do cache maintenance; it cannot shrink.
    DmaBuf,
    /// A memfd sealed against shrinking (test clients, software buffers).
    SealedMemfd,
}

/// Classifies `fd`: `Some` when its size cannot shrink under a mapping,
/// `None` for anything a client could truncate (an unsealed memfd, a tmpfs or
/// disk file).
///
/// Locks: none; inspects the fd only.
pub fn classify_fd(fd: BorrowedFd<'_>) -> io::Result<Option<FdKind>> {
    let fs = rustix::fs::fstatfs(fd)?;
    if fs.f_type as u64 == DMA_BUF_MAGIC {
        return Ok(Some(FdKind::DmaBuf));
    }
    Ok(match rustix::fs::fcntl_get_seals(fd) {
        Ok(seals) if seals.contains(rustix::fs::SealFlags::SHRINK) => Some(FdKind::SealedMemfd),
        _ => None,
    })
}

/// Size of a dma-buf (or memfd) in bytes, by seeking to its end.
///
/// Locks: none; touches only the fd's file position, never its memory.
pub fn fd_size(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let end = rustix::fs::seek(fd, rustix::fs::SeekFrom::End(0))?;
    // Leave the position where a reader expects it; dma-bufs ignore it anyway.
    let _ = rustix::fs::seek(fd, rustix::fs::SeekFrom::Start(0));
    Ok(end)
}

impl DmabufDesc {
    /// The format's description; fails for formats the importer cannot sample.
    pub fn format(&self) -> Result<FormatInfo, DmabufError> {
        format_info(self.fourcc).ok_or(DmabufError::UnsupportedFormat(self.fourcc))
    }

    /// Checks the description against the rules in the module doc, for the
    /// format's own plane count (LINEAR). Every plane is checked against its
    /// own geometry from the format table (NV12's CbCr plane at half the
    /// width and height, rounded up).
    pub fn validate(&self) -> Result<FormatInfo, DmabufError> {
        let planes = self.format()?.planes.len();
        self.validate_layout(planes)
    }

    /// [`DmabufDesc::validate`] for a modifier with `memory_planes` memory
    /// planes. Planes past the format's own (a modifier's metadata planes,
    /// such as AMD DCC or Intel CCS) have a layout only the driver knows:
    /// their fd must be safe to map and their offset inside it.
    pub fn validate_layout(&self, memory_planes: usize) -> Result<FormatInfo, DmabufError> {
        let info = self.format()?;
        if self.planes.len() != memory_planes {
            return Err(DmabufError::PlaneCount {
                format: self.fourcc,
                expected: memory_planes,
                got: self.planes.len(),
            });
        }
        if self.width == 0 || self.height == 0 {
            return Err(DmabufError::InvalidDimensions {
                width: self.width,
                height: self.height,
            });
        }
        for (i, plane) in self.planes.iter().enumerate().skip(info.planes.len()) {
            let size = safe_plane_size(i, plane)?;
            if u64::from(plane.offset) >= size {
                return Err(DmabufError::OutOfBounds {
                    plane: i,
                    offset: plane.offset,
                    stride: plane.stride,
                    rows: 0,
                    end: u64::from(plane.offset),
                    size,
                });
            }
        }
        for (i, (plane, layout)) in self.planes.iter().zip(info.planes).enumerate() {
            let size = safe_plane_size(i, plane)?;
            let (width, height) = layout.extent(self.width, self.height);
            check_plane(
                i,
                plane.offset,
                plane.stride,
                width,
                height,
                layout.bytes_per_sample,
                size,
            )?;
        }
        Ok(info)
    }

    /// Whether the modifier says "linear" (or the legacy implicit modifier,
    /// which the importer may only treat as linear where it has no modifier
    /// support at all).
    pub fn is_linear(&self) -> bool {
        self.modifier == DrmModifier::Linear
    }
}

/// The size of plane `i`'s fd, once it is known not to be able to shrink
/// under a mapping (rule in the module doc).
fn safe_plane_size(i: usize, plane: &DmabufPlane) -> Result<u64, DmabufError> {
    match classify_fd(plane.fd.as_fd()) {
        Ok(Some(_)) => {}
        Ok(None) => return Err(DmabufError::Shrinkable { plane: i }),
        Err(source) => return Err(DmabufError::SizeQuery { plane: i, source }),
    }
    fd_size(plane.fd.as_fd()).map_err(|source| DmabufError::SizeQuery { plane: i, source })
}

/// Checks one plane's geometry against its fd's size. Pure and overflow-safe.
pub fn check_plane(
    plane: usize,
    offset: u32,
    stride: u32,
    width: u32,
    height: u32,
    bpp: u32,
    size: u64,
) -> Result<(), DmabufError> {
    let min = u64::from(width) * u64::from(bpp);
    if u64::from(stride) < min {
        return Err(DmabufError::StrideTooSmall { plane, stride, min });
    }
    let end = u64::from(stride)
        .checked_mul(u64::from(height))
        .and_then(|rows| rows.checked_add(u64::from(offset)))
        .ok_or(DmabufError::Overflow { plane })?;
    if end > size {
        return Err(DmabufError::OutOfBounds {
            plane,
            offset,
            stride,
            rows: height,
            end,
            size,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plane_within_bounds_passes() {
        assert!(check_plane(0, 0, 256, 64, 64, 4, 256 * 64).is_ok());
        assert!(check_plane(0, 64, 256, 64, 63, 4, 256 * 64).is_ok());
    }

    #[test]
    fn plane_past_end_fails() {
        let e = check_plane(0, 1, 256, 64, 64, 4, 256 * 64).unwrap_err();
        assert!(matches!(e, DmabufError::OutOfBounds { end, .. } if end == 256 * 64 + 1));
    }

    #[test]
    fn stride_below_width_fails() {
        assert!(matches!(
            check_plane(0, 0, 255, 64, 1, 4, 1 << 20),
            Err(DmabufError::StrideTooSmall { .. })
        ));
    }

    #[test]
    fn huge_values_do_not_wrap() {
        // u32::MAX * u32::MAX + u32::MAX fits in u64, so this must be OutOfBounds, not a wrap to a small number.
        let e = check_plane(0, u32::MAX, u32::MAX, 1, u32::MAX, 4, 1 << 40).unwrap_err();
        assert!(matches!(e, DmabufError::OutOfBounds { .. }));
    }

    #[test]
    fn unsealed_memfd_could_shrink_and_is_refused() {
        use rustix::fs::{memfd_create, MemfdFlags, SealFlags};
        let open = memfd_create("unsealed", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
        assert_eq!(classify_fd(open.as_fd()).unwrap(), None);
        rustix::fs::fcntl_add_seals(&open, SealFlags::SHRINK).unwrap();
        assert_eq!(classify_fd(open.as_fd()).unwrap(), Some(FdKind::SealedMemfd));
        let desc = DmabufDesc {
            width: 1,
            height: 1,
            fourcc: DrmFourcc::Xrgb8888,
            modifier: DrmModifier::Linear,
            flags: 0,
            planes: vec![DmabufPlane {
                fd: memfd_create("unsealed", MemfdFlags::CLOEXEC).unwrap(),
                offset: 0,
                stride: 4,
            }],
        };
        assert!(matches!(desc.validate(), Err(DmabufError::Shrinkable { plane: 0 })));
    }

    #[test]
    fn fd_size_reads_memfd_length() {
        let fd = rustix::fs::memfd_create("size-test", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 12345).unwrap();
        assert_eq!(fd_size(fd.as_fd()).unwrap(), 12345);
    }
}
