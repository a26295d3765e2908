//! Pipeline barriers: layout transitions and the queue-family ownership
//! transfers of client memory.
//!
//! DOC: queue family ownership of imported memory
//!
//! Client memory (an imported image, or the imported buffer of the buffer
//! path) is acquired from the foreign (or external) queue family before each
//! use and released back after it, so the client's next writer sees our reads
//! finished (the barrier pairs of the Vulkan spec's "external memory"
//! chapter). An imported image is kept in GENERAL while the client owns it.

use ash::vk;

use super::VkContext;

/// The whole colour subresource of a single-level, single-layer image.
pub(crate) fn color_range() -> vk::ImageSubresourceRange {
    vk::ImageSubresourceRange {
        aspect_mask: vk::ImageAspectFlags::COLOR,
        base_mip_level: 0,
        level_count: 1,
        base_array_layer: 0,
        layer_count: 1,
    }
}

/// The layout a render target rests in between frames, and renders in.
/// CPU devices: GENERAL, the one layout in which the host may write a
/// LINEAR image, so the compositor thread can write a frame into a mapped
/// target itself (`super::host_frame`). Elsewhere COLOR_ATTACHMENT_OPTIMAL.
pub(crate) fn target_layout(ctx: &VkContext) -> vk::ImageLayout {
    if ctx.caps.device_type == vk::PhysicalDeviceType::CPU {
        vk::ImageLayout::GENERAL
    } else {
        vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL
    }
}

/// A layout transition of the whole image (no ownership transfer).
pub(crate) fn image_barrier<'a>(
    image: vk::Image,
    old: vk::ImageLayout,
    new: vk::ImageLayout,
) -> vk::ImageMemoryBarrier<'a> {
    vk::ImageMemoryBarrier::default()
        .image(image)
        .old_layout(old)
        .new_layout(new)
        .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
        .subresource_range(color_range())
}

/// `vkCmdPipelineBarrier` without memory barriers or dependency flags.
///
/// # Safety
/// `cmd` is a command buffer of `dev` in the recording state.
pub(crate) unsafe fn pipeline_barrier(
    dev: &ash::Device,
    cmd: vk::CommandBuffer,
    src: vk::PipelineStageFlags,
    dst: vk::PipelineStageFlags,
    images: &[vk::ImageMemoryBarrier<'_>],
    buffers: &[vk::BufferMemoryBarrier<'_>],
) {
    dev.cmd_pipeline_barrier(cmd, src, dst, vk::DependencyFlags::empty(), &[], buffers, images);
}

/// Acquires a client image from the foreign queue family for sampling:
/// GENERAL → SHADER_READ_ONLY_OPTIMAL.
pub(crate) fn acquire_client_image(ctx: &VkContext, cmd: vk::CommandBuffer, image: vk::Image) {
    let b = image_barrier(
        image,
        vk::ImageLayout::GENERAL,
        vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
    )
    .src_queue_family_index(ctx.caps.foreign_queue_family())
    .dst_queue_family_index(ctx.queue_family)
    .src_access_mask(vk::AccessFlags::empty())
    .dst_access_mask(vk::AccessFlags::SHADER_READ);
    // SAFETY: `cmd` is recording (the caller's frame).
    unsafe {
        pipeline_barrier(
            &ctx.device,
            cmd,
            vk::PipelineStageFlags::TOP_OF_PIPE,
            vk::PipelineStageFlags::FRAGMENT_SHADER,
            &[b],
            &[],
        )
    };
}

/// Releases a sampled client image back to the foreign queue family:
/// SHADER_READ_ONLY_OPTIMAL → GENERAL.
pub(crate) fn release_client_image(ctx: &VkContext, cmd: vk::CommandBuffer, image: vk::Image) {
    let b = image_barrier(
        image,
        vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
        vk::ImageLayout::GENERAL,
    )
    .src_queue_family_index(ctx.queue_family)
    .dst_queue_family_index(ctx.caps.foreign_queue_family())
    .src_access_mask(vk::AccessFlags::SHADER_READ)
    .dst_access_mask(vk::AccessFlags::empty());
    // SAFETY: `cmd` is recording (the caller's frame).
    unsafe {
        pipeline_barrier(
            &ctx.device,
            cmd,
            vk::PipelineStageFlags::FRAGMENT_SHADER,
            vk::PipelineStageFlags::BOTTOM_OF_PIPE,
            &[b],
            &[],
        )
    };
}

/// Acquires (`acquire`) a client buffer from the foreign queue family for a
/// transfer read, or releases it back after one.
pub(crate) fn transfer_client_buffer(ctx: &VkContext, cmd: vk::CommandBuffer, buffer: vk::Buffer, acquire: bool) {
    let foreign = ctx.caps.foreign_queue_family();
    let barrier = vk::BufferMemoryBarrier::default().buffer(buffer).size(vk::WHOLE_SIZE);
    let (barrier, src, dst) = if acquire {
        let b = barrier
            .src_queue_family_index(foreign)
            .dst_queue_family_index(ctx.queue_family)
            .dst_access_mask(vk::AccessFlags::TRANSFER_READ);
        (b, vk::PipelineStageFlags::TOP_OF_PIPE, vk::PipelineStageFlags::TRANSFER)
    } else {
        let b = barrier
            .src_queue_family_index(ctx.queue_family)
            .dst_queue_family_index(foreign)
            .src_access_mask(vk::AccessFlags::TRANSFER_READ);
        (
            b,
            vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::BOTTOM_OF_PIPE,
        )
    };
    // SAFETY: `cmd` is recording (the caller's frame).
    unsafe { pipeline_barrier(&ctx.device, cmd, src, dst, &[], &[barrier]) };
}

/// Takes a render target into [`target_layout`] before a frame. An
/// imported scan-out buffer (`foreign`) is acquired from the foreign queue
/// family, from GENERAL (UNDEFINED the first time: nothing to keep); the
/// frame waits for the previous frame's writes and read-backs of the target.
pub(crate) fn acquire_target(ctx: &VkContext, cmd: vk::CommandBuffer, image: vk::Image, foreign: bool, first: bool) {
    let old = match (first, foreign) {
        (true, _) => vk::ImageLayout::UNDEFINED,
        (false, true) => vk::ImageLayout::GENERAL,
        (false, false) => return,
    };
    let mut b = image_barrier(image, old, target_layout(ctx))
        .dst_access_mask(vk::AccessFlags::COLOR_ATTACHMENT_WRITE | vk::AccessFlags::COLOR_ATTACHMENT_READ);
    if foreign {
        b = b
            .src_queue_family_index(ctx.caps.foreign_queue_family())
            .dst_queue_family_index(ctx.queue_family);
    }
    // SAFETY: `cmd` is recording (the caller's frame).
    unsafe {
        pipeline_barrier(
            &ctx.device,
            cmd,
            vk::PipelineStageFlags::TOP_OF_PIPE,
            vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT,
            &[b],
            &[],
        )
    };
}

/// Releases an imported scan-out buffer to the foreign queue family after a
/// frame ([`target_layout`] → GENERAL), so the display engine reads
/// finished, visible pixels.
pub(crate) fn release_target(ctx: &VkContext, cmd: vk::CommandBuffer, image: vk::Image) {
    let b = image_barrier(image, target_layout(ctx), vk::ImageLayout::GENERAL)
        .src_queue_family_index(ctx.queue_family)
        .dst_queue_family_index(ctx.caps.foreign_queue_family())
        .src_access_mask(vk::AccessFlags::COLOR_ATTACHMENT_WRITE)
        .dst_access_mask(vk::AccessFlags::empty());
    // SAFETY: `cmd` is recording (the caller's frame).
    unsafe {
        pipeline_barrier(
            &ctx.device,
            cmd,
            vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT,
            vk::PipelineStageFlags::BOTTOM_OF_PIPE,
            &[b],
            &[],
        )
    };
}

/// Makes a frame's writes to a mapped target available to the host, which
/// may write the next frame itself (`super::host_frame`). Recorded at the
/// end of the frame, outside any render pass.
pub(crate) fn target_to_host(ctx: &VkContext, cmd: vk::CommandBuffer) {
    let writes = vk::MemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::COLOR_ATTACHMENT_WRITE | vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(vk::AccessFlags::HOST_READ | vk::AccessFlags::HOST_WRITE);
    let src = vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT | vk::PipelineStageFlags::TRANSFER;
    let none = vk::DependencyFlags::empty();
    // SAFETY: `cmd` is recording (the caller's frame).
    unsafe {
        ctx.device
            .cmd_pipeline_barrier(cmd, src, vk::PipelineStageFlags::HOST, none, &[writes], &[], &[])
    };
}
