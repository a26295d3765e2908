//! Render targets (the headless output's offscreen image, the DRM backend's
//! imported scan-out buffers) and read-backs.

use std::sync::{Arc, Mutex};

use ash::vk;

use std::os::fd::AsFd;

use super::barrier::color_range;
use super::dmabuf_image::{create_dmabuf_image, image_info, linear_pitch_mismatch};
use super::host_frame::TargetMapping;
use super::memory::{import_dmabuf_memory, Dedicated, HostBuffer, ImageAlloc};
use super::ring::FrameFence;
use super::{Region, VkContext, VkError, VkResultExt};
use crate::dmabuf::DmabufDesc;
use crate::format::FormatInfo;

/// What an offscreen target is used for: rendering, read-backs and copies.
const OFFSCREEN_USAGE: vk::ImageUsageFlags = vk::ImageUsageFlags::from_raw(
    vk::ImageUsageFlags::COLOR_ATTACHMENT.as_raw()
        | vk::ImageUsageFlags::TRANSFER_SRC.as_raw()
        | vk::ImageUsageFlags::TRANSFER_DST.as_raw(),
);

/// A colour attachment the compositor renders into.
pub struct Target {
    ctx: Arc<VkContext>,
    pub width: u32,
    pub height: u32,
    pub format: FormatInfo,
    pub image: vk::Image,
    view: vk::ImageView,
    memory: vk::DeviceMemory,
    /// Framebuffers by render pass (one per pipeline format, usually one).
    framebuffers: Mutex<Vec<(vk::RenderPass, vk::Framebuffer)>>,
    /// Whether the image has left `UNDEFINED` (first frame transitions it).
    pub(crate) initialized: std::sync::atomic::AtomicBool,
    /// Imported scan-out memory: acquired from the foreign queue family
    /// before each frame and released to it after (`super::barrier`).
    pub(crate) foreign: bool,
    /// The host's mapping of the image, when the compositor thread may
    /// write frames into it (`super::host_frame`); it owns `memory` then.
    pub(crate) host: Option<Arc<TargetMapping>>,
    /// Counted in [`super::census`].
    _live: super::census::Live,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("size", &(self.width, self.height))
            .field("format", &self.format.fourcc)
            .finish()
    }
}

/// The tilings a scan-out buffer can be rendered in, in the order to try:
/// the compositor blends client windows, so the image needs COLOR_ATTACHMENT
/// and COLOR_ATTACHMENT_BLEND. `false`: LINEAR tiling (a LINEAR buffer at
/// offset 0), tried first for LINEAR buffers because it is the same memory
/// layout and the one every driver and the validation layer know the
/// features of (measured in the VM: lavapipe lists the LINEAR modifier with
/// COLOR_ATTACHMENT_BLEND in `VkDrmFormatModifierPropertiesListEXT`, but
/// returns an empty `...List2EXT`, from which the Khronos validation layer
/// 1.3.239 derives no features and reports VUID-vkCmdDraw-blendEnable-04727).
/// `true`: DRM_FORMAT_MODIFIER tiling with the buffer's modifier. The
/// features are asked of the device rather than assumed.
fn scanout_tilings(ctx: &VkContext, format: &FormatInfo, desc: &DmabufDesc) -> Result<Vec<bool>, VkError> {
    let need = super::modifiers::SCANOUT_FEATURES;
    let modifier = u64::from(desc.modifier);
    let mut out = Vec::new();
    let linear = ctx.format_features(format.vk_format, None).unwrap_or_default();
    if desc.is_linear() && desc.planes[0].offset == 0 && linear.contains(need) {
        out.push(false);
    }
    let with_modifier = ctx.drm_format_modifier.is_some()
        && ctx
            .format_features(format.vk_format, Some(modifier))
            .is_some_and(|f| f.contains(need));
    if with_modifier {
        out.push(true);
    }
    if out.is_empty() {
        return Err(VkError::Unsupported(format!(
            "{:?} with modifier {modifier:#x}: no tiling the device can render and blend into \
             (modifier features: {:?}, LINEAR features: {linear:?})",
            format.fourcc,
            ctx.drm_format_modifier
                .as_ref()
                .and_then(|_| ctx.format_features(format.vk_format, Some(modifier))),
        )));
    }
    Ok(out)
}

/// The scan-out image of `desc` in one tiling, bound to the dma-buf.
fn import_scanout_image<'a>(
    ctx: &'a VkContext,
    format: &FormatInfo,
    desc: &DmabufDesc,
    with_modifier: bool,
) -> Result<ImageAlloc<'a>, VkError> {
    let plane = &desc.planes[0];
    let image = create_dmabuf_image(ctx, format, desc, super::modifiers::SCANOUT_USAGE, with_modifier, false)
        .call("vkCreateImage(scan-out dma-buf)")?;
    let mut alloc = ImageAlloc::new(ctx, image);
    let reqs = unsafe { ctx.device.get_image_memory_requirements(image) };
    if !with_modifier {
        if let Some(driver_pitch) = linear_pitch_mismatch(ctx, image, plane.stride) {
            return Err(VkError::Unsupported(format!(
                "LINEAR row pitch {driver_pitch} != scan-out pitch {}",
                plane.stride
            )));
        }
        let fd_len = crate::dmabuf::fd_size(plane.fd.as_fd())?;
        if reqs.size > fd_len {
            return Err(VkError::Unsupported(format!(
                "image needs {} bytes, the scan-out buffer has {fd_len}",
                reqs.size
            )));
        }
    }
    let memory = import_dmabuf_memory(ctx, plane.fd.as_fd(), reqs, Dedicated::Image(image))?;
    alloc.bind(memory, "vkBindImageMemory(scan-out dma-buf)")?;
    Ok(alloc)
}

impl Target {
    /// Imports a scan-out buffer (a single-plane dma-buf the compositor
    /// allocated: GBM bo or PRIME-exported dumb buffer) as a colour
    /// attachment, zero-copy: the image is bound to the dma-buf's memory,
    /// in the first tiling of [`scanout_tilings`] that takes it. Anything the
    /// device cannot render into is [`VkError::Unsupported`] and the caller
    /// renders offscreen and copies.
    pub fn import_dmabuf(ctx: &Arc<VkContext>, format: FormatInfo, desc: &DmabufDesc) -> Result<Target, VkError> {
        if desc.planes.len() != 1 {
            return Err(VkError::Unsupported(format!(
                "scan-out buffer with {} planes",
                desc.planes.len()
            )));
        }
        let mut last = None;
        for with_modifier in scanout_tilings(ctx, &format, desc)? {
            match import_scanout_image(ctx, &format, desc, with_modifier) {
                Ok(alloc) => {
                    tracing::info!(
                        tiling = if with_modifier { "drm-format-modifier" } else { "linear" },
                        modifier = format_args!("{:#x}", u64::from(desc.modifier)),
                        "imported a scan-out buffer as a colour attachment"
                    );
                    // On error `alloc` still owns image and memory and frees them.
                    let size = (desc.width, desc.height);
                    let mut target = Target::assemble(ctx, format, size, alloc.image, alloc.memory[0])?;
                    let _owned_by_target = alloc.into_raw();
                    target.foreign = true;
                    return Ok(target);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one tiling was tried"))
    }

    /// An offscreen render target: on a CPU device one the host may write
    /// ([`Target::new_mapped`]) where the format allows, else OPTIMAL
    /// tiling in device-local memory.
    pub fn new(ctx: &Arc<VkContext>, format: FormatInfo, width: u32, height: u32) -> Result<Target, VkError> {
        if ctx.caps.device_type == vk::PhysicalDeviceType::CPU {
            match Target::new_mapped(ctx, format, width, height) {
                Ok(target) => return Ok(target),
                Err(e) => tracing::info!(
                    format = ?format.fourcc,
                    "no host-mapped render target ({e}); frames are all submitted to the device"
                ),
            }
        }
        let info = image_info(&format, width, height, vk::ImageTiling::OPTIMAL, OFFSCREEN_USAGE);
        let image = unsafe { ctx.device.create_image(&info, None) }.call("vkCreateImage(target)")?;
        let mut alloc = ImageAlloc::new(ctx, image);
        alloc.allocate_and_bind("render target")?;
        // On error `alloc` still owns image and memory and frees them.
        let target = Target::assemble(ctx, format, (width, height), alloc.image, alloc.memory[0])?;
        let _owned_by_target = alloc.into_raw();
        Ok(target)
    }

    /// An offscreen target the host may write: LINEAR tiling (the only one
    /// whose bytes the host may address) in host-visible coherent memory,
    /// mapped once for its lifetime. Rendering into it needs the LINEAR
    /// tiling to support colour attachment, blending and transfers.
    fn new_mapped(ctx: &Arc<VkContext>, format: FormatInfo, width: u32, height: u32) -> Result<Target, VkError> {
        let need = super::modifiers::SCANOUT_FEATURES
            | vk::FormatFeatureFlags::TRANSFER_SRC
            | vk::FormatFeatureFlags::TRANSFER_DST;
        let linear = ctx.format_features(format.vk_format, None).unwrap_or_default();
        if !linear.contains(need) {
            return Err(VkError::Unsupported(format!("LINEAR tiling has {linear:?}")));
        }
        let info = image_info(&format, width, height, vk::ImageTiling::LINEAR, OFFSCREEN_USAGE);
        let image = unsafe { ctx.device.create_image(&info, None) }.call("vkCreateImage(mapped target)")?;
        let mut alloc = ImageAlloc::new(ctx, image);
        let memory = alloc.allocate_host_and_bind("mapped render target")?;
        let color = vk::ImageSubresource {
            aspect_mask: vk::ImageAspectFlags::COLOR,
            mip_level: 0,
            array_layer: 0,
        };
        let layout = unsafe { ctx.device.get_image_subresource_layout(image, color) };
        let size = (width, height, format.bytes_per_pixel as usize);
        let mapping = TargetMapping::new(ctx, memory, size, layout)?;
        // The mapping owns the memory from here on; the image is ours.
        let (image, _memory) = alloc.into_raw();
        let mut target = Target::assemble(ctx, format, (width, height), image, memory).inspect_err(|_| unsafe {
            ctx.device.destroy_image(image, None);
        })?;
        target.host = Some(Arc::new(mapping));
        Ok(target)
    }

    /// A target around a bound image: creates its view. On error the
    /// caller still owns `image` and `memory`.
    fn assemble(
        ctx: &Arc<VkContext>,
        format: FormatInfo,
        (width, height): (u32, u32),
        image: vk::Image,
        memory: vk::DeviceMemory,
    ) -> Result<Target, VkError> {
        // The output shows the stored bytes as they are: no swizzle on targets.
        let view_info = vk::ImageViewCreateInfo::default()
            .image(image)
            .view_type(vk::ImageViewType::TYPE_2D)
            .format(format.vk_format)
            .subresource_range(color_range());
        let view = unsafe { ctx.device.create_image_view(&view_info, None) }.call("vkCreateImageView(target)")?;
        Ok(Target {
            ctx: ctx.clone(),
            width,
            height,
            format,
            image,
            view,
            memory,
            framebuffers: Mutex::new(Vec::new()),
            initialized: std::sync::atomic::AtomicBool::new(false),
            foreign: false,
            host: None,
            _live: super::census::Live::new(super::census::Kind::Target),
        })
    }

    /// The framebuffer of this target for `render_pass`, created on first use.
    pub(crate) fn framebuffer(&self, render_pass: vk::RenderPass) -> Result<vk::Framebuffer, VkError> {
        let mut fbs = self.framebuffers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, fb)) = fbs.iter().find(|(rp, _)| *rp == render_pass) {
            return Ok(*fb);
        }
        let views = [self.view];
        let info = vk::FramebufferCreateInfo::default()
            .render_pass(render_pass)
            .attachments(&views)
            .width(self.width)
            .height(self.height)
            .layers(1);
        let fb = unsafe { self.ctx.device.create_framebuffer(&info, None) }.call("vkCreateFramebuffer")?;
        fbs.push((render_pass, fb));
        Ok(fb)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // Frames that render into a target finish before it is dropped: the
        // compositor drops targets only at teardown or after their last fence.
        self.ctx.wait_idle_for_teardown();
        let dev = &self.ctx.device;
        unsafe {
            for (_, fb) in self.framebuffers.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
                dev.destroy_framebuffer(fb, None);
            }
            dev.destroy_image_view(self.view, None);
            dev.destroy_image(self.image, None);
            // A mapped target's memory belongs to its mapping, freed with
            // the last reference to it.
            if self.host.is_none() {
                dev.free_memory(self.memory, None);
            }
        }
    }
}

/// Pixels copied off the GPU; ready once `fence` signals.
pub struct Readback {
    pub(crate) buffer: HostBuffer,
    pub fence: Arc<FrameFence>,
    pub region: Region,
    pub format: FormatInfo,
}

impl std::fmt::Debug for Readback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readback")
            .field("region", &self.region)
            .field("format", &self.format.fourcc)
            .finish()
    }
}

impl Readback {
    /// Blocks until the copy is done, then returns tightly packed rows in the
    /// source format's byte order. Blocking: never call with a reservation held
    /// or on a hot path of the event loop (screenshots and tests only).
    pub fn wait_bytes(&self) -> Result<&[u8], VkError> {
        crate::lockdep::might_block("Readback::wait_bytes");
        self.fence.wait()?;
        let len = self.region.width as usize * self.region.height as usize * self.format.bytes_per_pixel as usize;
        Ok(&self.buffer.bytes()[..len])
    }
}
