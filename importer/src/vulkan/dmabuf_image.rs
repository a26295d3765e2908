//! Vulkan objects bound to a dma-buf's memory: the zero-copy image of a
//! client buffer, the imported buffer of the buffer path, and the image of a
//! scan-out buffer (`super::target`).
//!
//! DOC: how a dma-buf becomes a VkImage
//!
//! * With `VK_EXT_image_drm_format_modifier` the image is created with
//!   DRM_FORMAT_MODIFIER tiling and the buffer's modifier, offset and pitch
//!   given explicitly, so the driver uses the client's layout as it is.
//! * Without it (lavapipe on the host) only a LINEAR image can be tried, and
//!   only when the plane starts at offset 0, the driver reports LINEAR dma-buf
//!   images importable, and the driver's own row pitch equals the client's
//!   stride: otherwise the image would read the memory with another layout.
//! * The dma-buf's memory is then imported as a dedicated allocation
//!   (`super::memory::import_dmabuf_memory`, which dups the fd) and bound.
//!
//! When the image path does not fit, [`import_buffer`] imports the memory as
//! a VkBuffer that the texture copies from on the GPU (the buffer path).
//!
//! Locks: creating these objects is mapping work under the buffer's
//! reservation (locking rule B1, docs/locking-rules.md); nothing here waits.

use std::os::fd::AsFd;

use ash::vk;
use tracing::debug;

use super::memory::{import_dmabuf_memory, memory_plane_aspect, BufferAlloc, Dedicated, ImageAlloc};
use super::{VkContext, VkError, VkResultExt};
use crate::dmabuf::{fd_size, DmabufDesc};
use crate::format::FormatInfo;

pub(crate) use super::modifiers::SAMPLED_USAGE;

/// A 2D, single-level, exclusive image of `format`.
pub(crate) fn image_info<'a>(
    format: &FormatInfo,
    width: u32,
    height: u32,
    tiling: vk::ImageTiling,
    usage: vk::ImageUsageFlags,
) -> vk::ImageCreateInfo<'a> {
    vk::ImageCreateInfo::default()
        .image_type(vk::ImageType::TYPE_2D)
        .format(format.vk_format)
        .extent(vk::Extent3D {
            width,
            height,
            depth: 1,
        })
        .mip_levels(1)
        .array_layers(1)
        .samples(vk::SampleCountFlags::TYPE_1)
        .tiling(tiling)
        .usage(usage)
        .sharing_mode(vk::SharingMode::EXCLUSIVE)
        .initial_layout(vk::ImageLayout::UNDEFINED)
}

/// `vkCreateImage` for a dma-buf import: `with_modifier` (needs
/// `VK_EXT_image_drm_format_modifier`), DRM_FORMAT_MODIFIER tiling with the
/// buffer's modifier and every memory plane's offset and pitch given
/// explicitly, `disjoint` when the planes are bound separately; otherwise
/// LINEAR (single plane; the caller checks the pitch with
/// [`linear_pitch_mismatch`]). Client textures and scan-out targets both
/// come through here.
pub(crate) fn create_dmabuf_image(
    ctx: &VkContext,
    format: &FormatInfo,
    desc: &DmabufDesc,
    usage: vk::ImageUsageFlags,
    with_modifier: bool,
    disjoint: bool,
) -> Result<vk::Image, vk::Result> {
    let mut ext =
        vk::ExternalMemoryImageCreateInfo::default().handle_types(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
    let layouts: Vec<vk::SubresourceLayout> = desc
        .planes
        .iter()
        .map(|p| vk::SubresourceLayout {
            offset: u64::from(p.offset),
            size: 0,
            row_pitch: u64::from(p.stride),
            array_pitch: 0,
            depth_pitch: 0,
        })
        .collect();
    let mut explicit = vk::ImageDrmFormatModifierExplicitCreateInfoEXT::default()
        .drm_format_modifier(u64::from(desc.modifier))
        .plane_layouts(&layouts);
    let info = if with_modifier {
        let tiling = vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT;
        let flags = if disjoint {
            vk::ImageCreateFlags::DISJOINT
        } else {
            vk::ImageCreateFlags::empty()
        };
        image_info(format, desc.width, desc.height, tiling, usage)
            .flags(flags)
            .push_next(&mut ext)
            .push_next(&mut explicit)
    } else {
        image_info(format, desc.width, desc.height, vk::ImageTiling::LINEAR, usage).push_next(&mut ext)
    };
    // SAFETY: a valid create info; the caller owns (and destroys) the image.
    unsafe { ctx.device.create_image(&info, None) }
}

/// Whether the planes of `desc` live in more than one file, so that each
/// memory plane needs its own allocation (a disjoint image).
pub(crate) fn planes_in_several_files(desc: &DmabufDesc) -> bool {
    let key = |p: &crate::dmabuf::DmabufPlane| rustix::fs::fstat(&p.fd).ok().map(|s| (s.st_dev, s.st_ino));
    let first = desc.planes.first().map(key);
    desc.planes.iter().any(|p| Some(key(p)) != first || key(p).is_none())
}

/// For a LINEAR image: the driver's row pitch if it differs from `stride`
/// (or the image does not start at offset 0), so the dma-buf cannot back it
/// as laid out; `None` when it can.
pub(crate) fn linear_pitch_mismatch(ctx: &VkContext, image: vk::Image, stride: u32) -> Option<u64> {
    let sub = vk::ImageSubresource {
        aspect_mask: vk::ImageAspectFlags::COLOR,
        mip_level: 0,
        array_layer: 0,
    };
    // SAFETY: `image` is a live LINEAR image of this device.
    let layout = unsafe { ctx.device.get_image_subresource_layout(image, sub) };
    (layout.row_pitch != u64::from(stride) || layout.offset != 0).then_some(layout.row_pitch)
}

/// Whether the device imports LINEAR dma-buf images of `format` for sampling.
fn external_linear_importable(ctx: &VkContext, format: &FormatInfo) -> bool {
    let mut ext_info = vk::PhysicalDeviceExternalImageFormatInfo::default()
        .handle_type(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
    let info = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(format.vk_format)
        .ty(vk::ImageType::TYPE_2D)
        .tiling(vk::ImageTiling::LINEAR)
        .usage(SAMPLED_USAGE)
        .push_next(&mut ext_info);
    let mut ext_props = vk::ExternalImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2::default().push_next(&mut ext_props);
    // SAFETY: valid query structures for this instance's physical device.
    let ok = unsafe {
        ctx.instance
            .get_physical_device_image_format_properties2(ctx.physical, &info, &mut props)
    };
    ok.is_ok()
        && ext_props
            .external_memory_properties
            .external_memory_features
            .contains(vk::ExternalMemoryFeatureFlags::IMPORTABLE)
}

/// The zero-copy image path: a sampled VkImage bound to the client's memory.
/// `Ok(None)`: the device cannot use the client's layout as it is; take the
/// buffer path (LINEAR only).
pub(crate) fn import_image<'a>(
    ctx: &'a VkContext,
    desc: &DmabufDesc,
    format: &FormatInfo,
) -> Result<Option<ImageAlloc<'a>>, VkError> {
    if ctx.drm_format_modifier.is_some() {
        import_modifier_image(ctx, desc, format)
    } else {
        import_linear_image(ctx, desc, format)
    }
}

/// DRM_FORMAT_MODIFIER tiling: the client's modifier, offsets and pitches.
/// Planes in one file share one allocation; planes in several files make a
/// disjoint image with one allocation per memory plane, where the modifier
/// lists `DISJOINT`.
fn import_modifier_image<'a>(
    ctx: &'a VkContext,
    desc: &DmabufDesc,
    format: &FormatInfo,
) -> Result<Option<ImageAlloc<'a>>, VkError> {
    let disjoint = desc.planes.len() > 1 && planes_in_several_files(desc);
    if disjoint {
        let features = ctx.format_features(format.vk_format, Some(u64::from(desc.modifier)));
        if !features.is_some_and(|f| f.contains(vk::FormatFeatureFlags::DISJOINT)) {
            return Err(VkError::Unsupported(format!(
                "the planes of modifier {:#x} come in separate dma-bufs, and the device cannot bind them \
                 separately (no DISJOINT)",
                u64::from(desc.modifier)
            )));
        }
    }
    let image = match create_dmabuf_image(ctx, format, desc, SAMPLED_USAGE, true, disjoint) {
        Ok(i) => i,
        Err(result) => {
            debug!(?result, "modifier image rejected, trying the buffer path");
            return Ok(None);
        }
    };
    let mut alloc = ImageAlloc::new(ctx, image);
    if !disjoint {
        let reqs = unsafe { ctx.device.get_image_memory_requirements(image) };
        let memory = import_dmabuf_memory(ctx, desc.planes[0].fd.as_fd(), reqs, Dedicated::Image(image))?;
        alloc.bind(memory, "vkBindImageMemory(dma-buf)")?;
        return Ok(Some(alloc));
    }
    let mut memory = Vec::with_capacity(desc.planes.len());
    for (i, plane) in desc.planes.iter().enumerate() {
        let mut plane_info = vk::ImagePlaneMemoryRequirementsInfo::default().plane_aspect(memory_plane_aspect(i));
        let info = vk::ImageMemoryRequirementsInfo2::default()
            .image(image)
            .push_next(&mut plane_info);
        let mut reqs = vk::MemoryRequirements2::default();
        unsafe { ctx.device.get_image_memory_requirements2(&info, &mut reqs) };
        match import_dmabuf_memory(ctx, plane.fd.as_fd(), reqs.memory_requirements, Dedicated::None) {
            Ok(m) => memory.push(m),
            Err(e) => {
                for m in memory {
                    unsafe { ctx.device.free_memory(m, None) };
                }
                return Err(e);
            }
        }
    }
    alloc.bind_planes(memory)?;
    Ok(Some(alloc))
}

/// LINEAR tiling without the modifier extension: only a single plane at
/// offset 0 whose stride is the driver's own row pitch.
fn import_linear_image<'a>(
    ctx: &'a VkContext,
    desc: &DmabufDesc,
    format: &FormatInfo,
) -> Result<Option<ImageAlloc<'a>>, VkError> {
    let plane = &desc.planes[0];
    if !desc.is_linear() || desc.planes.len() != 1 || plane.offset != 0 || !external_linear_importable(ctx, format) {
        return Ok(None);
    }
    let image = create_dmabuf_image(ctx, format, desc, SAMPLED_USAGE, false, false).call("vkCreateImage(dma-buf)")?;
    let mut alloc = ImageAlloc::new(ctx, image);
    if let Some(driver_pitch) = linear_pitch_mismatch(ctx, image, plane.stride) {
        debug!(
            driver_pitch,
            client_stride = plane.stride,
            "linear pitch mismatch, buffer path"
        );
        return Ok(None);
    }
    let reqs = unsafe { ctx.device.get_image_memory_requirements(image) };
    let fd_len = fd_size(plane.fd.as_fd())?;
    if reqs.size > fd_len {
        debug!(
            need = reqs.size,
            have = fd_len,
            "image needs more memory than the dma-buf has, buffer path"
        );
        return Ok(None);
    }
    let memory = import_dmabuf_memory(ctx, plane.fd.as_fd(), reqs, Dedicated::Image(image))?;
    alloc.bind(memory, "vkBindImageMemory(dma-buf)")?;
    Ok(Some(alloc))
}

/// The buffer path's source: the client's memory as a VkBuffer, and where
/// the pixels lie in it.
pub(crate) struct ImportedBuffer<'a> {
    pub alloc: BufferAlloc<'a>,
    pub offset: u64,
    /// Stride in pixels (`vkCmdCopyBufferToImage`'s row length).
    pub row_length: u32,
}

/// Imports a LINEAR dma-buf's memory as a transfer-source VkBuffer (the
/// buffer path). Offset and stride must be whole pixels.
pub(crate) fn import_buffer<'a>(
    ctx: &'a VkContext,
    desc: &DmabufDesc,
    format: &FormatInfo,
) -> Result<ImportedBuffer<'a>, VkError> {
    let plane = &desc.planes[0];
    if plane.offset % format.bytes_per_pixel != 0 || plane.stride % format.bytes_per_pixel != 0 {
        return Err(VkError::Unsupported(format!(
            "buffer path needs offset ({}) and stride ({}) to be multiples of {} bytes",
            plane.offset, plane.stride, format.bytes_per_pixel
        )));
    }
    let fd_len = fd_size(plane.fd.as_fd())?;
    let mut ext =
        vk::ExternalMemoryBufferCreateInfo::default().handle_types(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
    let info = vk::BufferCreateInfo::default()
        .size(fd_len)
        .usage(vk::BufferUsageFlags::TRANSFER_SRC)
        .push_next(&mut ext);
    let buffer = unsafe { ctx.device.create_buffer(&info, None) }.call("vkCreateBuffer(dma-buf)")?;
    let mut alloc = BufferAlloc::new(ctx, buffer);
    let reqs = unsafe { ctx.device.get_buffer_memory_requirements(buffer) };
    let memory = import_dmabuf_memory(ctx, plane.fd.as_fd(), reqs, Dedicated::Buffer(buffer))?;
    alloc.bind(memory, "vkBindBufferMemory(dma-buf)")?;
    Ok(ImportedBuffer {
        alloc,
        offset: u64::from(plane.offset),
        row_length: plane.stride / format.bytes_per_pixel,
    })
}
