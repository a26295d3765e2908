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
//! A source shares its buffer's reservation
//! ([`super::client_buffer::BufferReservation`]) with the upload target, which
//! is that buffer's GPU import. The mapping is created under the reservation
//! ([`CpuSource::map`] takes the guard); every copy goes through
//! [`with_cpu_access`]: lock → pin → unlock → implicit fences →
//! `DMA_BUF_IOCTL_SYNC` START → row copy into a staging buffer → END →
//! lock → unpin. No reservation or device lock is held while client memory is
//! read, and only fds that cannot shrink are mapped (see `dmabuf::classify_fd`),
//! so the read cannot fault.
//!
//! DOC: where copies run
//!
//! [`CpuSource::stage`] needs no lock and touches no Vulkan queue (it only
//! allocates a host-visible staging buffer), so it may run on a worker thread;
//! the result ([`StagedUpload`]) is handed back to the event loop and queued on
//! the texture ([`Texture::queue_staged`]). The compositor does that for
//! buffers of at least its copy threshold (`compositor::render::copy_worker`).

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use super::client_buffer::{BufferGuard, BufferReservation};
use super::memory::HostBuffer;
use super::texture::{Region, StagedUpload, Texture};
use super::yuv::Nv12Params;
use super::{VkContext, VkError};
use crate::cpu::{copy_plane_rows, map_planes, with_cpu_access, CpuError, PlaneSource, PollReadable};
use crate::dmabuf::DmabufDesc;
use crate::format::FormatInfo;

/// The CPU side of a fallback import: the client's buffer, mapped.
pub struct CpuSource {
    resv: Arc<BufferReservation>,
    ctx: Arc<VkContext>,
    pub width: u32,
    pub height: u32,
    /// What the texture holds: the client's format, or ABGR8888 for NV12.
    pub format: FormatInfo,
    /// NV12: the two planes are staged and converted on the GPU.
    pub nv12: bool,
}

impl std::fmt::Debug for CpuSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuSource")
            .field("buffer", &self.resv.id())
            .field("size", &(self.width, self.height))
            .field("format", &self.format.fourcc)
            .finish()
    }
}

fn cpu_err(e: CpuError) -> VkError {
    VkError::Unsupported(format!("CPU fallback: {e}"))
}

impl CpuSource {
    /// Validates `desc` and maps its planes as the buffer's CPU mapping.
    ///
    /// Locks: this buffer's reservation (the guard; `resv` is the reservation
    /// it locks). Mapping work, rule B1; does not block.
    pub fn map(
        guard: &mut BufferGuard<'_>,
        resv: &Arc<BufferReservation>,
        ctx: &Arc<VkContext>,
        desc: &DmabufDesc,
    ) -> Result<CpuSource, VkError> {
        assert_eq!(guard.id(), resv.id(), "CpuSource::map: guard of another buffer");
        let nv12 = desc.fourcc == drm_fourcc::DrmFourcc::Nv12;
        let format = if nv12 { desc.validate_nv12()? } else { desc.validate()? };
        // The CPU reads rows at offset + y * stride: only the LINEAR layout
        // means that. A tiled (or implicit, driver-private) layout read that
        // way would be garbage, so it is refused rather than shown wrong.
        if !desc.is_linear() {
            return Err(VkError::Unsupported(format!(
                "CPU fallback reads LINEAR buffers only, not modifier {:?}",
                desc.modifier
            )));
        }
        let planes: Vec<PlaneSource<'_>> = desc
            .planes
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (row_bytes, rows) = match (nv12, i) {
                    (false, _) => (
                        u64::from(desc.width) * u64::from(format.bytes_per_pixel),
                        u64::from(desc.height),
                    ),
                    (true, 0) => (u64::from(desc.width), u64::from(desc.height)),
                    (true, _) => (
                        2 * u64::from(desc.width.div_ceil(2)),
                        u64::from(desc.height.div_ceil(2)),
                    ),
                };
                PlaneSource {
                    fd: p.fd.as_fd(),
                    offset: u64::from(p.offset),
                    stride: u64::from(p.stride),
                    row_bytes,
                    rows,
                }
            })
            .collect();
        map_planes(guard, &planes).map_err(cpu_err)?;
        Ok(CpuSource {
            resv: resv.clone(),
            ctx: ctx.clone(),
            width: desc.width,
            height: desc.height,
            format,
            nv12,
        })
    }

    /// The buffer's reservation.
    pub fn reservation(&self) -> &Arc<BufferReservation> {
        &self.resv
    }

    /// Bytes one full copy moves (for the worker threshold).
    pub fn copy_bytes(&self) -> u64 {
        if self.nv12 {
            let (y, uv) = self.nv12_plane_bytes();
            return (y + uv) as u64;
        }
        u64::from(self.width) * u64::from(self.height) * u64::from(self.format.bytes_per_pixel)
    }

    /// NV12: bytes of the tightly packed Y and CbCr planes.
    fn nv12_plane_bytes(&self) -> (usize, usize) {
        let (w, h) = (self.width as usize, self.height as usize);
        (
            w * h,
            2 * self.width.div_ceil(2) as usize * self.height.div_ceil(2) as usize,
        )
    }

    /// NV12: both planes, tightly packed, into a storage buffer the
    /// conversion shader reads (always the whole buffer). Runs inside the
    /// access bracket, unlocked.
    fn stage_nv12(&self, view: &crate::cpu::CpuView<'_>) -> Result<StagedUpload, CpuError> {
        let (y_bytes, uv_bytes) = self.nv12_plane_bytes();
        let usage = ash::vk::BufferUsageFlags::STORAGE_BUFFER;
        let upload = |e: VkError| CpuError::Upload(e.to_string());
        let mut buf = HostBuffer::new(&self.ctx, (y_bytes + uv_bytes).next_multiple_of(4), usage).map_err(upload)?;
        let (w, cw) = (self.width as usize, 2 * self.width.div_ceil(2) as usize);
        let dst = buf.bytes_mut();
        copy_plane_rows(view, 0, w, self.height as usize, &mut dst[..y_bytes], w)?;
        copy_plane_rows(
            view,
            1,
            cw,
            self.height.div_ceil(2) as usize,
            &mut dst[y_bytes..y_bytes + uv_bytes],
            cw,
        )?;
        let params = Nv12Params {
            width: self.width,
            height: self.height,
            y_offset: 0,
            y_stride: self.width,
            uv_offset: y_bytes as u32,
            uv_stride: cw as u32,
        };
        Ok(StagedUpload::nv12(buf, params))
    }

    /// Copies `region` (all if `None`) of plane 0 into a fresh staging buffer.
    ///
    /// Locks: none may be held (the access bracket takes this buffer's
    /// reservation twice, briefly; the copy runs unlocked). Safe on any
    /// thread. The implicit write fences must already be signaled (the commit
    /// was held until then), so the readiness poll does not wait.
    pub fn stage(&self, region: Option<Region>) -> Result<StagedUpload, VkError> {
        self.stage_waiting(region, Duration::ZERO)
    }

    /// [`CpuSource::stage`], first waiting up to `wait` for the implicit
    /// write fences (a poll with a timeout: blocking). For worker threads,
    /// which may block; never on the event loop with a non-zero `wait`.
    ///
    /// Locks: none may be held (`lockdep::might_block`).
    pub fn stage_waiting(&self, region: Option<Region>, wait: Duration) -> Result<StagedUpload, VkError> {
        let full = Region {
            x: 0,
            y: 0,
            width: self.width,
            height: self.height,
        };
        let region = region.unwrap_or(full);
        let ready = PollReadable { timeout: wait };
        let size = (self.width, self.height);
        with_cpu_access(&*self.resv, &ready, |view| {
            if self.nv12 {
                return self.stage_nv12(view);
            }
            let (bytes, stride) = view.plane_bytes(0).ok_or(CpuError::NoPlane(0))?;
            StagedUpload::copy(&self.ctx, self.format, size, bytes, stride, region)
                .map_err(|e| CpuError::Upload(e.to_string()))
        })
        .map_err(cpu_err)?
        .map_err(cpu_err)
    }

    /// [`CpuSource::stage`] and queue the result on `tex` (on this thread).
    ///
    /// Locks: none may be held (see [`CpuSource::stage`]).
    pub fn copy_into(&self, tex: &Texture, region: Option<Region>) -> Result<(), VkError> {
        tex.queue_staged(self.stage(region)?);
        Ok(())
    }
}
