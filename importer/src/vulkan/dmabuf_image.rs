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
//!   A multi-planar (YUV) image is then created DISJOINT and each plane is
//!   bound to its own import of its fd at the client's offset, when the
//!   offset meets the plane's alignment and the driver's pitch of that plane
//!   is the client's stride.
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

use super::memory::{
    format_plane_aspect, import_dmabuf_memory, memory_plane_aspect, BufferAlloc, Dedicated, ImageAlloc,
};
use super::{VkContext, VkError, VkResultExt};
use crate::dmabuf::{fd_size, DmabufDesc};
use crate::format::FormatInfo;

pub(crate) use super::modifiers::{SAMPLED_USAGE, YCBCR_USAGE};

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
/// explicitly; otherwise LINEAR (the caller checks the pitch with
/// [`linear_pitch_mismatch`]). `disjoint` when the planes are bound
/// separately. Client textures and scan-out targets both
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
    let flags = if disjoint {
        vk::ImageCreateFlags::DISJOINT
    } else {
        vk::ImageCreateFlags::empty()
    };
    let info = if with_modifier {
        let tiling = vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT;
        image_info(format, desc.width, desc.height, tiling, usage)
            .flags(flags)
            .push_next(&mut ext)
            .push_next(&mut explicit)
    } else {
        image_info(format, desc.width, desc.height, vk::ImageTiling::LINEAR, usage)
            .flags(flags)
            .push_next(&mut ext)
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
///
/// `format` is the image's: for YUV its [`FormatInfo::planar`] form, sampled
/// only ([`YCBCR_USAGE`]). `explicit_layout`: DRM_FORMAT_MODIFIER tiling with
/// the client's layouts (the negotiated entry says; needs the extension),
/// else LINEAR in the driver's layout.
pub(crate) fn import_image<'a>(
    ctx: &'a VkContext,
    desc: &DmabufDesc,
    format: &FormatInfo,
    explicit_layout: bool,
) -> Result<Option<ImageAlloc<'a>>, VkError> {
    let usage = if format.yuv { YCBCR_USAGE } else { SAMPLED_USAGE };
    if explicit_layout && ctx.drm_format_modifier.is_some() {
        import_modifier_image(ctx, desc, format, usage)
    } else if desc.planes.len() > 1 {
        import_linear_planes(ctx, desc, format, usage)
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
    usage: vk::ImageUsageFlags,
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
    let image = match create_dmabuf_image(ctx, format, desc, usage, true, disjoint) {
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

/// LINEAR tiling without the modifier extension, several planes (YUV).
/// Planes in one fd: one image bound once, at the first plane's offset,
/// when every plane lies where the driver puts it relative to the first.
/// Planes in several fds: a DISJOINT image whose plane `i` is bound to its
/// own import of plane `i`'s fd at the client's offset. Either way every
/// plane's stride must be the driver's pitch and the fd must hold what the
/// driver's memory requirements say. `None` (the caller's fallback) where
/// the driver lays the planes out otherwise than the client did.
fn import_linear_planes<'a>(
    ctx: &'a VkContext,
    desc: &DmabufDesc,
    format: &FormatInfo,
    usage: vk::ImageUsageFlags,
) -> Result<Option<ImageAlloc<'a>>, VkError> {
    if !desc.is_linear() {
        return Ok(None);
    }
    let disjoint = planes_in_several_files(desc);
    let image =
        create_dmabuf_image(ctx, format, desc, usage, false, disjoint).call("vkCreateImage(dma-buf, planes)")?;
    let mut alloc = ImageAlloc::new(ctx, image);
    let base = u64::from(desc.planes[0].offset);
    // Pitches first; a single binding's plane offsets are checked once bound
    // (lavapipe reports them only then).
    let check = if disjoint {
        PlaneCheck::PitchesAndOwnBindings
    } else {
        PlaneCheck::Pitches
    };
    if !planes_laid_out_as_sent(ctx, image, desc, check) {
        return Ok(None);
    }
    let planes: Vec<(usize, u64)> = if disjoint {
        (0..desc.planes.len())
            .map(|i| (i, u64::from(desc.planes[i].offset)))
            .collect()
    } else {
        vec![(0, base)]
    };
    let mut memory = Vec::with_capacity(planes.len());
    let free = |memory: Vec<(vk::DeviceMemory, u64)>| {
        for (m, _) in memory {
            unsafe { ctx.device.free_memory(m, None) };
        }
    };
    for (i, offset) in planes {
        let mut reqs = if disjoint {
            let mut plane_info = vk::ImagePlaneMemoryRequirementsInfo::default().plane_aspect(format_plane_aspect(i));
            let info = vk::ImageMemoryRequirementsInfo2::default()
                .image(image)
                .push_next(&mut plane_info);
            let mut reqs = vk::MemoryRequirements2::default();
            unsafe { ctx.device.get_image_memory_requirements2(&info, &mut reqs) };
            reqs.memory_requirements
        } else {
            unsafe { ctx.device.get_image_memory_requirements(image) }
        };
        let fd = desc.planes[i].fd.as_fd();
        let fd_len = fd_size(fd)?;
        if offset % reqs.alignment.max(1) != 0 || offset + reqs.size > fd_len {
            debug!(
                plane = i,
                offset,
                alignment = reqs.alignment,
                need = reqs.size,
                have = fd_len,
                "the plane's memory is misaligned or smaller than the driver needs; no zero-copy image"
            );
            free(memory);
            return Ok(None);
        }
        // The import covers the fd from its start; the plane is bound at its offset.
        reqs.size += offset;
        match import_dmabuf_memory(ctx, fd, reqs, Dedicated::None) {
            Ok(m) => memory.push((m, offset)),
            Err(e) => {
                free(memory);
                return Err(e);
            }
        }
    }
    if disjoint {
        alloc.bind_planes_at(memory, format_plane_aspect)?;
    } else {
        let (m, offset) = memory[0];
        alloc.bind_at(m, offset, "vkBindImageMemory(dma-buf, planes)")?;
        if !planes_laid_out_as_sent(ctx, image, desc, PlaneCheck::OffsetsFrom(base)) {
            return Ok(None);
        }
    }
    Ok(Some(alloc))
}

/// What [`planes_laid_out_as_sent`] compares with the client's layout.
#[derive(Debug, Clone, Copy)]
enum PlaneCheck {
    /// Every plane's row pitch is the client's stride.
    Pitches,
    /// That, and every plane starts its own binding (a disjoint image).
    PitchesAndOwnBindings,
    /// Every plane lies at the client's offset: this base (where the image
    /// is bound) plus the driver's offset of the plane.
    OffsetsFrom(u64),
}

/// Whether every plane of LINEAR `image` is where `desc` says, as far as
/// `check` looks.
fn planes_laid_out_as_sent(ctx: &VkContext, image: vk::Image, desc: &DmabufDesc, check: PlaneCheck) -> bool {
    desc.planes.iter().enumerate().all(|(i, plane)| {
        let sub = vk::ImageSubresource {
            aspect_mask: format_plane_aspect(i),
            mip_level: 0,
            array_layer: 0,
        };
        // SAFETY: `image` is a live LINEAR image of this device.
        let layout = unsafe { ctx.device.get_image_subresource_layout(image, sub) };
        let pitch = layout.row_pitch == u64::from(plane.stride);
        let fits = match check {
            PlaneCheck::Pitches => pitch,
            PlaneCheck::PitchesAndOwnBindings => pitch && layout.offset == 0,
            PlaneCheck::OffsetsFrom(base) => base + layout.offset == u64::from(plane.offset),
        };
        if !fits {
            debug!(
                plane = i,
                driver_pitch = layout.row_pitch,
                driver_offset = layout.offset,
                client_stride = plane.stride,
                client_offset = plane.offset,
                "the driver lays this plane out otherwise; no zero-copy image"
            );
        }
        fits
    })
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
