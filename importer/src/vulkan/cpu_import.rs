//! CPU fallback import: a client buffer the GPU cannot import is read through
//! its CPU mapping and uploaded into a compositor-owned image.
//!
//! DOC: when it is used
//!
//! The renderer takes this path when the GPU import is impossible or fails for
//! a device reason (no dma-buf import, a modifier or layout the device cannot
//! bind, a buffer from another device) and, on demand, for every buffer
//! (`--cpu-fallback`, `COMPOSITOR_CPU_FALLBACK=1`). Invalid descriptions never
//! get here: they are client errors.
//!
//! DOC: locking (locking-rules.md B1, B2, B6)
//!
//! Each source owns a [`Reservation`] over its CPU mapping. The mapping is
//! created under the reservation ([`map_planes`] takes the guard); every copy
//! goes through [`with_cpu_access`]: lock → pin → unlock → implicit fences →
//! `DMA_BUF_IOCTL_SYNC` START → row copy into the staging buffer → END →
//! lock → unpin. No reservation or device lock is held while client memory is
//! read, and only fds that cannot shrink are mapped (see `dmabuf::classify_fd`),
//! so the read cannot fault.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use super::texture::{Region, Texture};
use super::{VkContext, VkError};
use crate::cpu::{map_planes, with_cpu_access, CpuError, CpuMapping, PlaneSource, PollReadable};
use crate::dmabuf::DmabufDesc;
use crate::format::FormatInfo;
use crate::reservation::Reservation;

/// The CPU side of a fallback import: the client's buffer, mapped.
pub struct CpuSource {
    res: Reservation<(), CpuMapping>,
    pub width: u32,
    pub height: u32,
    pub format: FormatInfo,
}

impl std::fmt::Debug for CpuSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuSource").field("size", &(self.width, self.height)).field("format", &self.format.fourcc).finish()
    }
}

fn cpu_err(e: CpuError) -> VkError {
    VkError::Unsupported(format!("CPU fallback: {e}"))
}

impl CpuSource {
    /// Validates `desc` and maps its planes (under the new reservation).
    ///
    /// Locks: takes this buffer's reservation for the mapping only.
    pub fn new(desc: &DmabufDesc) -> Result<CpuSource, VkError> {
        let format = desc.validate()?;
        // The CPU reads rows at offset + y * stride: only the LINEAR layout
        // means that. A tiled (or implicit, driver-private) layout read that
        // way would be garbage, so it is refused rather than shown wrong.
        if !desc.is_linear() {
            return Err(VkError::Unsupported(format!(
                "CPU fallback reads LINEAR buffers only, not modifier {:?}",
                desc.modifier
            )));
        }
        let res = Reservation::new();
        let planes: Vec<PlaneSource<'_>> = desc
            .planes
            .iter()
            .map(|p| PlaneSource {
                fd: p.fd.as_fd(),
                offset: u64::from(p.offset),
                stride: u64::from(p.stride),
                row_bytes: u64::from(desc.width) * u64::from(format.bytes_per_pixel),
                rows: u64::from(desc.height),
            })
            .collect();
        map_planes(&mut res.lock(), &planes).map_err(cpu_err)?;
        Ok(CpuSource { res, width: desc.width, height: desc.height, format })
    }

    /// Copies `region` (all if `None`) of plane 0 into `tex`'s staging upload.
    ///
    /// Locks: none may be held (the access bracket takes this buffer's
    /// reservation twice, briefly; the copy runs unlocked). The implicit write
    /// fences must already be signaled (the commit was held until then), so
    /// the readiness poll does not wait.
    pub fn copy_into(&self, tex: &Texture, region: Option<Region>) -> Result<(), VkError> {
        let full = Region { x: 0, y: 0, width: self.width, height: self.height };
        let region = region.unwrap_or(full);
        let ready = PollReadable { timeout: Duration::ZERO };
        with_cpu_access(&self.res, &ready, |view| {
            let (bytes, stride) = view.plane_bytes(0).ok_or(CpuError::NoPlane(0))?;
            tex.queue_upload(bytes, stride, region).map_err(|e| CpuError::Upload(e.to_string()))
        })
        .map_err(cpu_err)?
        .map_err(cpu_err)
    }
}

/// Creates the texture of a CPU fallback import and queues its first upload.
pub fn import(
    ctx: &Arc<VkContext>,
    layout: ash::vk::DescriptorSetLayout,
    desc: &DmabufDesc,
) -> Result<(Arc<Texture>, CpuSource), VkError> {
    let source = CpuSource::new(desc)?;
    let tex = Texture::new_owned(ctx, layout, source.format, source.width, source.height)?;
    source.copy_into(&tex, None)?;
    Ok((tex, source))
}
