//! Recording and submitting frames; fences the event loop polls.
//!
//! DOC: frame shape
//!
//! A frame is two command buffers submitted together: a *prepare* buffer
//! (uploads, buffer-path copies, layout transitions, acquiring client memory
//! from the foreign queue family) and the *render* buffer (one render pass,
//! then releasing client memory). Smithay's `Frame` API hands us textures one
//! draw at a time; the split lets a texture's preparation be recorded when it
//! is first drawn without breaking the render pass.
//!
//! DOC: lifetime
//!
//! Everything a frame touches (textures, staging buffers) is kept in its
//! [`InFlight`] record until its fence signals; [`CommandRing::retire`] frees
//! finished frames without blocking. Nothing is freed while the GPU may use it.
//! Client buffers the frame samples are also registered with
//! [`Recorder::sample`]; `RenderCore::submit_frame` locks their reservations
//! around [`Recorder::finish`] and records the frame's fence on them.
//!
//! DOC: blocking
//!
//! [`FrameFence::wait`] is the only wait here; it calls `lockdep::might_block`
//! (never with a reservation held). The implicit-sync export in
//! [`Recorder::finish`] runs under the sampled buffers' reservations (rule B1:
//! export → submit → import is one locked sequence) and never waits.

use std::os::fd::AsFd;
use std::sync::Arc;

use ash::vk;

use super::client_buffer::BufferReservation;
use super::pipeline::{Filter, Pipelines, QuadPush};
use super::target::Target;
use super::texture::{image_barrier, pipeline_barrier, Texture};
use super::{VkContext, VkError, VkResultExt};
use crate::sync::{SemaphoreSyncFd, SyncFile};

/// A VkFence of one submission. Owned; destroyed on drop.
pub struct FrameFence {
    ctx: Arc<VkContext>,
    fence: vk::Fence,
    /// SYNC: the submission's completion as a sync_file, where the device
    /// exports `SYNC_FD` semaphores.
    sync_file: std::sync::OnceLock<SyncFile>,
    /// SYNC: every client dma-buf the submission sampled got its completion
    /// as a READ fence, so the buffers may be released before it signals.
    implicit_release: std::sync::atomic::AtomicBool,
    /// SYNC: client dma-bufs the submission sampled.
    sampled_dmabufs: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for FrameFence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameFence").field("fence", &self.fence).finish()
    }
}

impl FrameFence {
    pub(crate) fn new(ctx: &Arc<VkContext>) -> Result<FrameFence, VkError> {
        let fence = unsafe { ctx.device.create_fence(&vk::FenceCreateInfo::default(), None) }.call("vkCreateFence")?;
        Ok(FrameFence {
            ctx: ctx.clone(),
            fence,
            sync_file: Default::default(),
            implicit_release: Default::default(),
            sampled_dmabufs: Default::default(),
        })
    }

    /// SYNC: the submission's completion as a sync_file (devices exporting `SYNC_FD`).
    pub fn sync_file(&self) -> Option<&SyncFile> {
        self.sync_file.get()
    }

    /// SYNC: true when every client dma-buf sampled by this submission carries
    /// its completion as a READ fence (implicit release done on the GPU side).
    pub fn implicit_release(&self) -> bool {
        self.implicit_release.load(std::sync::atomic::Ordering::Acquire)
    }

    /// SYNC: how many client dma-bufs the submission sampled.
    pub fn sampled_dmabufs(&self) -> usize {
        self.sampled_dmabufs.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn raw(&self) -> vk::Fence {
        self.fence
    }

    /// Non-blocking status check.
    pub fn is_signaled(&self) -> bool {
        matches!(
            unsafe { self.ctx.device.get_fence_status(self.fence) },
            Ok(true) | Err(_)
        )
    }

    /// Blocks until the GPU work is done. Locks: none may be a reservation
    /// (checked by `lockdep::might_block`).
    pub fn wait(&self) -> Result<(), VkError> {
        crate::lockdep::might_block("vkWaitForFences (FrameFence::wait)");
        unsafe { self.ctx.device.wait_for_fences(&[self.fence], true, u64::MAX) }.call("vkWaitForFences")
    }
}

impl Drop for FrameFence {
    fn drop(&mut self) {
        unsafe { self.ctx.device.destroy_fence(self.fence, None) };
    }
}

/// Work submitted and not yet known to be finished.
struct InFlight {
    fence: Arc<FrameFence>,
    cmds: Vec<vk::CommandBuffer>,
    _keep: Vec<Box<dyn Send + Sync>>,
    _textures: Vec<Arc<Texture>>,
}

/// Command pool, free command buffers and the in-flight list.
pub struct CommandRing {
    ctx: Arc<VkContext>,
    pool: vk::CommandPool,
    free: Vec<vk::CommandBuffer>,
    in_flight: Vec<InFlight>,
    /// Client dma-buf textures whose last reference was a finished frame.
    deferred_frees: u64,
}

impl CommandRing {
    pub fn new(ctx: &Arc<VkContext>) -> Result<CommandRing, VkError> {
        let info = vk::CommandPoolCreateInfo::default()
            .queue_family_index(ctx.queue_family)
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
        let pool = unsafe { ctx.device.create_command_pool(&info, None) }.call("vkCreateCommandPool")?;
        Ok(CommandRing {
            ctx: ctx.clone(),
            pool,
            free: Vec::new(),
            in_flight: Vec::new(),
            deferred_frees: 0,
        })
    }

    /// Frees the resources of finished submissions. Never blocks.
    ///
    /// DOC: asynchronous invalidation (locking rule B3). A client that
    /// destroys its buffer or disconnects drops the surface's reference to
    /// the imported texture at once; a frame still sampling it keeps its own
    /// `Arc` here, so the VkImage/VkDeviceMemory is freed only now, after the
    /// frame's fence signaled, from the loop. Such frees are counted
    /// ([`CommandRing::deferred_frees`]).
    pub fn retire(&mut self) {
        let (done, pending): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|f| f.fence.is_signaled());
        self.in_flight = pending;
        for f in done {
            self.free.extend(f.cmds);
            for tex in f._textures {
                if Arc::strong_count(&tex) == 1 && !tex.dmabuf_fds().is_empty() {
                    self.deferred_frees += 1;
                    tracing::debug!("client texture freed after the frame that sampled it finished");
                }
                drop(tex);
            }
        }
    }

    /// Client dma-buf textures freed by [`CommandRing::retire`] because a
    /// finished frame held their last reference.
    pub fn deferred_frees(&self) -> u64 {
        self.deferred_frees
    }

    /// Teardown: waits for the device to go idle, then retires everything.
    /// Locks: the ring (caller); takes the queue. Blocks: never call it with a
    /// reservation held (`RenderCore::wait_idle` checks).
    pub(crate) fn retire_after_idle(&mut self, ctx: &VkContext) {
        ctx.wait_idle_for_teardown();
        self.retire();
    }

    /// Number of submissions still running.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// A command buffer in the recording state.
    pub fn begin(&mut self) -> Result<vk::CommandBuffer, VkError> {
        let cmd = match self.free.pop() {
            Some(c) => c,
            None => {
                let info = vk::CommandBufferAllocateInfo::default()
                    .command_pool(self.pool)
                    .level(vk::CommandBufferLevel::PRIMARY)
                    .command_buffer_count(1);
                unsafe { self.ctx.device.allocate_command_buffers(&info) }.call("vkAllocateCommandBuffers")?[0]
            }
        };
        let dev = &self.ctx.device;
        unsafe {
            dev.reset_command_buffer(cmd, vk::CommandBufferResetFlags::empty())
                .call("vkResetCommandBuffer")?;
            let begin = vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
            dev.begin_command_buffer(cmd, &begin).call("vkBeginCommandBuffer")?;
        }
        Ok(cmd)
    }

    /// Ends and submits `cmds` in order with a fresh fence; keeps `keep` and
    /// `textures` alive until it signals.
    pub fn submit(
        &mut self,
        cmds: Vec<vk::CommandBuffer>,
        keep: Vec<Box<dyn Send + Sync>>,
        textures: Vec<Arc<Texture>>,
    ) -> Result<Arc<FrameFence>, VkError> {
        self.submit_synced(cmds, keep, textures, &[], &[])
    }

    /// [`CommandRing::submit`] with wait and signal semaphores (SYNC).
    pub fn submit_synced(
        &mut self,
        cmds: Vec<vk::CommandBuffer>,
        keep: Vec<Box<dyn Send + Sync>>,
        textures: Vec<Arc<Texture>>,
        waits: &[vk::Semaphore],
        signals: &[vk::Semaphore],
    ) -> Result<Arc<FrameFence>, VkError> {
        for &cmd in &cmds {
            unsafe { self.ctx.device.end_command_buffer(cmd) }.call("vkEndCommandBuffer")?;
        }
        let fence = Arc::new(FrameFence::new(&self.ctx)?);
        let stages = vec![vk::PipelineStageFlags::ALL_COMMANDS; waits.len()];
        let submit = [vk::SubmitInfo::default()
            .command_buffers(&cmds)
            .wait_semaphores(waits)
            .wait_dst_stage_mask(&stages)
            .signal_semaphores(signals)];
        if let Err(e) = self.ctx.submit(&submit, fence.raw()) {
            self.free.extend(cmds);
            return Err(e);
        }
        self.in_flight.push(InFlight {
            fence: fence.clone(),
            cmds,
            _keep: keep,
            _textures: textures,
        });
        Ok(fence)
    }
}

impl Drop for CommandRing {
    fn drop(&mut self) {
        self.ctx.wait_idle_for_teardown();
        self.in_flight.clear();
        unsafe { self.ctx.device.destroy_command_pool(self.pool, None) };
    }
}

/// One frame being recorded into a target.
pub struct Recorder {
    ctx: Arc<VkContext>,
    prepare: vk::CommandBuffer,
    render: vk::CommandBuffer,
    layout: vk::PipelineLayout,
    sampler_set: vk::DescriptorSet,
    textures: Vec<Arc<Texture>>,
    /// Client buffers sampled, whose reservations are locked at submit.
    sampled: Vec<Arc<BufferReservation>>,
    keep: Vec<Box<dyn Send + Sync>>,
    /// Bound as set 0 for solid quads (the layout wants a texture there).
    blank: Arc<Texture>,
    /// SYNC: what the device does with SYNC_FD semaphores.
    sync: SemaphoreSyncFd,
    /// SYNC: temporary-import semaphores the submission waits on.
    waits: Vec<vk::Semaphore>,
    /// SYNC: per-frame sync counters.
    pub sync_stats: FrameSyncStats,
    pub width: u32,
    pub height: u32,
}

impl Recorder {
    /// Starts a frame on `target`: begins both command buffers and the pass.
    pub fn begin(
        ring: &mut CommandRing,
        pipelines: &Pipelines,
        target: &Target,
        filter: Filter,
        blank: &Arc<Texture>,
        sync: SemaphoreSyncFd,
    ) -> Result<Recorder, VkError> {
        let ctx = ring.ctx.clone();
        let pipeline = pipelines.for_format(target.format.vk_format)?;
        let framebuffer = target.framebuffer(pipeline.render_pass)?;
        let prepare = ring.begin()?;
        let render = ring.begin()?;
        if !target.initialized.swap(true, std::sync::atomic::Ordering::AcqRel) {
            let b = image_barrier(
                target.image,
                vk::ImageLayout::UNDEFINED,
                vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
            )
            .dst_access_mask(vk::AccessFlags::COLOR_ATTACHMENT_WRITE | vk::AccessFlags::COLOR_ATTACHMENT_READ);
            unsafe {
                pipeline_barrier(
                    &ctx.device,
                    prepare,
                    vk::PipelineStageFlags::TOP_OF_PIPE,
                    vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT,
                    &[b],
                    &[],
                )
            };
        }
        let area = vk::Rect2D {
            offset: vk::Offset2D { x: 0, y: 0 },
            extent: vk::Extent2D {
                width: target.width,
                height: target.height,
            },
        };
        let begin = vk::RenderPassBeginInfo::default()
            .render_pass(pipeline.render_pass)
            .framebuffer(framebuffer)
            .render_area(area);
        let viewport = vk::Viewport {
            x: 0.0,
            y: 0.0,
            width: target.width as f32,
            height: target.height as f32,
            min_depth: 0.0,
            max_depth: 1.0,
        };
        unsafe {
            ctx.device
                .cmd_begin_render_pass(render, &begin, vk::SubpassContents::INLINE);
            ctx.device
                .cmd_bind_pipeline(render, vk::PipelineBindPoint::GRAPHICS, pipeline.pipeline);
            ctx.device.cmd_set_viewport(render, 0, &[viewport]);
        }
        Ok(Recorder {
            ctx,
            prepare,
            render,
            layout: pipelines.layout,
            sampler_set: pipelines.sampler_set(filter),
            textures: Vec::new(),
            sampled: Vec::new(),
            keep: Vec::new(),
            blank: blank.clone(),
            sync,
            waits: Vec::new(),
            sync_stats: FrameSyncStats::default(),
            width: target.width,
            height: target.height,
        })
    }

    /// Clears `rects` (framebuffer pixels) to the premultiplied `color`.
    pub fn clear(&mut self, color: [f32; 4], rects: &[vk::Rect2D]) {
        if rects.is_empty() {
            return;
        }
        let attachment = [vk::ClearAttachment {
            aspect_mask: vk::ImageAspectFlags::COLOR,
            color_attachment: 0,
            clear_value: vk::ClearValue {
                color: vk::ClearColorValue { float32: color },
            },
        }];
        let clear_rects: Vec<_> = rects
            .iter()
            .map(|&rect| vk::ClearRect {
                rect,
                base_array_layer: 0,
                layer_count: 1,
            })
            .collect();
        unsafe {
            self.ctx
                .device
                .cmd_clear_attachments(self.render, &attachment, &clear_rects)
        };
    }

    /// Draws one quad (textured when `texture` is given) clipped to each of
    /// `scissors` (framebuffer pixels).
    pub fn draw(&mut self, texture: Option<&Arc<Texture>>, push: &QuadPush, scissors: &[vk::Rect2D]) {
        if scissors.is_empty() {
            return;
        }
        let tex = texture.unwrap_or(&self.blank).clone();
        if !self.textures.iter().any(|t| Arc::ptr_eq(t, &tex)) {
            tex.record_prepare(self.prepare, &mut self.keep);
            self.textures.push(tex.clone());
        }
        let dev = &self.ctx.device;
        let sets = [tex.descriptor_set, self.sampler_set];
        unsafe {
            dev.cmd_bind_descriptor_sets(self.render, vk::PipelineBindPoint::GRAPHICS, self.layout, 0, &sets, &[])
        };
        unsafe {
            dev.cmd_push_constants(
                self.render,
                self.layout,
                vk::ShaderStageFlags::VERTEX | vk::ShaderStageFlags::FRAGMENT,
                0,
                push.as_bytes(),
            );
            for s in scissors {
                dev.cmd_set_scissor(self.render, 0, &[*s]);
                dev.cmd_draw(self.render, 4, 1, 0, 0);
            }
        }
    }

    /// Registers a client buffer this frame samples: its reservation is
    /// locked for the submission and gets the frame's fence
    /// (`RenderCore::submit_frame`). Locks: none (records only).
    pub fn sample(&mut self, resv: &Arc<BufferReservation>) {
        if !self.sampled.iter().any(|r| r.id() == resv.id()) {
            self.sampled.push(resv.clone());
        }
    }

    /// The buffers registered with [`Recorder::sample`] (for the submitter).
    pub fn take_sampled(&mut self) -> Vec<Arc<BufferReservation>> {
        std::mem::take(&mut self.sampled)
    }

    /// SYNC, implicit acquire: the client's pending writes (READ export) are
    /// waited for on the GPU where the device imports SYNC_FD semaphores.
    /// Without that the event loop has held the commit until they signaled
    /// (compositor `sync::implicit`), so anything still pending here is only
    /// counted (`unwaited`).
    fn acquire_implicit(&mut self, tex: &Texture) {
        for fd in tex.dmabuf_fds() {
            self.sync_stats.sampled_dmabufs += 1;
            match crate::sync::dmabuf::pending_writes(fd.as_fd()) {
                Ok(None) => {}
                Ok(Some(fence)) if self.sync.import => match crate::sync::vk::import_wait_semaphore(&self.ctx, fence) {
                    Ok(sem) => {
                        self.waits.push(sem);
                        self.sync_stats.gpu_waits += 1;
                    }
                    Err(e) => {
                        tracing::warn!("GPU wait on a client fence failed to import: {e}");
                        self.sync_stats.unwaited += 1;
                    }
                },
                Ok(Some(_)) => self.sync_stats.unwaited += 1,
                Err(e) if e.is_unsupported() => self.sync_stats.no_sync_file += 1,
                Err(e) => tracing::debug!("EXPORT_SYNC_FILE(READ) on a client dma-buf: {e}"),
            }
        }
    }

    /// Ends the pass, releases client memory and submits. Returns the fence.
    ///
    /// Locks: the sampled buffers' reservations (held by the caller through
    /// an `AcquireCtx`; `RenderCore::submit_frame`) and the command ring
    /// (`ring`). Does not block.
    ///
    /// SYNC, implicit acquire: each sampled dma-buf's pending writes are
    /// exported here, under its reservation, just before the submission.
    ///
    /// SYNC, implicit release: where the device exports SYNC_FD, the
    /// submission also signals a semaphore whose sync_file is imported into
    /// every sampled client dma-buf as a READ fence ([`FrameFence::implicit_release`]).
    pub fn finish(mut self, ring: &mut CommandRing) -> Result<Arc<FrameFence>, VkError> {
        for tex in self.textures.clone() {
            self.acquire_implicit(&tex);
        }
        unsafe { self.ctx.device.cmd_end_render_pass(self.render) };
        for tex in &self.textures {
            tex.record_release(self.render);
        }
        let sampled = self.sync_stats.sampled_dmabufs;
        let export = if self.sync.export && sampled > 0 {
            crate::sync::vk::create_export_semaphore(&self.ctx)
                .map_err(|e| tracing::warn!("export semaphore: {e}"))
                .ok()
        } else {
            None
        };
        let waits = std::mem::take(&mut self.waits);
        let signals: Vec<vk::Semaphore> = export.into_iter().collect();
        let textures = self.textures.clone();
        let keep_sems: Vec<vk::Semaphore> = waits.iter().chain(&signals).copied().collect();
        let mut keep = std::mem::take(&mut self.keep);
        keep.push(Box::new(crate::sync::vk::SemaphoreKeep {
            device: self.ctx.device.clone(),
            semaphores: keep_sems,
        }));
        let fence = ring.submit_synced(vec![self.prepare, self.render], keep, self.textures, &waits, &signals)?;
        fence
            .sampled_dmabufs
            .store(sampled, std::sync::atomic::Ordering::Release);
        if let Some(&sem) = signals.first() {
            match crate::sync::vk::export_sync_file(&self.ctx, sem) {
                Ok(done) => {
                    let mut all = true;
                    for tex in &textures {
                        for fd in tex.dmabuf_fds() {
                            if let Err(e) =
                                crate::sync::dmabuf::import_sync_file(fd.as_fd(), &done, crate::sync::Access::Read)
                            {
                                tracing::debug!("IMPORT_SYNC_FILE(READ) into a client dma-buf: {e}");
                                all = false;
                            }
                        }
                    }
                    fence.implicit_release.store(all, std::sync::atomic::Ordering::Release);
                    let _ = fence.sync_file.set(done);
                }
                Err(e) => tracing::warn!("exporting the frame's sync_file: {e}"),
            }
        }
        Ok(fence)
    }
}

/// SYNC counters of one frame (logged at debug, summed by the renderer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameSyncStats {
    /// Client dma-bufs sampled.
    pub sampled_dmabufs: usize,
    /// Unsignaled client fences the GPU waits on (semaphore import).
    pub gpu_waits: usize,
    /// Unsignaled client fences the GPU could not wait on.
    pub unwaited: usize,
    /// dma-bufs without the sync_file ioctls (ENOTTY: host memfds).
    pub no_sync_file: usize,
}
