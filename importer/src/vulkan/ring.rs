//! The command ring: command buffers, submissions in flight and the fences
//! the event loop polls.
//!
//! DOC: lifetime
//!
//! Everything a submission touches (textures, staging buffers, semaphores) is
//! kept in its [`InFlight`] record until its fence signals;
//! [`CommandRing::retire`] frees finished submissions without blocking.
//! Nothing is freed while the GPU may use it.
//!
//! DOC: blocking and locks
//!
//! [`FrameFence::wait`] is the only wait here; it calls `lockdep::might_block`
//! (never with a reservation held). The ring itself is locked by its owner
//! (`crate::renderer::RenderCore`, lock class `lockdep::DEVICE_RING`), after
//! any reservations and before the queue.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use ash::vk;

use super::texture::Texture;
use super::{VkContext, VkError, VkResultExt};
use crate::reservation::Fence;
use crate::sync::SyncFile;

/// The completion of one frame: the VkFence of its submission (owned,
/// destroyed on drop), or none for a frame the host wrote, which was done
/// when the fence was made.
///
/// Once seen signaled, a fence stays signaled: later checks read the
/// latch instead of asking the driver (lavapipe takes a lock per query).
pub struct FrameFence {
    ctx: Arc<VkContext>,
    fence: Option<vk::Fence>,
    /// Seen signaled (or never submitted).
    done: AtomicBool,
    /// The submission's completion as a sync_file, where the device exports
    /// `SYNC_FD` semaphores.
    pub(crate) sync_file: OnceLock<SyncFile>,
    /// Every client dma-buf the submission sampled got its completion as a
    /// READ fence, so the buffers may be released before it signals.
    pub(crate) implicit_release: AtomicBool,
    /// Client dma-bufs the submission sampled.
    pub(crate) sampled_dmabufs: AtomicUsize,
    /// Counted in [`super::census`].
    _live: super::census::Live,
}

impl std::fmt::Debug for FrameFence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameFence").field("fence", &self.fence).finish()
    }
}

impl FrameFence {
    pub(crate) fn new(ctx: &Arc<VkContext>) -> Result<FrameFence, VkError> {
        let info = vk::FenceCreateInfo::default();
        let fence = unsafe { ctx.device.create_fence(&info, None) }.call("vkCreateFence")?;
        Ok(FrameFence::with(ctx, Some(fence)))
    }

    /// The completion of work done on the host (`super::host_frame`):
    /// signaled from the start, with no VkFence behind it.
    pub(crate) fn done_on_host(ctx: &Arc<VkContext>) -> FrameFence {
        FrameFence::with(ctx, None)
    }

    fn with(ctx: &Arc<VkContext>, fence: Option<vk::Fence>) -> FrameFence {
        FrameFence {
            ctx: ctx.clone(),
            done: AtomicBool::new(fence.is_none()),
            fence,
            sync_file: Default::default(),
            implicit_release: Default::default(),
            sampled_dmabufs: Default::default(),
            _live: super::census::Live::new(super::census::Kind::FrameFence),
        }
    }

    /// The submission's completion as a sync_file (devices exporting `SYNC_FD`).
    pub fn sync_file(&self) -> Option<&SyncFile> {
        self.sync_file.get()
    }

    /// True when every client dma-buf sampled by this submission carries its
    /// completion as a READ fence (implicit release done on the GPU side).
    pub fn implicit_release(&self) -> bool {
        self.implicit_release.load(Ordering::Acquire)
    }

    /// How many client dma-bufs the submission sampled.
    pub fn sampled_dmabufs(&self) -> usize {
        self.sampled_dmabufs.load(Ordering::Acquire)
    }

    /// The VkFence to submit with (null for work done on the host, which is
    /// never submitted).
    pub(crate) fn raw(&self) -> vk::Fence {
        self.fence.unwrap_or_default()
    }

    /// Non-blocking status check. A lost device counts as signaled: nothing
    /// it held runs any more.
    pub fn is_signaled(&self) -> bool {
        if self.done.load(Ordering::Acquire) {
            return true;
        }
        let Some(fence) = self.fence else { return true };
        let done = matches!(unsafe { self.ctx.device.get_fence_status(fence) }, Ok(true) | Err(_));
        if done {
            self.done.store(true, Ordering::Release);
        }
        done
    }

    /// Blocks until the GPU work is done. Locks: none may be a reservation
    /// (checked by `lockdep::might_block`).
    pub fn wait(&self) -> Result<(), VkError> {
        crate::lockdep::might_block("vkWaitForFences (FrameFence::wait)");
        if self.done.load(Ordering::Acquire) {
            return Ok(());
        }
        let Some(fence) = self.fence else { return Ok(()) };
        unsafe { self.ctx.device.wait_for_fences(&[fence], true, u64::MAX) }.call("vkWaitForFences")?;
        self.done.store(true, Ordering::Release);
        Ok(())
    }
}

impl Fence for FrameFence {
    fn is_signaled(&self) -> bool {
        FrameFence::is_signaled(self)
    }
}

impl Drop for FrameFence {
    fn drop(&mut self) {
        if let Some(fence) = self.fence {
            unsafe { self.ctx.device.destroy_fence(fence, None) };
        }
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
    pub(crate) ctx: Arc<VkContext>,
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
    /// Asynchronous invalidation (locking rule B3, docs/locking-rules.md): a
    /// client that destroys its buffer or disconnects drops the compositor's
    /// reference to the imported texture at once; a frame still sampling it
    /// keeps its own `Arc` here, so the VkImage/VkDeviceMemory is freed only
    /// now, after the frame's fence signaled, from the loop. Such frees are
    /// counted ([`CommandRing::deferred_frees`]).
    pub fn retire(&mut self) {
        if self.in_flight.is_empty() {
            return;
        }
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

    /// Takes back a command buffer from [`CommandRing::begin`] that will not
    /// be submitted; [`CommandRing::begin`] resets it before reuse.
    pub fn recycle(&mut self, cmd: vk::CommandBuffer) {
        self.free.push(cmd);
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

    /// [`CommandRing::submit`] with wait and signal semaphores.
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
        // Empty lists stay null pointers (the validation layer flags a set
        // pointer with a zero count).
        let mut info = vk::SubmitInfo::default().command_buffers(&cmds);
        if !waits.is_empty() {
            info = info.wait_semaphores(waits).wait_dst_stage_mask(&stages);
        }
        if !signals.is_empty() {
            info = info.signal_semaphores(signals);
        }
        let submit = [info];
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
