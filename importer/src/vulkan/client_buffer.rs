//! An imported client buffer: its reservation, the texture the renderer
//! samples and, on the CPU fallback, the mapped source it is copied from.
//!
//! DOC: what the reservation holds (docs/locking-rules.md, part B)
//!
//! A client buffer's reservation is a `super::BufferReservation`:
//!
//! * `G`, the GPU import, is the [`Texture`] the renderer samples: the
//!   client's image (zero copy), the compositor image the buffer path copies
//!   into, or the CPU fallback's upload target.
//! * `M`, the CPU mapping, is the client buffer's `CpuMapping`: the CPU
//!   fallback's source, or, for a LINEAR single-plane buffer on a CPU
//!   device (zero-copy or buffer path), what a frame written on the host
//!   reads (`super::host_frame`; made at its first such frame).
//! * The fences are those of every frame that sampled the buffer, added by
//!   `RenderCore::submit_frame` under the lock.
//!
//! DOC: how the rules apply here
//!
//! * Rule B1: [`import_gpu`] and [`import_cpu`] take the guard, so the import
//!   (and the mapping) is created with the reservation held.
//! * Rule B2: CPU copies run with no reservation held (`CpuSource::stage`,
//!   `HostFrame::write`), on the event loop or on a worker thread.
//! * Rule B3: `crate::import::Importer::destroy` invalidates the buffer under
//!   its lock and buries it; the graveyard frees it after its fences. Frames
//!   in flight also keep an `Arc<Texture>`, so nothing is freed while the GPU
//!   may read it.

use std::sync::Arc;

use super::cpu_source::CpuSource;
use super::texture::Texture;
use super::upload::StagedUpload;
use super::ycbcr::YcbcrSamplers;
use super::yuv::Nv12Pipeline;
use super::{BufferGuard, BufferReservation, Region, VkContext, VkError, DEVICE};
use crate::dmabuf::DmabufDesc;
use crate::format::FormatInfo;

/// An imported client buffer. Cloning shares it.
#[derive(Debug, Clone)]
pub struct ClientBuffer {
    resv: Arc<BufferReservation>,
    texture: Arc<Texture>,
    cpu: Option<Arc<CpuSource>>,
}

impl ClientBuffer {
    pub(crate) fn new(resv: Arc<BufferReservation>, texture: Arc<Texture>, cpu: Option<CpuSource>) -> Self {
        ClientBuffer {
            resv,
            texture,
            cpu: cpu.map(Arc::new),
        }
    }

    /// The buffer id (its reservation's; the global acquire order).
    pub fn id(&self) -> u64 {
        self.resv.id()
    }

    pub fn reservation(&self) -> &Arc<BufferReservation> {
        &self.resv
    }

    /// The texture the renderer samples.
    pub fn texture(&self) -> &Arc<Texture> {
        &self.texture
    }

    /// The CPU fallback's source, if the buffer took that path.
    pub fn cpu_source(&self) -> Option<&Arc<CpuSource>> {
        self.cpu.as_ref()
    }

    /// The client committed the buffer again: bring the texture up to date
    /// with `damage` (all if `None`). The zero-copy image *is* the client's
    /// memory (nothing to do); the buffer path queues a GPU copy; the CPU
    /// fallback copies now, unless a worker already staged this copy
    /// ([`ClientBuffer::accept_staged`]). YUV is always converted whole, and
    /// so is the first copy of a CPU-fallback buffer.
    ///
    /// Locks: none may be a reservation (a CPU copy takes this one briefly).
    pub fn refresh(&self, damage: Option<&[Region]>) -> Result<(), VkError> {
        let Some(cpu) = &self.cpu else {
            self.texture.queue_client_copy(damage);
            return Ok(());
        };
        if cpu.take_staged_ahead() {
            return Ok(());
        }
        match damage {
            Some(regions) if !cpu.format.yuv && cpu.copied() => {
                regions.iter().try_for_each(|r| cpu.copy_into(&self.texture, Some(*r)))
            }
            _ => cpu.copy_into(&self.texture, None),
        }
    }

    /// The mapped source, when this buffer's copies belong on a worker thread
    /// (CPU fallback, at least the worker threshold).
    pub fn worker_copy(&self) -> Option<&Arc<CpuSource>> {
        self.cpu.as_ref().filter(|c| c.on_worker())
    }

    /// A new commit of the buffer will get its own copy: a copy staged for
    /// an earlier one and not used yet must not stand in for it.
    pub fn forget_staged(&self) {
        if let Some(cpu) = &self.cpu {
            cpu.take_staged_ahead();
        }
    }

    /// A worker staged a full copy of the buffer: queue it on the texture;
    /// the next [`ClientBuffer::refresh`] does not copy again.
    ///
    /// Locks: none needed (the texture's pending list is a leaf lock).
    pub fn accept_staged(&self, staged: StagedUpload) {
        self.texture.queue_staged(staged);
        if let Some(cpu) = &self.cpu {
            cpu.set_staged_ahead();
        }
    }
}

/// GPU import of `desc`, installed as the buffer's GPU import for
/// [`DEVICE`]: RGB as a zero-copy image or through the buffer path; YUV
/// (with the device's Y'CbCr conversions `ycbcr`) as a zero-copy
/// multi-planar image only, with explicit plane layouts where
/// `explicit_layout`.
///
/// Locks: this buffer's reservation (the guard); rule B1. Never blocks.
pub(crate) fn import_gpu(
    guard: &mut BufferGuard<'_>,
    ctx: &Arc<VkContext>,
    layout: ash::vk::DescriptorSetLayout,
    desc: &DmabufDesc,
    (format, ycbcr, explicit_layout): (FormatInfo, Option<Arc<YcbcrSamplers>>, bool),
    try_image: bool,
) -> Result<Arc<Texture>, VkError> {
    let tex = match ycbcr {
        Some(samplers) if try_image => Texture::import_ycbcr(ctx, samplers, desc, (format, explicit_layout))?
            .ok_or_else(|| {
                VkError::Unsupported(format!(
                    "the device cannot sample this {:?} buffer's plane layout as it is",
                    desc.fourcc
                ))
            })?,
        _ => Texture::import_dmabuf(ctx, layout, desc, format, try_image)?,
    };
    Ok(guard.set_gpu_import(DEVICE, tex)?)
}

/// CPU fallback import of `desc`: maps the client's planes (the buffer's CPU
/// mapping) and creates the compositor-owned upload target (its GPU import).
/// Copies nothing: copies run after unlocking (rule B2).
///
/// Locks: this buffer's reservation (the guard); `resv` must be the
/// reservation the guard locks. Never blocks.
pub(crate) fn import_cpu(
    guard: &mut BufferGuard<'_>,
    resv: &Arc<BufferReservation>,
    ctx: &Arc<VkContext>,
    layout: ash::vk::DescriptorSetLayout,
    nv12: &Arc<Nv12Pipeline>,
    desc: &DmabufDesc,
    worker_threshold: u64,
) -> Result<(Arc<Texture>, CpuSource), VkError> {
    let source = CpuSource::map(guard, resv, ctx, desc, worker_threshold)?;
    let (w, h) = (source.width, source.height);
    let tex = if source.format.yuv {
        Texture::new_nv12_target(ctx, layout, nv12, source.format, w, h)?
    } else {
        Texture::new_owned(ctx, layout, source.format, w, h)?
    };
    Ok((guard.set_gpu_import(DEVICE, tex)?, source))
}
