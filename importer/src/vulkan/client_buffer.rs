//! Client buffers under reservations: every imported client dma-buf (image
//! path, buffer path, CPU fallback) lives under one [`BufferReservation`].
//!
//! DOC: what the reservation holds (locking-rules.md part B)
//!
//! * `G`, the GPU import, is the [`Texture`] the renderer samples: the
//!   imported VkImage (image path), the imported VkBuffer plus its copy target
//!   (buffer path), or the compositor-owned upload target (CPU fallback).
//! * `M`, the CPU mapping, is the client buffer's [`CpuMapping`] (CPU fallback
//!   only).
//! * The fences are those of every frame that sampled the buffer
//!   (`FrameFence`, added by `RenderCore::submit_frame` under the lock).
//!
//! DOC: the rules as they apply here
//!
//! * **B1.** [`import_gpu`] and [`import_cpu`] take the guard: the import (and
//!   the mapping) is created with the reservation held and installed with
//!   `set_gpu_import`/`ensure_cpu_mapping`. A frame locks every buffer it
//!   samples through one `AcquireCtx` (global id order) for the implicit-sync
//!   export → submit → import sequence and records its fence there
//!   (`RenderCore::submit_frame`); nothing in that window blocks.
//! * **B2.** CPU copies run with no reservation held (`with_cpu_access`: lock
//!   → pin → unlock → SYNC → copy → SYNC → lock → unpin), on the event loop or
//!   on a worker thread. Creating the reservation and dropping its last
//!   reference happen unlocked.
//! * **B3.** When the client's dma-buf is gone the compositor calls
//!   `Reservation::destroy` (lock → invalidate → unlock → bury in a
//!   [`BufferGraveyard`]); the graveyard is polled from the frame tick and
//!   frees each dead import or mapping only after the fences recorded on it
//!   signaled. Frames in flight also keep an `Arc<Texture>`, so the two
//!   mechanisms agree: nothing is freed while the GPU may read it.
//! * **B4.** Cache trimming, if any, goes through `evict_idle` (try-lock only).

use std::sync::Arc;

use super::cpu_import::CpuSource;
use super::texture::Texture;
use super::yuv::Nv12Pipeline;
use super::{VkContext, VkError};
use crate::cpu::CpuMapping;
use crate::dmabuf::DmabufDesc;
use crate::reservation::{DeviceId, Graveyard, Reservation, ReservationGuard};

/// The reservation of one imported client buffer.
pub type BufferReservation = Reservation<Texture, CpuMapping>;
/// Its guard: proof the buffer's reservation is held.
pub type BufferGuard<'a> = ReservationGuard<'a, Texture, CpuMapping>;
/// Reservations of destroyed buffers, waiting for their fences.
pub type BufferGraveyard = Graveyard<Texture, CpuMapping>;

/// The renderer's one device (the compositor has a single GPU so far).
pub const DEVICE: DeviceId = DeviceId(0);

/// An imported client buffer: its reservation, the texture the renderer
/// samples (the reservation's GPU import, shared) and, for the CPU fallback,
/// the mapped source it is copied from.
#[derive(Debug, Clone)]
pub struct ClientBuffer {
    pub resv: Arc<BufferReservation>,
    pub texture: Arc<Texture>,
    pub cpu: Option<Arc<CpuSource>>,
}

/// GPU import (image or buffer path) of `desc`, installed as the buffer's
/// GPU import for [`DEVICE`].
///
/// Locks: this buffer's reservation (the guard); rule B1. Never blocks.
pub fn import_gpu(
    guard: &mut BufferGuard<'_>,
    ctx: &Arc<VkContext>,
    layout: ash::vk::DescriptorSetLayout,
    desc: &DmabufDesc,
    force_buffer_path: bool,
) -> Result<Arc<Texture>, VkError> {
    let tex = Texture::import_dmabuf(ctx, layout, desc, force_buffer_path)?;
    Ok(guard.set_gpu_import(DEVICE, tex)?)
}

/// CPU fallback import of `desc`: maps the client's planes (the buffer's CPU
/// mapping) and creates the compositor-owned upload target (its GPU import).
/// Copies nothing: the first copy runs after unlocking
/// ([`CpuSource::copy_into`] or a worker, rule B2).
///
/// Locks: this buffer's reservation (the guard); `resv` must be the
/// reservation the guard locks. Never blocks.
pub fn import_cpu(
    guard: &mut BufferGuard<'_>,
    resv: &Arc<BufferReservation>,
    ctx: &Arc<VkContext>,
    layout: ash::vk::DescriptorSetLayout,
    nv12: &Arc<Nv12Pipeline>,
    desc: &DmabufDesc,
) -> Result<(Arc<Texture>, CpuSource), VkError> {
    let source = CpuSource::map(guard, resv, ctx, desc)?;
    let tex = if source.nv12 {
        Texture::new_nv12_target(ctx, layout, nv12, source.width, source.height)?
    } else {
        Texture::new_owned_unshared(ctx, layout, source.format, source.width, source.height)?
    };
    Ok((guard.set_gpu_import(DEVICE, tex)?, source))
}
