//! The renderer core: what the compositor's smithay `Renderer` drives. One
//! Vulkan device, its command ring and pipelines, and the [`Importer`] that
//! decides how client buffers reach it.
//!
//! DOC: threading and blocking
//!
//! A [`RenderCore`] is used from the event loop thread. Nothing here waits on
//! the GPU except `Readback::wait_bytes` and teardown
//! ([`RenderCore::wait_idle`]); both call `lockdep::might_block`. Finished
//! frames are retired by polling their fences ([`RenderCore::retire`]).
//!
//! DOC: locks taken here, in hierarchy order (docs/locking-rules.md, B5)
//!
//! reservation(s) of the sampled client buffers, through one `AcquireCtx`
//! ([`RenderCore::submit_frame`]) → the command ring ([`lockdep::DEVICE_RING`])
//! → the VkQueue ([`lockdep::DEVICE_QUEUE`], `VkContext::submit`). Imports
//! take only the new buffer's reservation.

use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, MutexGuard};

use ash::vk;
use tracing::info;

use crate::dmabuf::DmabufDesc;
use crate::format::FormatInfo;
use crate::import::{ImportPolicy, Importer};
use crate::lockdep::{self, HeldLock};
use crate::reservation::{AcquireCtx, FenceRef};
use crate::sync::implicit::{pending_writes, poll_ready, Access};
use crate::vulkan::barrier::{image_barrier, pipeline_barrier, target_layout};
use crate::vulkan::memory::HostBuffer;
use crate::vulkan::pipeline::{Filter, Pipelines};
use crate::vulkan::recorder::{DrawStats, Drawable, Recorder};
use crate::vulkan::ring::{CommandRing, FrameFence};
use crate::vulkan::semaphore::SemaphoreSyncFd;
use crate::vulkan::target::{Readback, Target};
use crate::vulkan::texture::Texture;
use crate::vulkan::upload::buffer_image_copy;
use crate::vulkan::ycbcr::Representation;
use crate::vulkan::{BufferReservation, DeviceSelection, Region, VkContext, VkError};

/// Options of the renderer core.
#[derive(Debug, Clone, Default)]
pub struct CoreOptions {
    pub device: DeviceSelection,
    /// The KMS card's (major, minor) on the DRM backend: the device behind
    /// it renders where it can (`vulkan::device_choice`).
    pub kms_node: Option<(i64, i64)>,
    pub import: ImportPolicy,
    /// Submit every frame, even those the host could write itself on a CPU
    /// device (`vulkan::host_frame`): for comparing the two paths.
    pub submit_every_frame: bool,
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
    importer: Importer,
    /// SYNC_FD semaphore support, probed once.
    sync: SemaphoreSyncFd,
    /// Quads of every submitted frame, by how they were recorded.
    draws: Mutex<DrawStats>,
    /// Set once a submission returned `VK_ERROR_DEVICE_LOST`.
    device_lost: std::sync::atomic::AtomicBool,
    /// Frames the host could write are submitted anyway.
    submit_every_frame: bool,
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
        let ctx = Arc::new(VkContext::new(&options.device, options.kms_node)?);
        let pipelines = Pipelines::new(&ctx)?;
        let ring = CommandRing::new(&ctx)?;
        let blank_format =
            crate::format::format_info(drm_fourcc::DrmFourcc::Argb8888).expect("ARGB8888 is in the table");
        let blank = Arc::new(Texture::new_owned(&ctx, pipelines.texture_layout, blank_format, 1, 1)?);
        let sync = SemaphoreSyncFd::probe(&ctx);
        info!("{}", sync.summary());
        let importer = Importer::new(&ctx, pipelines.texture_layout, options.import)?;
        Ok(RenderCore {
            ctx,
            ring: Mutex::new(ring),
            pipelines,
            blank,
            importer,
            sync,
            draws: Mutex::new(DrawStats::default()),
            device_lost: Default::default(),
            submit_every_frame: options.submit_every_frame,
        })
    }

    /// The import decision and the client buffers' graveyard.
    pub fn importer(&self) -> &Importer {
        &self.importer
    }

    pub fn importer_mut(&mut self) -> &mut Importer {
        &mut self.importer
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

    pub fn create_target(&self, format: FormatInfo, width: u32, height: u32) -> Result<Target, VkError> {
        Target::new(&self.ctx, format, width, height)
    }

    /// Imports a compositor-allocated scan-out dma-buf as a render target
    /// (zero-copy; see [`Target::import_dmabuf`]).
    pub fn import_target(&self, format: FormatInfo, desc: &DmabufDesc) -> Result<Target, VkError> {
        Target::import_dmabuf(&self.ctx, format, desc)
    }

    /// Starts recording a frame into `target`. Submit it with
    /// [`RenderCore::submit_frame`].
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
    /// frame drew (`Recorder::draw`) is locked through one
    /// [`AcquireCtx`] (ascending buffer id) for the implicit-sync export →
    /// submit → import sequence, and the frame's fence is added to each
    /// before unlocking (rules B1, B4). Nothing in that window blocks:
    /// `vkQueueSubmit` and the sync_file ioctls return at once.
    ///
    /// A frame the host can write (`vulkan::host_frame`) is written by this
    /// thread instead, with no reservation held while it reads (rule B2),
    /// and returns a signaled fence; if that fails part-way, the frame is
    /// submitted as recorded.
    pub fn submit_frame(&self, mut recorder: Recorder) -> Result<Arc<FrameFence>, VkError> {
        let on_host = self.write_on_host(&recorder);
        let stats = DrawStats {
            host_frames: u64::from(on_host.is_some()),
            ..recorder.draw_stats()
        };
        self.draws.lock().unwrap_or_else(|p| p.into_inner()).add(stats);
        if let Some(dmabufs) = on_host {
            return Ok(recorder.finish_on_host(&mut self.ring(), dmabufs));
        }
        let sampled = recorder.take_sampled();
        let set: Vec<&BufferReservation> = sampled.iter().map(|r| &**r).collect();
        let mut held = AcquireCtx::new();
        held.lock_all(&set);
        let fence = recorder.finish(&mut self.ring()).inspect_err(|e| {
            if e.is_device_lost() {
                self.mark_device_lost();
            }
        })?;
        let as_fence: FenceRef = fence.clone();
        for guard in held.iter_mut() {
            guard.add_fence(as_fence.clone());
        }
        drop(held);
        Ok(fence)
    }

    /// Writes `recorder`'s frame on the host if it is a host frame and the
    /// device has nothing running. Returns the client dma-bufs it read, or
    /// `None` when the frame is to be submitted.
    ///
    /// Locks: none may be a reservation; takes the ring briefly (its
    /// idle check, before any reservation) and each read buffer's
    /// reservation briefly (`HostFrame::write`). Never blocks.
    fn write_on_host(&self, recorder: &Recorder) -> Option<usize> {
        if self.submit_every_frame {
            return None;
        }
        let frame = recorder.host_frame()?;
        {
            let mut ring = self.ring();
            ring.retire();
            if ring.in_flight() > 0 {
                return None;
            }
        }
        match frame.write() {
            Ok(()) => Some(frame.dmabufs()),
            Err(e) => {
                tracing::debug!("frame submitted, not written on the host: {e}");
                None
            }
        }
    }

    /// Blocks until the device is idle: teardown only (exit-time reaping,
    /// screenshots at exit). Locks: none may be a reservation
    /// (`lockdep::might_block`).
    pub fn wait_idle(&self) {
        lockdep::might_block("vkDeviceWaitIdle (teardown)");
        self.ring().retire_after_idle(&self.ctx);
    }

    /// Whether the device was lost: nothing submitted from now on runs, and
    /// the renderer has to be rebuilt or the compositor has to stop.
    pub fn device_lost(&self) -> bool {
        self.device_lost.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Records a device loss seen outside the core's own submissions (a
    /// caller's own Vulkan call, or the compositor's fault injection in test
    /// builds).
    pub fn mark_device_lost(&self) {
        self.device_lost.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Quads of the frames submitted so far: copied, drawn opaque, drawn blending.
    pub fn draw_stats(&self) -> DrawStats {
        *self.draws.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the device does with SYNC_FD semaphores.
    pub fn semaphore_sync_fd(&self) -> SemaphoreSyncFd {
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

    /// Copies `region` of `target` into host memory (asynchronously). Not
    /// for imported scan-out targets: between frames they belong to the
    /// foreign queue family (read them through their dma-buf instead).
    pub fn read_target(&self, target: &Target, region: Region) -> Result<Readback, VkError> {
        if target.foreign {
            return Err(VkError::Unsupported("read-back of an imported scan-out target".into()));
        }
        let region = region
            .clamp(target.width, target.height)
            .ok_or_else(|| VkError::Unsupported("empty read-back".into()))?;
        let state = (
            target_layout(&self.ctx),
            vk::AccessFlags::COLOR_ATTACHMENT_WRITE,
            vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT,
        );
        self.read_image(target.image, target.format, state, region, None)
    }

    /// Copies `region` of what a frame can sample into host memory
    /// (asynchronously). A client buffer is read like a frame samples it:
    /// under its reservation (taken here, so none may be held by the caller),
    /// with the read-back's fence recorded on it (rules B1, B3); a buffer
    /// whose writes are still pending is refused rather than waited for.
    pub fn read_texture(&self, what: &Drawable, region: Region) -> Result<Readback, VkError> {
        let Some(client) = what.client() else {
            return self.read_owned_or_locked(what.texture(), region);
        };
        let mut guard = client.reservation().lock();
        for fd in what.texture().dmabuf_fds() {
            let busy = match pending_writes(fd.as_fd()) {
                Ok(pending) => pending.is_some(),
                Err(e) if e.is_unsupported() => !poll_ready(fd.as_fd(), Access::Read)?,
                Err(e) => return Err(VkError::Unsupported(format!("client buffer fences: {e}"))),
            };
            if busy {
                return Err(VkError::Unsupported("the client buffer has writes pending".into()));
            }
        }
        let readback = self.read_owned_or_locked(what.texture(), region)?;
        guard.add_fence(readback.fence.clone());
        Ok(readback)
    }

    /// [`RenderCore::read_texture`] of a texture the caller may read: owned
    /// by the compositor, or a client buffer whose reservation it holds.
    fn read_owned_or_locked(&self, texture: &Arc<Texture>, region: Region) -> Result<Readback, VkError> {
        let region = region
            .clamp(texture.width, texture.height)
            .ok_or_else(|| VkError::Unsupported("empty read-back".into()))?;
        // record_prepare leaves every texture in SHADER_READ_ONLY_OPTIMAL (acquired,
        // for client memory); record_release hands client memory back after.
        let state = (
            vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
            vk::AccessFlags::SHADER_READ,
            vk::PipelineStageFlags::FRAGMENT_SHADER,
        );
        self.read_image(texture.image, texture.format, state, region, Some(texture))
    }

    fn read_image(
        &self,
        image: vk::Image,
        format: FormatInfo,
        (layout, access, stage): (vk::ImageLayout, vk::AccessFlags, vk::PipelineStageFlags),
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
            tex.record_prepare(cmd, &mut keep, Representation::default());
        }
        let to_src = image_barrier(image, layout, vk::ImageLayout::TRANSFER_SRC_OPTIMAL)
            .src_access_mask(access)
            .dst_access_mask(vk::AccessFlags::TRANSFER_READ);
        let back = image_barrier(image, vk::ImageLayout::TRANSFER_SRC_OPTIMAL, layout)
            .src_access_mask(vk::AccessFlags::TRANSFER_READ)
            .dst_access_mask(access);
        let copy = buffer_image_copy(0, region.width, region);
        unsafe {
            pipeline_barrier(dev, cmd, stage, vk::PipelineStageFlags::TRANSFER, &[to_src], &[]);
            dev.cmd_copy_image_to_buffer(
                cmd,
                image,
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                buffer.buffer,
                &[copy],
            );
            pipeline_barrier(dev, cmd, vk::PipelineStageFlags::TRANSFER, stage, &[back], &[]);
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
