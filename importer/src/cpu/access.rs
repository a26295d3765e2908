//! The CPU access bracket and the row copy.
//!
//! DOC: shape (docs/locking-rules.md, rule B2): lock → pin → unlock → wait implicit fences → SYNC
//! START → read → SYNC END → lock → unpin → unlock. END and unpin also run if
//! the reader panics. The fence wait and the SYNC ioctls concern the
//! dma-buf fds only: a sealed memfd has no fences and no cache maintenance.
//! The bytes are reachable only through a [`CpuView`], which exists only
//! inside the bracket.

use std::os::fd::BorrowedFd;
use std::sync::Arc;

use super::map::MappedPlane;
use super::wait::ImplicitFences;
use super::{CpuError, CpuMapping, PlaneSource};
use crate::lockdep;
use crate::reservation::{Pin, Reservation, ReservationGuard};
use crate::sync::{dma_buf_sync, SyncDir};

/// Creates the buffer's CPU mapping if it has none (vmap analog).
///
/// Locks: this buffer's reservation (the guard). Does not block.
pub fn map_planes<G>(
    guard: &mut ReservationGuard<'_, G, CpuMapping>,
    planes: &[PlaneSource<'_>],
) -> Result<Arc<CpuMapping>, CpuError> {
    guard.ensure_cpu_mapping(|| CpuMapping::new(planes))
}

/// The mapped bytes between SYNC START and END. Read only.
pub struct CpuView<'a> {
    map: &'a CpuMapping,
}

impl CpuView<'_> {
    pub fn mapping(&self) -> &CpuMapping {
        self.map
    }

    /// Plane `i`'s bytes (from its offset to the end of its last row) and its
    /// stride, for row copies straight out of the mapping.
    pub fn plane_bytes(&self, i: usize) -> Option<(&[u8], usize)> {
        let p = self.map.plane(i)?;
        let (base, len) = self.map.raw(p.map);
        let span = p.stride.checked_mul(p.rows.checked_sub(1)?)?.checked_add(p.row_bytes)?;
        if p.offset.checked_add(span)? > len {
            return None;
        }
        // SAFETY: within the mapping (checked above); the mapping is pinned
        // for the view's lifetime and cannot shrink (sealed memfd or dma-buf).
        Some((
            unsafe { std::slice::from_raw_parts(base.add(p.offset), span) },
            p.stride,
        ))
    }
}

/// Unpins on drop (normal exit or unwind): lock → unpin → unlock.
struct Unpin<'r, G> {
    res: &'r Reservation<G, CpuMapping>,
    pin: Option<Pin<CpuMapping>>,
}

impl<G> Drop for Unpin<'_, G> {
    fn drop(&mut self) {
        if let Some(pin) = self.pin.take() {
            let _ = self.res.lock().unpin(pin);
        }
    }
}

/// Issues SYNC END on every fd that got a START, on drop too.
struct SyncBracket<'m> {
    fds: Vec<BorrowedFd<'m>>,
    dir: SyncDir,
}

impl SyncBracket<'_> {
    fn end(&mut self) -> Result<(), CpuError> {
        let mut first = Ok(());
        for fd in self.fds.drain(..) {
            if let Err(source) = dma_buf_sync(fd, self.dir, true) {
                let e = CpuError::Sync { what: "END", source };
                tracing::error!("{e}");
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }
}

impl Drop for SyncBracket<'_> {
    fn drop(&mut self) {
        let _ = self.end();
    }
}

/// Reads a buffer's CPU mapping inside the full bracket and returns `f`'s
/// result. The mapping must exist ([`map_planes`]).
///
/// Locks: none may be a reservation (this one is taken twice, briefly, for
/// pin and unpin; the wait, the SYNC ioctls and `f` run unlocked). Checked by
/// `lockdep::might_block` in debug and test builds.
pub fn with_cpu_access<G, R>(
    res: &Reservation<G, CpuMapping>,
    fences: &dyn ImplicitFences,
    f: impl FnOnce(&CpuView<'_>) -> R,
) -> Result<R, CpuError> {
    lockdep::might_block("CPU access to a client buffer");
    let pin = res.lock().pin()?; // guard is dropped at the end of this statement
    let unpin = Unpin { res, pin: Some(pin) };
    let map = unpin.pin.as_ref().expect("pinned").mapping();
    fences.wait_for_writers(map)?;
    let dir = SyncDir::Read;
    let mut bracket = SyncBracket { fds: Vec::new(), dir };
    for fd in map.dmabuf_fds() {
        dma_buf_sync(fd, dir, false).map_err(|source| CpuError::Sync { what: "START", source })?;
        bracket.fds.push(fd);
    }
    let out = f(&CpuView { map });
    bracket.end()?;
    drop(bracket);
    // `unpin` drops here, after the bracket: lock → unpin → unlock.
    Ok(out)
}

/// Copies `height` rows of `width_bytes` from `plane` into `dst` at
/// `dst_stride`: one `memcpy` per row, or one for the whole plane when both
/// strides equal the row width. Bounds are checked once, up front.
///
/// Locks: none (it runs inside [`with_cpu_access`]'s bracket, unlocked).
pub fn copy_plane_rows(
    view: &CpuView<'_>,
    plane: usize,
    width_bytes: usize,
    height: usize,
    dst: &mut [u8],
    dst_stride: usize,
) -> Result<(), CpuError> {
    copy_plane_rect(view, plane, (0, 0), (width_bytes, height), dst, dst_stride)
}

/// [`copy_plane_rows`] of a rectangle of the plane: `width_bytes` from byte
/// `x_bytes` of each of the `height` rows from row `y`.
///
/// Locks: none (it runs inside [`with_cpu_access`]'s bracket, unlocked).
pub fn copy_plane_rect(
    view: &CpuView<'_>,
    plane: usize,
    (x_bytes, y): (usize, usize),
    (width_bytes, height): (usize, usize),
    dst: &mut [u8],
    dst_stride: usize,
) -> Result<(), CpuError> {
    let p: MappedPlane = view.map.plane(plane).ok_or(CpuError::NoPlane(plane))?;
    if width_bytes == 0 || height == 0 {
        return Ok(());
    }
    let err = |what| CpuError::CopyBounds {
        rows: height,
        width: width_bytes,
        what,
    };
    let right = x_bytes.checked_add(width_bytes).ok_or(err("source plane"))?;
    let bottom = y.checked_add(height).ok_or(err("source plane"))?;
    if bottom > p.rows || right > p.row_bytes.max(p.stride) || (height > 1 && right > p.stride) {
        return Err(err("source plane"));
    }
    if height > 1 && width_bytes > dst_stride {
        return Err(err("destination stride"));
    }
    let span = |stride: usize| stride.checked_mul(height - 1).and_then(|v| v.checked_add(width_bytes));
    let dst_need = span(dst_stride).ok_or(err("destination size"))?;
    if dst_need > dst.len() {
        return Err(err("destination size"));
    }
    let (base, len) = view.map.raw(p.map);
    let src_start = p
        .stride
        .checked_mul(y)
        .and_then(|v| v.checked_add(p.offset))
        .and_then(|v| v.checked_add(x_bytes))
        .ok_or(err("source mapping"))?;
    let src_end = span(p.stride)
        .and_then(|v| v.checked_add(src_start))
        .ok_or(err("source mapping"))?;
    if src_end > len {
        return Err(err("source mapping"));
    }
    // SAFETY: [src_start, src_end) lies in the live, pinned, size-checked
    // mapping and [0, dst_need) in `dst`; the two cannot overlap (mmap vs.
    // slice).
    unsafe {
        let src = base.add(src_start);
        let d = dst.as_mut_ptr();
        if p.stride == width_bytes && dst_stride == width_bytes {
            std::ptr::copy_nonoverlapping(src, d, width_bytes * height);
        } else {
            for row in 0..height {
                std::ptr::copy_nonoverlapping(src.add(row * p.stride), d.add(row * dst_stride), width_bytes);
            }
        }
    }
    Ok(())
}
