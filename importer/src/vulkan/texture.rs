//! Sampled images: imported client dma-bufs and compositor-owned images.
//!
//! DOC: import paths
//!
//! 1. **Image path (zero-copy).** The client's dma-buf memory is imported as a
//!    dedicated allocation and bound to a VkImage whose layout matches the
//!    client's: with `VK_EXT_image_drm_format_modifier` the image is created
//!    with the client's modifier, offset and pitch; without it (lavapipe) a
//!    LINEAR image is used only if the driver's row pitch equals the client's
//!    stride and the plane starts at offset 0.
//! 2. **Buffer path (GPU copy, no CPU copy).** Otherwise the memory is imported
//!    as a VkBuffer and copied into a compositor image with
//!    `vkCmdCopyBufferToImage` (row length = stride / bpp, offset = the plane's
//!    offset) at the start of the next frame that samples it, and again after
//!    every commit of the buffer.
//!
//! DOC: ownership and lifetime
//!
//! A [`Texture`] holds an `Arc<VkContext>` and frees its Vulkan objects on drop.
//! A client buffer's texture is created under its reservation and installed
//! there as the GPU import (`crate::vulkan::client_buffer`); the constructors
//! for imports therefore return a `Texture` by value, which the guard wraps.
//! Frames in flight hold an `Arc<Texture>` until their fence signals, and the
//! reservation's dead list holds one until the fences recorded on it signal,
//! so a client destroying its buffer never frees memory the GPU still reads.
//!
//! DOC: queue family ownership of imported memory
//!
//! Imported images and buffers are acquired from the foreign (or external)
//! queue family, layout GENERAL, before each use and released back after it,
//! so the client's next writer sees our reads finished (the barrier pairs of
//! the Vulkan spec's "external memory" chapter).

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ash::vk;
use tracing::debug;

use super::memory::{import_dmabuf_memory, Dedicated, HostBuffer};
use super::yuv::{Nv12Params, Nv12Pipeline};
use super::{VkContext, VkError, VkResultExt};
use crate::dmabuf::{fd_size, DmabufDesc};
use crate::format::FormatInfo;
use crate::stats::ImportPath;

/// A rectangle in buffer pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Region {
    /// Clamps to a `width`×`height` image; `None` if nothing is left.
    pub fn clamp(self, width: u32, height: u32) -> Option<Region> {
        let x1 = self.x.saturating_add(self.width).min(width);
        let y1 = self.y.saturating_add(self.height).min(height);
        (self.x < x1 && self.y < y1).then(|| Region {
            x: self.x,
            y: self.y,
            width: x1 - self.x,
            height: y1 - self.y,
        })
    }
}

/// The imported buffer of the buffer path.
struct DmabufSource {
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    offset: u64,
    row_length: u32,
}

enum CopySource {
    Staging(HostBuffer),
    Dmabuf,
    /// Both NV12 planes in a storage buffer; converted by a compute dispatch.
    Nv12(HostBuffer, Nv12Params),
}

/// A copy into the texture recorded at its next use.
struct PendingCopy {
    src: CopySource,
    regions: Vec<vk::BufferImageCopy>,
}

/// Pixels copied into a staging buffer, ready to be queued on a texture of
/// the same format and size ([`Texture::queue_staged`]). `Send`: the copy may
/// run on a worker thread.
pub struct StagedUpload {
    /// `None`: the region was empty after clamping; nothing to upload.
    staged: Option<Staged>,
}

enum Staged {
    Copy(HostBuffer, vk::BufferImageCopy),
    Nv12(HostBuffer, Nv12Params),
}

impl std::fmt::Debug for StagedUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedUpload")
            .field("bytes", &self.len())
            .finish_non_exhaustive()
    }
}

impl StagedUpload {
    /// Copies `region` of `data` (rows of `stride` bytes, whole-image rows of a
    /// `size` image in `format`) into a fresh staging buffer.
    ///
    /// Locks: none may be a reservation when `data` is client memory (it runs
    /// inside the CPU access bracket, rule B2/B6). Allocates; never waits.
    pub fn copy(
        ctx: &Arc<VkContext>,
        format: FormatInfo,
        (width, height): (u32, u32),
        data: &[u8],
        stride: usize,
        region: Region,
    ) -> Result<StagedUpload, VkError> {
        let Some(r) = region.clamp(width, height) else {
            return Ok(StagedUpload { staged: None });
        };
        let bpp = format.bytes_per_pixel as usize;
        let row_bytes = r.width as usize * bpp;
        let last = (r.y + r.height - 1) as usize * stride + r.x as usize * bpp + row_bytes;
        if last > data.len() || stride < width as usize * bpp {
            return Err(VkError::Unsupported(format!(
                "upload of {} bytes with stride {stride} is too small",
                data.len()
            )));
        }
        let mut staging = HostBuffer::new(ctx, row_bytes * r.height as usize, vk::BufferUsageFlags::TRANSFER_SRC)?;
        let dst = staging.bytes_mut();
        if r.x == 0 && row_bytes == stride {
            let src = r.y as usize * stride;
            dst[..row_bytes * r.height as usize].copy_from_slice(&data[src..src + row_bytes * r.height as usize]);
        } else {
            for row in 0..r.height as usize {
                let src = (r.y as usize + row) * stride + r.x as usize * bpp;
                dst[row * row_bytes..(row + 1) * row_bytes].copy_from_slice(&data[src..src + row_bytes]);
            }
        }
        Ok(StagedUpload {
            staged: Some(Staged::Copy(staging, buffer_image_copy(0, r.width, r, 0))),
        })
    }

    /// Bytes in the staging buffer.
    pub fn len(&self) -> usize {
        match &self.staged {
            Some(Staged::Copy(b, _) | Staged::Nv12(b, _)) => b.size,
            None => 0,
        }
    }

    /// An NV12 upload: `buffer` (with `STORAGE_BUFFER` usage) holds both
    /// planes as `params` says; the texture converts it on the GPU
    /// ([`Texture::new_nv12_target`]).
    pub fn nv12(buffer: HostBuffer, params: Nv12Params) -> StagedUpload {
        StagedUpload {
            staged: Some(Staged::Nv12(buffer, params)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A sampled image plus the descriptor set that binds it.
pub struct Texture {
    ctx: Arc<VkContext>,
    pub width: u32,
    pub height: u32,
    pub format: FormatInfo,
    pub path: ImportPath,
    pub image: vk::Image,
    view: vk::ImageView,
    memory: vk::DeviceMemory,
    /// The image itself is client memory (image path).
    external: bool,
    source: Option<DmabufSource>,
    pending: Mutex<Vec<PendingCopy>>,
    initialized: AtomicBool,
    pool: vk::DescriptorPool,
    pub descriptor_set: vk::DescriptorSet,
    /// SYNC (issue 4): dup'd fds of the client dma-buf's planes, for its
    /// implicit fences (READ export before sampling, READ import after).
    dmabuf_fds: std::sync::OnceLock<Vec<std::os::fd::OwnedFd>>,
    /// NV12 targets: the conversion pipeline (the image has STORAGE usage).
    nv12: Option<Arc<Nv12Pipeline>>,
}

impl std::fmt::Debug for Texture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Texture")
            .field("size", &(self.width, self.height))
            .field("format", &self.format.fourcc)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Vulkan objects under construction; destroyed on drop unless taken.
struct Parts<'a> {
    ctx: &'a VkContext,
    image: vk::Image,
    view: vk::ImageView,
    memory: vk::DeviceMemory,
    buffer: vk::Buffer,
    buffer_memory: vk::DeviceMemory,
}

impl<'a> Parts<'a> {
    fn new(ctx: &'a VkContext) -> Self {
        Parts {
            ctx,
            image: vk::Image::null(),
            view: vk::ImageView::null(),
            memory: vk::DeviceMemory::null(),
            buffer: vk::Buffer::null(),
            buffer_memory: vk::DeviceMemory::null(),
        }
    }

    fn take(mut self) -> (vk::Image, vk::ImageView, vk::DeviceMemory, vk::Buffer, vk::DeviceMemory) {
        let out = (self.image, self.view, self.memory, self.buffer, self.buffer_memory);
        self.image = vk::Image::null();
        self.view = vk::ImageView::null();
        self.memory = vk::DeviceMemory::null();
        self.buffer = vk::Buffer::null();
        self.buffer_memory = vk::DeviceMemory::null();
        out
    }
}

impl Drop for Parts<'_> {
    fn drop(&mut self) {
        unsafe {
            destroy(
                &self.ctx.device,
                self.image,
                self.view,
                self.memory,
                self.buffer,
                self.buffer_memory,
            )
        };
    }
}

unsafe fn destroy(
    dev: &ash::Device,
    image: vk::Image,
    view: vk::ImageView,
    memory: vk::DeviceMemory,
    buffer: vk::Buffer,
    buffer_memory: vk::DeviceMemory,
) {
    if view != vk::ImageView::null() {
        dev.destroy_image_view(view, None);
    }
    if image != vk::Image::null() {
        dev.destroy_image(image, None);
    }
    if memory != vk::DeviceMemory::null() {
        dev.free_memory(memory, None);
    }
    if buffer != vk::Buffer::null() {
        dev.destroy_buffer(buffer, None);
    }
    if buffer_memory != vk::DeviceMemory::null() {
        dev.free_memory(buffer_memory, None);
    }
}

/// `vkCreateImage` for a single-plane dma-buf import: `with_modifier`
/// (needs `VK_EXT_image_drm_format_modifier`), DRM_FORMAT_MODIFIER tiling
/// with the buffer's modifier, offset and pitch given explicitly; otherwise
/// LINEAR (the caller checks the pitch with [`linear_pitch_mismatch`]).
/// Client textures and scan-out targets both come through here.
pub(crate) fn create_dmabuf_image(
    ctx: &VkContext,
    format: &FormatInfo,
    desc: &DmabufDesc,
    usage: vk::ImageUsageFlags,
    with_modifier: bool,
) -> Result<vk::Image, vk::Result> {
    let plane = &desc.planes[0];
    let mut ext =
        vk::ExternalMemoryImageCreateInfo::default().handle_types(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
    let layouts = [vk::SubresourceLayout {
        offset: u64::from(plane.offset),
        size: 0,
        row_pitch: u64::from(plane.stride),
        array_pitch: 0,
        depth_pitch: 0,
    }];
    let mut explicit = vk::ImageDrmFormatModifierExplicitCreateInfoEXT::default()
        .drm_format_modifier(u64::from(desc.modifier))
        .plane_layouts(&layouts);
    let info = if with_modifier {
        let tiling = vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT;
        image_info(format, desc.width, desc.height, tiling, usage)
            .push_next(&mut ext)
            .push_next(&mut explicit)
    } else {
        image_info(format, desc.width, desc.height, vk::ImageTiling::LINEAR, usage).push_next(&mut ext)
    };
    // SAFETY: a valid create info; the caller owns (and destroys) the image.
    unsafe { ctx.device.create_image(&info, None) }
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

const SAMPLED_USAGE: vk::ImageUsageFlags =
    vk::ImageUsageFlags::from_raw(vk::ImageUsageFlags::SAMPLED.as_raw() | vk::ImageUsageFlags::TRANSFER_SRC.as_raw());

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

fn create_view(ctx: &VkContext, image: vk::Image, format: &FormatInfo) -> Result<vk::ImageView, VkError> {
    let info = vk::ImageViewCreateInfo::default()
        .image(image)
        .view_type(vk::ImageViewType::TYPE_2D)
        .format(format.vk_format)
        .components(format.swizzle())
        .subresource_range(color_range());
    unsafe { ctx.device.create_image_view(&info, None) }.call("vkCreateImageView")
}

pub(crate) fn color_range() -> vk::ImageSubresourceRange {
    vk::ImageSubresourceRange {
        aspect_mask: vk::ImageAspectFlags::COLOR,
        base_mip_level: 0,
        level_count: 1,
        base_array_layer: 0,
        layer_count: 1,
    }
}

/// Tries the zero-copy image path; `Ok(false)` means "take the buffer path".
fn try_image_path(
    ctx: &VkContext,
    desc: &DmabufDesc,
    format: &FormatInfo,
    parts: &mut Parts<'_>,
) -> Result<bool, VkError> {
    let plane = &desc.planes[0];
    let fd_len = fd_size(plane.fd.as_fd())?;
    let with_modifier = ctx.drm_format_modifier.is_some();
    let image = if with_modifier {
        match create_dmabuf_image(ctx, format, desc, SAMPLED_USAGE, true) {
            Ok(i) => i,
            Err(result) => {
                debug!(?result, "modifier image rejected, trying the buffer path");
                return Ok(false);
            }
        }
    } else {
        if !desc.is_linear() || plane.offset != 0 || !external_linear_importable(ctx, format) {
            return Ok(false);
        }
        create_dmabuf_image(ctx, format, desc, SAMPLED_USAGE, false).call("vkCreateImage(dma-buf)")?
    };
    parts.image = image;
    if !with_modifier {
        if let Some(driver_pitch) = linear_pitch_mismatch(ctx, image, plane.stride) {
            debug!(
                driver_pitch,
                client_stride = plane.stride,
                "linear pitch mismatch, buffer path"
            );
            return Ok(false);
        }
    }
    let reqs = unsafe { ctx.device.get_image_memory_requirements(image) };
    if !with_modifier && reqs.size > fd_len {
        debug!(
            need = reqs.size,
            have = fd_len,
            "image needs more memory than the dma-buf has, buffer path"
        );
        return Ok(false);
    }
    parts.memory = import_dmabuf_memory(ctx, plane.fd.as_fd(), reqs, Dedicated::Image(image))?;
    unsafe { ctx.device.bind_image_memory(image, parts.memory, 0) }.call("vkBindImageMemory(dma-buf)")?;
    Ok(true)
}

fn create_owned_image(
    ctx: &VkContext,
    format: &FormatInfo,
    width: u32,
    height: u32,
    parts: &mut Parts<'_>,
) -> Result<(), VkError> {
    create_owned_image_with(ctx, format, width, height, vk::ImageUsageFlags::empty(), parts)
}

fn create_owned_image_with(
    ctx: &VkContext,
    format: &FormatInfo,
    width: u32,
    height: u32,
    extra: vk::ImageUsageFlags,
    parts: &mut Parts<'_>,
) -> Result<(), VkError> {
    let usage = SAMPLED_USAGE | vk::ImageUsageFlags::TRANSFER_DST | extra;
    let info = image_info(format, width, height, vk::ImageTiling::OPTIMAL, usage);
    parts.image = unsafe { ctx.device.create_image(&info, None) }.call("vkCreateImage")?;
    let reqs = unsafe { ctx.device.get_image_memory_requirements(parts.image) };
    let type_index = ctx
        .memory_type(reqs.memory_type_bits, vk::MemoryPropertyFlags::DEVICE_LOCAL)
        .or_else(|| ctx.memory_type(reqs.memory_type_bits, vk::MemoryPropertyFlags::empty()))
        .ok_or(VkError::NoMemoryType("texture"))?;
    let alloc = vk::MemoryAllocateInfo::default()
        .allocation_size(reqs.size)
        .memory_type_index(type_index);
    parts.memory = unsafe { ctx.device.allocate_memory(&alloc, None) }.call("vkAllocateMemory(texture)")?;
    unsafe { ctx.device.bind_image_memory(parts.image, parts.memory, 0) }.call("vkBindImageMemory")
}

fn import_source_buffer(
    ctx: &VkContext,
    desc: &DmabufDesc,
    format: &FormatInfo,
    parts: &mut Parts<'_>,
) -> Result<DmabufSource, VkError> {
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
    parts.buffer = unsafe { ctx.device.create_buffer(&info, None) }.call("vkCreateBuffer(dma-buf)")?;
    let reqs = unsafe { ctx.device.get_buffer_memory_requirements(parts.buffer) };
    parts.buffer_memory = import_dmabuf_memory(ctx, plane.fd.as_fd(), reqs, Dedicated::Buffer(parts.buffer))?;
    unsafe { ctx.device.bind_buffer_memory(parts.buffer, parts.buffer_memory, 0) }
        .call("vkBindBufferMemory(dma-buf)")?;
    Ok(DmabufSource {
        buffer: parts.buffer,
        memory: parts.buffer_memory,
        offset: u64::from(plane.offset),
        row_length: plane.stride / format.bytes_per_pixel,
    })
}

fn create_descriptor(
    ctx: &VkContext,
    layout: vk::DescriptorSetLayout,
    view: vk::ImageView,
) -> Result<(vk::DescriptorPool, vk::DescriptorSet), VkError> {
    let sizes = [vk::DescriptorPoolSize {
        ty: vk::DescriptorType::SAMPLED_IMAGE,
        descriptor_count: 1,
    }];
    let info = vk::DescriptorPoolCreateInfo::default().max_sets(1).pool_sizes(&sizes);
    let pool = unsafe { ctx.device.create_descriptor_pool(&info, None) }.call("vkCreateDescriptorPool")?;
    let layouts = [layout];
    let alloc = vk::DescriptorSetAllocateInfo::default()
        .descriptor_pool(pool)
        .set_layouts(&layouts);
    let set = match unsafe { ctx.device.allocate_descriptor_sets(&alloc) } {
        Ok(s) => s[0],
        Err(result) => {
            unsafe { ctx.device.destroy_descriptor_pool(pool, None) };
            return Err(VkError::Call {
                call: "vkAllocateDescriptorSets",
                result,
            });
        }
    };
    let image_info = [vk::DescriptorImageInfo::default()
        .image_view(view)
        .image_layout(vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL)];
    let write = vk::WriteDescriptorSet::default()
        .dst_set(set)
        .dst_binding(0)
        .descriptor_type(vk::DescriptorType::SAMPLED_IMAGE)
        .image_info(&image_info);
    unsafe { ctx.device.update_descriptor_sets(&[write], &[]) };
    Ok((pool, set))
}

impl Texture {
    fn assemble(
        ctx: &Arc<VkContext>,
        layout: vk::DescriptorSetLayout,
        parts: Parts<'_>,
        format: FormatInfo,
        (width, height): (u32, u32),
        path: ImportPath,
        source: Option<DmabufSource>,
    ) -> Result<Texture, VkError> {
        let mut parts = parts;
        parts.view = create_view(ctx, parts.image, &format)?;
        let (pool, descriptor_set) = create_descriptor(ctx, layout, parts.view)?;
        let (image, view, memory, _, _) = parts.take();
        Ok(Texture {
            ctx: ctx.clone(),
            width,
            height,
            format,
            path,
            image,
            view,
            memory,
            external: path == ImportPath::DmabufImage,
            source,
            pending: Mutex::new(Vec::new()),
            initialized: AtomicBool::new(false),
            pool,
            descriptor_set,
            dmabuf_fds: std::sync::OnceLock::new(),
            nv12: None,
        })
    }

    /// Imports a client dma-buf: the image path when the device allows it, the
    /// buffer path otherwise (or always, with `force_buffer_path`).
    ///
    /// Locks: creating the import is mapping work (rule B1): the caller holds
    /// the buffer's reservation and installs the result with
    /// `ReservationGuard::set_gpu_import` (see `client_buffer::import_gpu`,
    /// which takes the guard). Nothing here blocks on a fence.
    pub fn import_dmabuf(
        ctx: &Arc<VkContext>,
        layout: vk::DescriptorSetLayout,
        desc: &DmabufDesc,
        force_buffer_path: bool,
    ) -> Result<Texture, VkError> {
        if !ctx.caps.can_import_dmabuf() {
            return Err(VkError::NoDmabufImport);
        }
        let format = desc.validate()?;
        let size = (desc.width, desc.height);
        if !force_buffer_path {
            let mut parts = Parts::new(ctx);
            if try_image_path(ctx, desc, &format, &mut parts)? {
                let tex = Texture::assemble(ctx, layout, parts, format, size, ImportPath::DmabufImage, None)?;
                tex.keep_dmabuf_fds(desc);
                return Ok(tex);
            }
        }
        if !desc.is_linear() {
            return Err(VkError::Unsupported(format!(
                "modifier {:?} cannot be imported without VK_EXT_image_drm_format_modifier",
                desc.modifier
            )));
        }
        let mut parts = Parts::new(ctx);
        let source = import_source_buffer(ctx, desc, &format, &mut parts)?;
        create_owned_image(ctx, &format, desc.width, desc.height, &mut parts)?;
        let tex = Texture::assemble(ctx, layout, parts, format, size, ImportPath::DmabufBuffer, Some(source))?;
        tex.keep_dmabuf_fds(desc);
        tex.queue_dmabuf_refresh(None);
        Ok(tex)
    }

    /// SYNC: remembers the client's dma-buf fds (one per distinct dma-buf).
    fn keep_dmabuf_fds(&self, desc: &DmabufDesc) {
        let mut fds: Vec<std::os::fd::OwnedFd> = Vec::new();
        for p in &desc.planes {
            let st = rustix::fs::fstat(&p.fd).ok().map(|s| (s.st_dev, s.st_ino));
            let dup = fds
                .iter()
                .any(|f| rustix::fs::fstat(f).ok().map(|s| (s.st_dev, s.st_ino)) == st && st.is_some());
            if !dup {
                if let Ok(fd) = p.fd.try_clone() {
                    fds.push(fd);
                }
            }
        }
        let _ = self.dmabuf_fds.set(fds);
    }

    /// SYNC: the client dma-buf fds of an imported texture (empty otherwise).
    pub fn dmabuf_fds(&self) -> &[std::os::fd::OwnedFd] {
        self.dmabuf_fds.get().map(Vec::as_slice).unwrap_or(&[])
    }

    /// A compositor-owned image filled by [`Texture::queue_upload`].
    pub fn new_owned(
        ctx: &Arc<VkContext>,
        layout: vk::DescriptorSetLayout,
        format: FormatInfo,
        width: u32,
        height: u32,
    ) -> Result<Arc<Texture>, VkError> {
        Texture::new_owned_unshared(ctx, layout, format, width, height).map(Arc::new)
    }

    /// [`Texture::new_owned`] by value, for installing under a reservation
    /// (the CPU fallback's upload target is that buffer's GPU import).
    pub fn new_owned_unshared(
        ctx: &Arc<VkContext>,
        layout: vk::DescriptorSetLayout,
        format: FormatInfo,
        width: u32,
        height: u32,
    ) -> Result<Texture, VkError> {
        if width == 0 || height == 0 {
            return Err(VkError::Unsupported(format!("empty texture {width}x{height}")));
        }
        let mut parts = Parts::new(ctx);
        create_owned_image(ctx, &format, width, height, &mut parts)?;
        Texture::assemble(ctx, layout, parts, format, (width, height), ImportPath::Shm, None)
    }

    /// An ABGR8888 (`R8G8B8A8_UNORM`) image with storage usage, filled by NV12
    /// uploads ([`StagedUpload::nv12`]) converted by `pipeline`. By value, for
    /// installing under a reservation.
    pub fn new_nv12_target(
        ctx: &Arc<VkContext>,
        layout: vk::DescriptorSetLayout,
        pipeline: &Arc<Nv12Pipeline>,
        width: u32,
        height: u32,
    ) -> Result<Texture, VkError> {
        if width == 0 || height == 0 {
            return Err(VkError::Unsupported(format!("empty texture {width}x{height}")));
        }
        let format = crate::format::format_info(drm_fourcc::DrmFourcc::Abgr8888).expect("ABGR8888 is supported");
        let mut parts = Parts::new(ctx);
        create_owned_image_with(ctx, &format, width, height, vk::ImageUsageFlags::STORAGE, &mut parts)?;
        let mut tex = Texture::assemble(ctx, layout, parts, format, (width, height), ImportPath::Shm, None)?;
        tex.nv12 = Some(pipeline.clone());
        Ok(tex)
    }

    /// Queues a copy of `region` of `data` (rows of `stride` bytes, the whole
    /// image's rows) through a staging buffer, recorded at the next use.
    pub fn queue_upload(&self, data: &[u8], stride: usize, region: Region) -> Result<(), VkError> {
        let staged = StagedUpload::copy(&self.ctx, self.format, (self.width, self.height), data, stride, region)?;
        self.queue_staged(staged);
        Ok(())
    }

    /// Queues an upload staged elsewhere (a CPU-fallback copy made on a
    /// worker thread); recorded at the texture's next use.
    ///
    /// Locks: none needed (the pending list has its own leaf mutex).
    pub fn queue_staged(&self, staged: StagedUpload) {
        match staged.staged {
            Some(Staged::Copy(buffer, copy)) => self.push_pending(PendingCopy {
                src: CopySource::Staging(buffer),
                regions: vec![copy],
            }),
            Some(Staged::Nv12(buffer, params)) => self.push_pending(PendingCopy {
                src: CopySource::Nv12(buffer, params),
                regions: Vec::new(),
            }),
            None => {}
        }
    }

    /// Buffer path: queue a GPU copy of `damage` (all if `None`) from the
    /// client's memory. No-op on the image path, where the image *is* the memory.
    pub fn queue_dmabuf_refresh(&self, damage: Option<&[Region]>) {
        let Some(src) = &self.source else { return };
        let full = [Region {
            x: 0,
            y: 0,
            width: self.width,
            height: self.height,
        }];
        let bpp = u64::from(self.format.bytes_per_pixel);
        let regions: Vec<_> = damage
            .unwrap_or(&full)
            .iter()
            .filter_map(|r| r.clamp(self.width, self.height))
            .map(|r| {
                let off = src.offset + (u64::from(r.y) * u64::from(src.row_length) + u64::from(r.x)) * bpp;
                buffer_image_copy(off, src.row_length, r, 0)
            })
            .collect();
        if !regions.is_empty() {
            self.push_pending(PendingCopy {
                src: CopySource::Dmabuf,
                regions,
            });
        }
    }

    fn push_pending(&self, copy: PendingCopy) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).push(copy);
    }

    /// Whether the image is client memory needing acquire/release barriers.
    pub fn is_external(&self) -> bool {
        self.external
    }

    /// Records queued copies and the layout transitions that make the image
    /// ready to sample. Staging buffers move into `keep` (freed with the frame).
    pub(crate) fn record_prepare(&self, cmd: vk::CommandBuffer, keep: &mut Vec<Box<dyn Send + Sync>>) {
        let dev = &self.ctx.device;
        let foreign = self.ctx.caps.foreign_queue_family();
        if self.external {
            // Acquire the client's memory from the foreign queue family.
            let b = image_barrier(
                self.image,
                vk::ImageLayout::GENERAL,
                vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
            )
            .src_queue_family_index(foreign)
            .dst_queue_family_index(self.ctx.queue_family)
            .src_access_mask(vk::AccessFlags::empty())
            .dst_access_mask(vk::AccessFlags::SHADER_READ);
            unsafe {
                pipeline_barrier(
                    dev,
                    cmd,
                    vk::PipelineStageFlags::TOP_OF_PIPE,
                    vk::PipelineStageFlags::FRAGMENT_SHADER,
                    &[b],
                    &[],
                )
            };
            return;
        }
        let copies: Vec<PendingCopy> = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        let first = !self.initialized.swap(true, Ordering::AcqRel);
        if copies.is_empty() && !first {
            return;
        }
        let old = if first {
            vk::ImageLayout::UNDEFINED
        } else {
            vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL
        };
        let to_dst = image_barrier(self.image, old, vk::ImageLayout::TRANSFER_DST_OPTIMAL)
            .src_access_mask(vk::AccessFlags::SHADER_READ)
            .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE);
        unsafe {
            pipeline_barrier(
                dev,
                cmd,
                vk::PipelineStageFlags::FRAGMENT_SHADER,
                vk::PipelineStageFlags::TRANSFER,
                &[to_dst],
                &[],
            )
        };
        if first && copies.is_empty() {
            // Never written: define its content (transparent) rather than sampling garbage.
            let clear = vk::ClearColorValue { float32: [0.0; 4] };
            unsafe {
                dev.cmd_clear_color_image(
                    cmd,
                    self.image,
                    vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                    &clear,
                    &[color_range()],
                )
            };
        }
        for copy in copies {
            match copy.src {
                CopySource::Staging(buf) => {
                    unsafe {
                        dev.cmd_copy_buffer_to_image(
                            cmd,
                            buf.buffer,
                            self.image,
                            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                            &copy.regions,
                        )
                    };
                    keep.push(Box::new(buf));
                }
                CopySource::Dmabuf => self.record_dmabuf_copy(cmd, &copy.regions),
                CopySource::Nv12(buf, params) => self.record_nv12(cmd, buf, &params, keep),
            }
        }
        let to_read = image_barrier(
            self.image,
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
        )
        .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(vk::AccessFlags::SHADER_READ);
        unsafe {
            pipeline_barrier(
                dev,
                cmd,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::FRAGMENT_SHADER,
                &[to_read],
                &[],
            )
        };
    }

    /// Converts a staged NV12 upload into the image: TRANSFER_DST → GENERAL,
    /// dispatch, → TRANSFER_DST (the state the copy loop expects).
    fn record_nv12(
        &self,
        cmd: vk::CommandBuffer,
        buf: HostBuffer,
        params: &Nv12Params,
        keep: &mut Vec<Box<dyn Send + Sync>>,
    ) {
        let Some(pipeline) = &self.nv12 else {
            tracing::error!("NV12 upload queued on a texture without the conversion pipeline; dropped");
            return;
        };
        let dev = &self.ctx.device;
        let to_general = image_barrier(
            self.image,
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            vk::ImageLayout::GENERAL,
        )
        .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(vk::AccessFlags::SHADER_WRITE);
        unsafe {
            pipeline_barrier(
                dev,
                cmd,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::COMPUTE_SHADER,
                &[to_general],
                &[],
            )
        };
        match pipeline.record(cmd, buf.buffer, self.view, params) {
            Ok(pool) => keep.push(pool),
            Err(e) => tracing::error!("recording the NV12 conversion: {e}"),
        }
        keep.push(Box::new(buf));
        let back = image_barrier(
            self.image,
            vk::ImageLayout::GENERAL,
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
        )
        .src_access_mask(vk::AccessFlags::SHADER_WRITE)
        .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE);
        unsafe {
            pipeline_barrier(
                dev,
                cmd,
                vk::PipelineStageFlags::COMPUTE_SHADER,
                vk::PipelineStageFlags::TRANSFER,
                &[back],
                &[],
            )
        };
    }

    fn record_dmabuf_copy(&self, cmd: vk::CommandBuffer, regions: &[vk::BufferImageCopy]) {
        let Some(src) = &self.source else { return };
        let dev = &self.ctx.device;
        let foreign = self.ctx.caps.foreign_queue_family();
        let acquire = vk::BufferMemoryBarrier::default()
            .buffer(src.buffer)
            .size(vk::WHOLE_SIZE)
            .src_queue_family_index(foreign)
            .dst_queue_family_index(self.ctx.queue_family)
            .dst_access_mask(vk::AccessFlags::TRANSFER_READ);
        unsafe {
            pipeline_barrier(
                dev,
                cmd,
                vk::PipelineStageFlags::TOP_OF_PIPE,
                vk::PipelineStageFlags::TRANSFER,
                &[],
                &[acquire],
            )
        };
        unsafe {
            dev.cmd_copy_buffer_to_image(
                cmd,
                src.buffer,
                self.image,
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                regions,
            )
        };
        let release = vk::BufferMemoryBarrier::default()
            .buffer(src.buffer)
            .size(vk::WHOLE_SIZE)
            .src_queue_family_index(self.ctx.queue_family)
            .dst_queue_family_index(foreign)
            .src_access_mask(vk::AccessFlags::TRANSFER_READ);
        unsafe {
            pipeline_barrier(
                dev,
                cmd,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::BOTTOM_OF_PIPE,
                &[],
                &[release],
            )
        };
    }

    /// Releases client memory back to the foreign queue family after the
    /// frame's reads (image path only).
    pub(crate) fn record_release(&self, cmd: vk::CommandBuffer) {
        if !self.external {
            return;
        }
        let b = image_barrier(
            self.image,
            vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
            vk::ImageLayout::GENERAL,
        )
        .src_queue_family_index(self.ctx.queue_family)
        .dst_queue_family_index(self.ctx.caps.foreign_queue_family())
        .src_access_mask(vk::AccessFlags::SHADER_READ)
        .dst_access_mask(vk::AccessFlags::empty());
        unsafe {
            pipeline_barrier(
                &self.ctx.device,
                cmd,
                vk::PipelineStageFlags::FRAGMENT_SHADER,
                vk::PipelineStageFlags::BOTTOM_OF_PIPE,
                &[b],
                &[],
            )
        };
    }
}

impl Drop for Texture {
    fn drop(&mut self) {
        let (buffer, buffer_memory) = self
            .source
            .as_ref()
            .map_or((vk::Buffer::null(), vk::DeviceMemory::null()), |s| (s.buffer, s.memory));
        unsafe {
            self.ctx.device.destroy_descriptor_pool(self.pool, None);
            destroy(
                &self.ctx.device,
                self.image,
                self.view,
                self.memory,
                buffer,
                buffer_memory,
            );
        }
    }
}

pub(crate) fn buffer_image_copy(offset: u64, row_length: u32, r: Region, _layer: u32) -> vk::BufferImageCopy {
    vk::BufferImageCopy {
        buffer_offset: offset,
        buffer_row_length: row_length,
        buffer_image_height: 0,
        image_subresource: vk::ImageSubresourceLayers {
            aspect_mask: vk::ImageAspectFlags::COLOR,
            mip_level: 0,
            base_array_layer: 0,
            layer_count: 1,
        },
        image_offset: vk::Offset3D {
            x: r.x as i32,
            y: r.y as i32,
            z: 0,
        },
        image_extent: vk::Extent3D {
            width: r.width,
            height: r.height,
            depth: 1,
        },
    }
}

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
