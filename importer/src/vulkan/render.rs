//! The renderer core: what the compositor's smithay `Renderer` drives.
//!
//! DOC: threading and blocking
//!
//! A [`RenderCore`] is used from the event loop thread. Nothing here waits on
//! the GPU except [`super::target::Readback::wait_bytes`] and teardown
//! ([`RenderCore::wait_idle`]); both call `lockdep::might_block`. Finished
//! frames are retired by polling their fences ([`RenderCore::retire`]).
//!
//! DOC: locks taken here, in hierarchy order (see [`crate::lockdep`])
//!
//! reservation(s) of the sampled client buffers, through one `AcquireCtx`
//! ([`RenderCore::submit_frame`]) → the command ring ([`lockdep::DEVICE_RING`])
//! → the VkQueue ([`lockdep::DEVICE_QUEUE`], `VkContext::submit`). Imports
//! take only the new buffer's reservation.

use std::sync::{Arc, Mutex, MutexGuard};

use ash::vk;
use tracing::{info, warn};

use super::client_buffer::{self, BufferReservation, ClientBuffer};
use super::frame::{CommandRing, FrameFence, Recorder};
use super::memory::HostBuffer;
use super::pipeline::{Filter, Pipelines};
use super::target::{Readback, Target};
use super::texture::{buffer_image_copy, image_barrier, pipeline_barrier, Region, Texture};
use super::{DeviceSelection, VkContext, VkError};
use crate::dmabuf::DmabufDesc;
use crate::format::{format_info, FormatInfo};
use crate::lockdep::{self, HeldLock};
use crate::reservation::{AcquireCtx, FenceRef};
use crate::stats::{ImportCounters, ImportPath, ImportStats};
use drm_fourcc::DrmFourcc;

/// Options of the renderer core.
#[derive(Debug, Clone, Default)]
pub struct CoreOptions {
    pub device: DeviceSelection,
    /// Take the buffer path for every dma-buf (testing the fallback).
    pub force_buffer_path: bool,
}

/// The command ring's lock, known to the validator.
struct RingGuard<'a> {
    ring: MutexGuard<'a, CommandRing>,
    _held: HeldLock,
}

impl std::ops::Deref for RingGuard<'_> {
    type Target = CommandRing;
    fn deref(&self) -> &CommandRing {
        &self.ring
    }
}

impl std::ops::DerefMut for RingGuard<'_> {
    fn deref_mut(&mut self) -> &mut CommandRing {
        &mut self.ring
    }
}

pub struct RenderCore {
    pub ctx: Arc<VkContext>,
    // Declared before `ring` so pipelines outlive no frame; drop order: ring first.
    ring: Mutex<CommandRing>,
    pipelines: Pipelines,
    blank: Arc<Texture>,
    counters: ImportCounters,
    options: CoreOptions,
    /// SYNC: SYNC_FD semaphore support, probed once.
    sync: crate::sync::SemaphoreSyncFd,
    /// NV12 → RGBA conversion (compute), for NV12 CPU-fallback imports.
    nv12: Arc<super::yuv::Nv12Pipeline>,
}

impl std::fmt::Debug for RenderCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderCore")
            .field("device", &self.ctx.caps.name)
            .finish_non_exhaustive()
    }
}

impl RenderCore {
    pub fn new(options: CoreOptions) -> Result<RenderCore, VkError> {
        let ctx = Arc::new(VkContext::new(&options.device)?);
        let pipelines = Pipelines::new(&ctx)?;
        let ring = CommandRing::new(&ctx)?;
        let blank_format = format_info(DrmFourcc::Argb8888).expect("ARGB8888 is supported");
        let blank = Texture::new_owned(&ctx, pipelines.texture_layout, blank_format, 1, 1)?;
        let sync = crate::sync::SemaphoreSyncFd::probe(&ctx);
        info!("{}", sync.summary());
        let nv12 = Arc::new(super::yuv::Nv12Pipeline::new(&ctx)?);
        Ok(RenderCore {
            ctx,
            ring: Mutex::new(ring),
            pipelines,
            blank,
            counters: ImportCounters::default(),
            options,
            sync,
            nv12,
        })
    }

    /// Locks the command ring. Locks: may be taken under reservations
    /// (hierarchy: reservation → ring → queue), never the other way round.
    fn ring(&self) -> RingGuard<'_> {
        let held = lockdep::acquire(&lockdep::DEVICE_RING, &self.ring as *const _ as usize, None);
        RingGuard {
            ring: self.ring.lock().unwrap_or_else(|p| p.into_inner()),
            _held: held,
        }
    }

    /// Import counters by path.
    pub fn stats(&self) -> ImportStats {
        self.counters.snapshot()
    }

    /// Imports a client dma-buf (see [`Texture::import_dmabuf`]) under a new
    /// reservation and records the path it took in the counters and the log.
    ///
    /// Locks: none may be a reservation (creates one, "attach", and takes it
    /// for the import only).
    pub fn import_dmabuf(&self, desc: &DmabufDesc) -> Result<ClientBuffer, VkError> {
        let resv = Arc::new(BufferReservation::new());
        let imported = {
            let mut guard = resv.lock();
            client_buffer::import_gpu(
                &mut guard,
                &self.ctx,
                self.pipelines.texture_layout,
                desc,
                self.options.force_buffer_path,
            )
        };
        match imported {
            Ok(tex) => {
                self.counters.record(tex.path);
                info!(
                    width = desc.width,
                    height = desc.height,
                    format = ?desc.fourcc,
                    stride = desc.planes.first().map(|p| p.stride),
                    path = tex.path.as_str(),
                    buffer = resv.id(),
                    "imported dma-buf"
                );
                Ok(ClientBuffer {
                    resv,
                    texture: tex,
                    cpu: None,
                })
            }
            Err(e) => {
                self.counters.record_failure();
                warn!(format = ?desc.fourcc, width = desc.width, height = desc.height, "dma-buf import failed: {e}");
                Err(e)
            }
        }
    }

    /// CPU fallback import of a client buffer (see [`super::cpu_import`]),
    /// with its first full copy queued. Counted and logged like the GPU paths.
    ///
    /// Locks: none may be a reservation. The mapping and the upload target are
    /// created under the new buffer's reservation; the copy runs after
    /// unlocking (rule B2).
    pub fn import_cpu(&self, desc: &DmabufDesc) -> Result<ClientBuffer, VkError> {
        self.import_cpu_deferred(desc).and_then(|buf| {
            let cpu = buf.cpu.as_ref().expect("CPU import has a source");
            cpu.copy_into(&buf.texture, None)?;
            Ok(buf)
        })
    }

    /// [`RenderCore::import_cpu`] without the first copy: the caller copies
    /// (for instance on a worker thread, `CpuSource::stage`) and queues it.
    /// The texture is transparent until then.
    ///
    /// Locks: none may be a reservation.
    pub fn import_cpu_deferred(&self, desc: &DmabufDesc) -> Result<ClientBuffer, VkError> {
        let resv = Arc::new(BufferReservation::new());
        let imported = {
            let mut guard = resv.lock();
            client_buffer::import_cpu(
                &mut guard,
                &resv,
                &self.ctx,
                self.pipelines.texture_layout,
                &self.nv12,
                desc,
            )
        };
        match imported {
            Ok((tex, source)) => {
                self.counters.record(ImportPath::Cpu);
                info!(width = desc.width, height = desc.height, format = ?desc.fourcc, path = ImportPath::Cpu.as_str(), buffer = resv.id(), "imported dma-buf");
                Ok(ClientBuffer {
                    resv,
                    texture: tex,
                    cpu: Some(Arc::new(source)),
                })
            }
            Err(e) => {
                self.counters.record_failure();
                warn!(format = ?desc.fourcc, "CPU fallback import failed: {e}");
                Err(e)
            }
        }
    }

    /// A texture filled from CPU memory (`data` rows of `stride` bytes).
    pub fn upload(
        &self,
        data: &[u8],
        format: FormatInfo,
        width: u32,
        height: u32,
        stride: usize,
    ) -> Result<Arc<Texture>, VkError> {
        let tex = Texture::new_owned(&self.ctx, self.pipelines.texture_layout, format, width, height)?;
        tex.queue_upload(
            data,
            stride,
            Region {
                x: 0,
                y: 0,
                width,
                height,
            },
        )?;
        self.counters.record(ImportPath::Shm);
        Ok(tex)
    }

    pub fn create_target(&self, format: FormatInfo, width: u32, height: u32) -> Result<Target, VkError> {
        Target::new(&self.ctx, format, width, height)
    }

    /// Imports a compositor-allocated scan-out dma-buf as a render target
    /// (zero-copy; see [`Target::import_dmabuf`]).
    pub fn import_target(&self, format: FormatInfo, desc: &DmabufDesc) -> Result<Target, VkError> {
        Target::import_dmabuf(&self.ctx, format, desc)
    }

    /// Starts recording a frame into `target`.
    pub fn begin_frame(&self, target: &Target, filter: Filter) -> Result<Recorder, VkError> {
        let mut ring = self.ring();
        ring.retire();
        Recorder::begin(&mut ring, &self.pipelines, target, filter, &self.blank, self.sync)
    }

    /// Client textures freed only when a finished frame dropped their last
    /// reference (asynchronous invalidation, see `CommandRing::retire`).
    pub fn deferred_texture_frees(&self) -> u64 {
        self.ring().deferred_frees()
    }

    /// Submits a recorded frame.
    ///
    /// Locks: none may be a reservation on entry. Every client buffer the
    /// frame sampled ([`Recorder::sample`]) is locked through one
    /// [`AcquireCtx`] (ascending buffer id) for the implicit-sync export →
    /// submit → import sequence, and the frame's fence is added to each
    /// before unlocking (rules B1, B4). Nothing in that window blocks:
    /// `vkQueueSubmit` and the sync_file ioctls return at once.
    pub fn submit_frame(&self, mut recorder: Recorder) -> Result<Arc<FrameFence>, VkError> {
        let sampled = recorder.take_sampled();
        let set: Vec<&BufferReservation> = sampled.iter().map(|r| &**r).collect();
        let mut held = AcquireCtx::new();
        held.lock_all(&set);
        let fence = recorder.finish(&mut self.ring())?;
        let as_fence: FenceRef = fence.clone();
        for guard in held.iter_mut() {
            guard.add_fence(as_fence.clone());
        }
        drop(held);
        Ok(fence)
    }

    /// Blocks until the device is idle: teardown only (exit-time reaping,
    /// screenshots at exit). Locks: none may be a reservation
    /// (`lockdep::might_block`).
    pub fn wait_idle(&self) {
        lockdep::might_block("vkDeviceWaitIdle (teardown)");
        self.ring().retire_after_idle(&self.ctx);
    }

    /// SYNC: what the device does with SYNC_FD semaphores.
    pub fn semaphore_sync_fd(&self) -> crate::sync::SemaphoreSyncFd {
        self.sync
    }

    /// Frees finished frames. Never blocks.
    pub fn retire(&self) {
        self.ring().retire();
    }

    /// Submissions not yet finished.
    pub fn frames_in_flight(&self) -> usize {
        self.ring().in_flight()
    }

    /// Copies `region` of `target` into host memory (asynchronously).
    pub fn read_target(&self, target: &Target, region: Region) -> Result<Readback, VkError> {
        let region = region
            .clamp(target.width, target.height)
            .ok_or_else(|| VkError::Unsupported("empty read-back".into()))?;
        let layout = vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL;
        let access = vk::AccessFlags::COLOR_ATTACHMENT_WRITE;
        self.read_image(target.image, target.format, layout, access, region, None)
    }

    /// Copies `region` of a texture into host memory (asynchronously).
    pub fn read_texture(&self, texture: &Arc<Texture>, region: Region) -> Result<Readback, VkError> {
        let region = region
            .clamp(texture.width, texture.height)
            .ok_or_else(|| VkError::Unsupported("empty read-back".into()))?;
        // record_prepare leaves every texture in SHADER_READ_ONLY_OPTIMAL (acquired,
        // for client memory); record_release hands client memory back after.
        let layout = vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL;
        self.read_image(
            texture.image,
            texture.format,
            layout,
            vk::AccessFlags::SHADER_READ,
            region,
            Some(texture),
        )
    }

    fn read_image(
        &self,
        image: vk::Image,
        format: FormatInfo,
        layout: vk::ImageLayout,
        access: vk::AccessFlags,
        region: Region,
        texture: Option<&Arc<Texture>>,
    ) -> Result<Readback, VkError> {
        let bytes = region.width as usize * region.height as usize * format.bytes_per_pixel as usize;
        let buffer = HostBuffer::new(&self.ctx, bytes, vk::BufferUsageFlags::TRANSFER_DST)?;
        let mut ring = self.ring();
        let cmd = ring.begin()?;
        let dev = &self.ctx.device;
        let mut keep: Vec<Box<dyn Send + Sync>> = Vec::new();
        if let Some(tex) = texture {
            // Pending uploads first, so the read sees them.
            tex.record_prepare(cmd, &mut keep);
        }
        let to_src = image_barrier(image, layout, vk::ImageLayout::TRANSFER_SRC_OPTIMAL)
            .src_access_mask(access)
            .dst_access_mask(vk::AccessFlags::TRANSFER_READ);
        let back = image_barrier(image, vk::ImageLayout::TRANSFER_SRC_OPTIMAL, layout)
            .src_access_mask(vk::AccessFlags::TRANSFER_READ)
            .dst_access_mask(access);
        let copy = buffer_image_copy(0, region.width, region, 0);
        unsafe {
            pipeline_barrier(
                dev,
                cmd,
                vk::PipelineStageFlags::ALL_COMMANDS,
                vk::PipelineStageFlags::TRANSFER,
                &[to_src],
                &[],
            );
            dev.cmd_copy_image_to_buffer(
                cmd,
                image,
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                buffer.buffer,
                &[copy],
            );
            pipeline_barrier(
                dev,
                cmd,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::ALL_COMMANDS,
                &[back],
                &[],
            );
        }
        if let Some(tex) = texture {
            tex.record_release(cmd);
        }
        let textures = texture.into_iter().cloned().collect();
        let fence = ring.submit(vec![cmd], keep, textures)?;
        Ok(Readback {
            buffer,
            fence,
            region,
            format,
        })
    }
}
