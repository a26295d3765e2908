//! Recording one frame: draws, and what the frame samples.
//!
//! DOC: frame shape
//!
//! A frame is two command buffers submitted together: a *prepare* buffer
//! (uploads, buffer-path copies, layout transitions, acquiring client memory
//! from the foreign queue family) and the *render* buffer (one render pass,
//! then releasing client memory). Smithay's `Frame` API hands us textures one
//! draw at a time; the split lets a texture's preparation be recorded apart
//! from the render pass. Preparations are recorded when the frame is
//! finished, so a frame written on the host (`super::host_frame`) leaves
//! every texture's queued copies for the next submitted frame.
//!
//! DOC: sampling a client buffer locks and fences it
//!
//! [`Recorder::draw`] takes a [`Drawable`]. Drawing a client buffer records
//! the draw and registers the buffer's reservation with the frame in the same
//! call; the frame can only be submitted through `RenderCore::submit_frame`,
//! which locks every registered reservation through one `AcquireCtx`
//! (ascending buffer id), runs [`Recorder::finish`] (implicit-sync export →
//! `vkQueueSubmit` → import) under them and records the frame's fence on each
//! before unlocking (locking rules B1 and B4, docs/locking-rules.md). There
//! is no way to sample a client buffer's texture without its reservation.
//!
//! DOC: blocking
//!
//! Nothing here waits. The implicit-sync export in [`Recorder::finish`] runs
//! under the sampled buffers' reservations and returns at once.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ash::vk;

use super::barrier::{acquire_target, release_target, target_layout, target_to_host};
use super::client_buffer::ClientBuffer;
use super::copy_pass::CopyPass;
use super::host_frame::{HostFrame, TargetMapping};
use super::pipeline::{Blend, Fill, Filter, FormatPipeline, Pipelines, QuadPush};
use super::ring::{CommandRing, FrameFence};
use super::semaphore::{self, SemaphoreKeep, SemaphoreSyncFd};
use super::target::Target;
use super::texture::Texture;
use super::ycbcr::Representation;
use super::{BufferReservation, VkContext, VkError};
use crate::format::FormatInfo;
use crate::sync::implicit::{import_sync_file, pending_writes, Access};

/// What a frame can sample: an imported client buffer (locked and fenced
/// with the frame) or a texture the compositor owns outright (shm, memory
/// uploads).
#[derive(Debug, Clone)]
pub enum Drawable {
    Client(ClientBuffer),
    Owned(Arc<Texture>),
}

impl Drawable {
    pub fn texture(&self) -> &Arc<Texture> {
        match self {
            Drawable::Client(c) => c.texture(),
            Drawable::Owned(t) => t,
        }
    }

    pub fn client(&self) -> Option<&ClientBuffer> {
        match self {
            Drawable::Client(c) => Some(c),
            Drawable::Owned(_) => None,
        }
    }

    pub fn width(&self) -> u32 {
        self.texture().width
    }

    pub fn height(&self) -> u32 {
        self.texture().height
    }

    pub fn format(&self) -> FormatInfo {
        self.texture().format
    }
}

/// One quad to draw: where, and how its pixels meet the target.
#[derive(Debug, Clone, Copy)]
pub struct Quad<'a> {
    pub push: QuadPush,
    /// Scissors (framebuffer pixels) where the quad is opaque: drawn
    /// without blending.
    pub opaque: &'a [vk::Rect2D],
    /// Scissors where it blends over the target.
    pub blended: &'a [vk::Rect2D],
    /// Texels map 1:1 onto pixel centres: nearest filtering gives the same
    /// result as the frame's filter, for less work.
    pub pixel_exact: bool,
    /// Set when the quad shows its texture untransformed and 1:1, texel =
    /// pixel + this offset: the opaque part may then be copied instead of
    /// drawn (`super::copy_pass`).
    pub texel_offset: Option<vk::Offset2D>,
    /// How a YUV texture's values become colours (ignored for RGB).
    pub representation: Representation,
}

/// One frame being recorded into a target.
pub struct Recorder {
    ctx: Arc<VkContext>,
    prepare: vk::CommandBuffer,
    render: vk::CommandBuffer,
    layout: vk::PipelineLayout,
    pipelines: FormatPipeline,
    /// Sampler sets: the frame's filter, and nearest for pixel-exact quads.
    sampler_sets: [vk::DescriptorSet; 2],
    /// What is bound in `render`, so unchanged state is not bound again.
    bound_pipeline: vk::Pipeline,
    bound_sets: [vk::DescriptorSet; 2],
    textures: Vec<Arc<Texture>>,
    /// How each of `textures` is drawn (its preparation converts YUV as the
    /// drawing surface says), in the same order.
    representations: Vec<Representation>,
    /// Client buffers sampled, whose reservations are locked at submit,
    /// with their textures.
    sampled: Vec<(Arc<BufferReservation>, Arc<Texture>)>,
    keep: Vec<Box<dyn Send + Sync>>,
    /// Bound as set 0 for solid quads (the layout wants a texture there).
    blank: Arc<Texture>,
    /// What the device does with SYNC_FD semaphores.
    sync: SemaphoreSyncFd,
    /// Temporary-import semaphores the submission waits on.
    waits: Vec<vk::Semaphore>,
    /// Per-frame sync counters.
    pub sync_stats: FrameSyncStats,
    /// This frame's quads, by how they were recorded.
    draw_stats: DrawStats,
    /// Quads copied rather than drawn, and what the render pass touched.
    copy_pass: CopyPass,
    /// The target's framebuffer for `pipelines.render_pass`.
    framebuffer: vk::Framebuffer,
    /// Whether the render pass has begun: at the first clear or draw (a
    /// frame that only copies has none).
    in_pass: bool,
    /// An imported scan-out target, released to the foreign queue family
    /// after the frame.
    foreign_target: Option<vk::Image>,
    /// The target's host mapping (`super::host_frame`).
    host_target: Option<Arc<TargetMapping>>,
    /// This frame is the target's first: it defines the target's layout.
    first_frame: bool,
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
        let first = !target.initialized.swap(true, Ordering::AcqRel);
        acquire_target(&ctx, prepare, target.image, target.foreign, first);
        // Copies beat rasterizing only where the rasterizer is the CPU; a
        // GPU draws an opaque quad at copy speed, and a tiler would pay for
        // the copy's round trip through memory.
        let copies = ctx.caps.device_type == vk::PhysicalDeviceType::CPU;
        let copy_pass = CopyPass::new(target.image, target.format, target_layout(&ctx), copies);
        Ok(Recorder {
            ctx,
            prepare,
            render,
            layout: pipelines.layout,
            pipelines: pipeline,
            sampler_sets: [pipelines.sampler_set(filter), pipelines.sampler_set(Filter::Nearest)],
            bound_pipeline: vk::Pipeline::null(),
            bound_sets: [vk::DescriptorSet::null(); 2],
            textures: Vec::new(),
            representations: Vec::new(),
            sampled: Vec::new(),
            keep: Vec::new(),
            blank: blank.clone(),
            sync,
            waits: Vec::new(),
            sync_stats: FrameSyncStats::default(),
            draw_stats: DrawStats::default(),
            in_pass: false,
            copy_pass,
            framebuffer,
            foreign_target: target.foreign.then_some(target.image),
            host_target: target.host.clone(),
            first_frame: first,
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
        self.copy_pass.note_drawn(rects);
        self.begin_pass();
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

    /// Draws one quad clipped to each of its scissors: textured with `what`,
    /// or solid (the push constants carry the colour) when `None`. A client
    /// buffer's reservation is registered with the frame here, to be locked
    /// and fenced at submit (module doc). Locks: none (records only).
    pub fn draw(&mut self, what: Option<&Drawable>, quad: &Quad) {
        if quad.opaque.is_empty() && quad.blended.is_empty() {
            return;
        }
        if let Some(client) = what.and_then(Drawable::client) {
            self.sample(client);
        }
        let tex = what.map_or(&self.blank, Drawable::texture).clone();
        if !self.textures.iter().any(|t| Arc::ptr_eq(t, &tex)) {
            self.textures.push(tex.clone());
            self.representations.push(quad.representation);
        }
        if let Some(offset) = quad.texel_offset.filter(|_| what.is_some() && quad.blended.is_empty()) {
            if self.copy_pass.try_copy(&tex, quad.opaque, offset) {
                self.draw_stats.copied += quad.opaque.len() as u64;
                return;
            }
        }
        self.copy_pass.note_drawn(quad.opaque);
        self.copy_pass.note_drawn(quad.blended);
        self.draw_stats.opaque += quad.opaque.len() as u64;
        self.draw_stats.blended += quad.blended.len() as u64;
        self.begin_pass();
        let fill = if what.is_some() { Fill::Texture } else { Fill::Solid };
        let ycbcr = tex.ycbcr_binding(quad.representation);
        let layout = match &ycbcr {
            Some((sampler, set)) => self.bind_ycbcr_set(sampler.layout, *set),
            None => {
                let sampler = self.sampler_sets[usize::from(quad.pixel_exact)];
                self.bind_sets([tex.descriptor_set, sampler]);
                self.layout
            }
        };
        let dev = &self.ctx.device;
        unsafe {
            dev.cmd_push_constants(
                self.render,
                layout,
                vk::ShaderStageFlags::VERTEX | vk::ShaderStageFlags::FRAGMENT,
                0,
                quad.push.as_bytes(),
            );
        }
        for (blend, scissors) in [(Blend::Replace, quad.opaque), (Blend::Over, quad.blended)] {
            if scissors.is_empty() {
                continue;
            }
            let pipeline = match &ycbcr {
                Some((ycbcr, _)) => match ycbcr.pipeline(self.pipelines.render_pass, blend) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(key = ?ycbcr.key, "no Y'CbCr pipeline, quad not drawn: {e}");
                        return;
                    }
                },
                None => self.pipelines.get(fill, blend),
            };
            self.bind_pipeline(pipeline);
            for s in scissors {
                unsafe {
                    self.ctx.device.cmd_set_scissor(self.render, 0, &[*s]);
                    self.ctx.device.cmd_draw(self.render, 4, 1, 0, 0);
                }
            }
        }
    }

    /// Begins the render pass (once per frame) and sets its viewport.
    fn begin_pass(&mut self) {
        if self.in_pass {
            return;
        }
        let area = vk::Rect2D {
            offset: vk::Offset2D { x: 0, y: 0 },
            extent: vk::Extent2D {
                width: self.width,
                height: self.height,
            },
        };
        let begin = vk::RenderPassBeginInfo::default()
            .render_pass(self.pipelines.render_pass)
            .framebuffer(self.framebuffer)
            .render_area(area);
        let viewport = vk::Viewport {
            x: 0.0,
            y: 0.0,
            width: self.width as f32,
            height: self.height as f32,
            min_depth: 0.0,
            max_depth: 1.0,
        };
        let dev = &self.ctx.device;
        unsafe {
            dev.cmd_begin_render_pass(self.render, &begin, vk::SubpassContents::INLINE);
            dev.cmd_set_viewport(self.render, 0, &[viewport]);
        }
        self.in_pass = true;
    }

    fn bind_pipeline(&mut self, pipeline: vk::Pipeline) {
        if self.bound_pipeline != pipeline {
            let dev = &self.ctx.device;
            unsafe { dev.cmd_bind_pipeline(self.render, vk::PipelineBindPoint::GRAPHICS, pipeline) };
            self.bound_pipeline = pipeline;
        }
    }

    fn bind_sets(&mut self, sets: [vk::DescriptorSet; 2]) {
        if self.bound_sets != sets {
            let dev = &self.ctx.device;
            unsafe {
                dev.cmd_bind_descriptor_sets(self.render, vk::PipelineBindPoint::GRAPHICS, self.layout, 0, &sets, &[])
            };
            self.bound_sets = sets;
        }
    }

    /// Binds a YUV texture's set (set 0 of its conversion's `layout`, the
    /// only set that layout has) and returns the layout. The quad layout's
    /// sets count as unbound afterwards: the layouts are not compatible.
    fn bind_ycbcr_set(&mut self, layout: vk::PipelineLayout, set: vk::DescriptorSet) -> vk::PipelineLayout {
        let dev = &self.ctx.device;
        unsafe { dev.cmd_bind_descriptor_sets(self.render, vk::PipelineBindPoint::GRAPHICS, layout, 0, &[set], &[]) };
        self.bound_sets = [vk::DescriptorSet::null(); 2];
        layout
    }

    fn sample(&mut self, client: &ClientBuffer) {
        if !self.sampled.iter().any(|(r, _)| r.id() == client.id()) {
            self.sampled
                .push((client.reservation().clone(), client.texture().clone()));
        }
    }

    /// The reservations of the client buffers drawn (for the submitter).
    pub(crate) fn take_sampled(&mut self) -> Vec<Arc<BufferReservation>> {
        std::mem::take(&mut self.sampled).into_iter().map(|(r, _)| r).collect()
    }

    /// The frame as one the host can write instead of submitting it, if
    /// it is one (`super::host_frame`'s rules; the caller checks that the
    /// device is idle).
    pub(crate) fn host_frame(&self) -> Option<HostFrame> {
        let target = self.host_target.as_ref()?;
        if self.first_frame || self.in_pass {
            return None;
        }
        let copies = self.copy_pass.copies();
        let all_copied = self
            .textures
            .iter()
            .all(|t| copies.iter().any(|(c, _)| Arc::ptr_eq(c, t)));
        if !all_copied {
            return None;
        }
        HostFrame::plan(target, copies, &self.sampled)
    }

    /// Drops a frame the host wrote: its command buffers go back to the
    /// ring unsubmitted. Returns its fence, signaled from the start, which counts
    /// `dmabufs` client dma-bufs sampled (the buffers are released through
    /// the same path as after a submitted frame).
    pub(crate) fn finish_on_host(self, ring: &mut CommandRing, dmabufs: usize) -> Arc<FrameFence> {
        ring.recycle(self.prepare);
        ring.recycle(self.render);
        let fence = FrameFence::done_on_host(&self.ctx);
        fence.sampled_dmabufs.store(dmabufs, Ordering::Release);
        Arc::new(fence)
    }

    /// Implicit acquire: the client's pending writes (READ export) are
    /// waited for on the GPU where the device imports SYNC_FD semaphores.
    /// Without that the event loop has held the commit until they signaled
    /// (the compositor's implicit acquire), so anything still pending here is
    /// only counted (`unwaited`).
    fn acquire_implicit(&mut self, tex: &Texture) {
        for fd in tex.dmabuf_fds() {
            self.sync_stats.sampled_dmabufs += 1;
            match pending_writes(fd.as_fd()) {
                Ok(None) => {}
                Ok(Some(fence)) if self.sync.import => match semaphore::import_wait_semaphore(&self.ctx, fence) {
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

    /// The frame's draw counters, as [`Recorder::finish`] will submit it.
    pub(crate) fn draw_stats(&self) -> DrawStats {
        DrawStats {
            one_buffer_frames: u64::from(!self.in_pass),
            ..self.draw_stats
        }
    }

    /// Ends the pass, releases client memory and submits. Returns the fence.
    ///
    /// Locks: the sampled buffers' reservations (held by the caller through
    /// an `AcquireCtx`; `RenderCore::submit_frame`) and the command ring
    /// (`ring`). Does not block.
    ///
    /// Implicit acquire: each sampled dma-buf's pending writes are exported
    /// here, under its reservation, just before the submission.
    ///
    /// Implicit release: where the device exports SYNC_FD, the submission
    /// also signals a semaphore whose sync_file is imported into every
    /// sampled client dma-buf as a READ fence ([`FrameFence::implicit_release`]).
    pub(crate) fn finish(mut self, ring: &mut CommandRing) -> Result<Arc<FrameFence>, VkError> {
        for (tex, &representation) in self.textures.iter().zip(&self.representations) {
            tex.record_prepare(self.prepare, &mut self.keep, representation);
        }
        for tex in self.textures.clone() {
            self.acquire_implicit(&tex);
        }
        self.copy_pass.record(&self.ctx, self.prepare);
        // Without a render pass the render buffer holds nothing yet: the
        // releases go after the copies in the prepare buffer and the frame
        // submits one command buffer. Each one a CPU device executes costs
        // a setup and teardown of its whole state (lavapipe).
        let (tail, cmds) = if self.in_pass {
            unsafe { self.ctx.device.cmd_end_render_pass(self.render) };
            (self.render, vec![self.prepare, self.render])
        } else {
            ring.recycle(self.render);
            (self.prepare, vec![self.prepare])
        };
        if let Some(image) = self.foreign_target {
            release_target(&self.ctx, tail, image);
        }
        if self.host_target.is_some() {
            target_to_host(&self.ctx, tail);
        }
        for tex in &self.textures {
            tex.record_release(tail);
        }
        let sampled = self.sync_stats.sampled_dmabufs;
        let export = if self.sync.export && sampled > 0 {
            semaphore::create_export_semaphore(&self.ctx)
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
        keep.push(Box::new(SemaphoreKeep {
            device: self.ctx.device.clone(),
            semaphores: keep_sems,
        }));
        let fence = ring.submit_synced(cmds, keep, self.textures, &waits, &signals)?;
        fence.sampled_dmabufs.store(sampled, Ordering::Release);
        if let Some(&sem) = signals.first() {
            match semaphore::export_sync_file(&self.ctx, sem) {
                Ok(done) => {
                    let mut all = true;
                    for tex in &textures {
                        for fd in tex.dmabuf_fds() {
                            if let Err(e) = import_sync_file(fd.as_fd(), &done, Access::Read) {
                                tracing::debug!("IMPORT_SYNC_FILE(READ) into a client dma-buf: {e}");
                                all = false;
                            }
                        }
                    }
                    fence.implicit_release.store(all, Ordering::Release);
                    let _ = fence.sync_file.set(done);
                }
                Err(e) => tracing::warn!("exporting the frame's sync_file: {e}"),
            }
        }
        Ok(fence)
    }
}

/// How the quads of frames reached the target, counted per scissor
/// rectangle: copied (`super::copy_pass`), drawn opaque (no blending) or
/// drawn blending; the frames that needed no render pass (submitted as one
/// command buffer, or written on the host), and of those the frames the
/// host wrote (`super::host_frame`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DrawStats {
    pub copied: u64,
    pub opaque: u64,
    pub blended: u64,
    pub one_buffer_frames: u64,
    #[serde(default)]
    pub host_frames: u64,
}

impl DrawStats {
    pub fn add(&mut self, other: DrawStats) {
        self.copied += other.copied;
        self.opaque += other.opaque;
        self.blended += other.blended;
        self.one_buffer_frames += other.one_buffer_frames;
        self.host_frames += other.host_frames;
    }
}

/// Sync counters of one frame.
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
