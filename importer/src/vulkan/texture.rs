//! Sampled images: imported client dma-bufs and compositor-owned images.
//!
//! DOC: what backs a texture
//!
//! * [`Backing::ClientImage`]: the client's dma-buf memory bound to the image
//!   (`super::dmabuf_image::import_image`, zero copy). It is acquired from the
//!   foreign queue family before each use and released after it
//!   (`super::barrier`). A YUV client image is multi-planar and sampled
//!   through its format's Y'CbCr conversion ([`Texture::ycbcr`],
//!   `super::ycbcr`): its view carries the conversion and its descriptor set
//!   is a combined image sampler of that conversion's layout.
//! * [`Backing::ClientBufferCopy`]: the client's memory imported as a
//!   VkBuffer and copied into a compositor image on the GPU
//!   (`vkCmdCopyBufferToImage`, row length = stride / bpp, offset = the
//!   plane's offset) at the next frame that samples it, and again after every
//!   commit of the buffer ([`Texture::queue_client_copy`]).
//! * [`Backing::Owned`]: a compositor image filled by queued uploads
//!   (`super::upload`): shm buffers, the CPU fallback, NV12 conversions.
//!
//! DOC: ownership and lifetime
//!
//! A [`Texture`] holds an `Arc<VkContext>` and frees its Vulkan objects on drop.
//! A client buffer's texture is created under its reservation and installed
//! there as the GPU import (`super::client_buffer`), so the constructors
//! return a `Texture` by value. Frames in flight hold an `Arc<Texture>` until
//! their fence signals, and the reservation's dead list holds one until the
//! fences recorded on it signal, so a client destroying its buffer never frees
//! memory the GPU still reads (locking rule B3, docs/locking-rules.md).

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ash::vk;

use super::barrier::{
    acquire_client_image, color_range, image_barrier, pipeline_barrier, release_client_image, transfer_client_buffer,
};
use super::dmabuf_image::{image_info, import_buffer, import_image, SAMPLED_USAGE};
use super::memory::{HostBuffer, ImageAlloc};
use super::upload::{buffer_image_copy, CopySource, PendingCopy, StagedUpload};
use super::ycbcr::{Representation, YcbcrKey, YcbcrSampler, YcbcrSamplers};
use super::yuv::{Nv12Params, Nv12Pipeline};
use super::{Region, VkContext, VkError, VkResultExt};
use crate::dmabuf::DmabufDesc;
use crate::format::FormatInfo;

/// What backs a texture's image (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    ClientImage,
    ClientBufferCopy,
    Owned,
}

/// The buffer path's imported client memory.
struct ClientSource {
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    offset: u64,
    row_length: u32,
}

/// Past this many disjoint rectangles, a buffer-path texture's queued
/// copies become one copy of the whole buffer.
const MAX_CLIENT_COPY_REGIONS: usize = 16;

/// The texture rectangle a queued buffer-to-image copy writes.
fn copied_region(copy: &vk::BufferImageCopy) -> Region {
    Region {
        x: copy.image_offset.x as u32,
        y: copy.image_offset.y as u32,
        width: copy.image_extent.width,
        height: copy.image_extent.height,
    }
}

/// A sampled image plus the descriptor set that binds it.
pub struct Texture {
    ctx: Arc<VkContext>,
    pub width: u32,
    pub height: u32,
    pub format: FormatInfo,
    pub image: vk::Image,
    view: vk::ImageView,
    /// One allocation, or one per memory plane of a disjoint client image.
    memory: Vec<vk::DeviceMemory>,
    backing: Backing,
    source: Option<ClientSource>,
    pending: Mutex<Vec<PendingCopy>>,
    initialized: AtomicBool,
    pool: vk::DescriptorPool,
    pub descriptor_set: vk::DescriptorSet,
    /// Dup'd fds of the client dma-buf's planes, one per distinct dma-buf,
    /// for its implicit fences (READ export before sampling, READ import
    /// after).
    dmabuf_fds: OnceLock<Vec<OwnedFd>>,
    /// NV12 targets: the conversion pipeline (the image has STORAGE usage).
    nv12: Option<Arc<Nv12Pipeline>>,
    /// YUV client images: the conversion they are sampled through by
    /// default (BT.601 limited), whose pipelines and layout draw them.
    pub ycbcr: Option<Arc<YcbcrSampler>>,
    /// YUV client images: the device's conversions, for other
    /// representations ([`Texture::ycbcr_binding`]).
    ycbcr_samplers: Option<Arc<YcbcrSamplers>>,
    /// Views and sets made for other representations; kept as long as the
    /// texture (frames in flight may use them). At most one per
    /// representation a client asked for.
    ycbcr_more: Mutex<Vec<YcbcrBinding>>,
    /// Whether a frame may copy out of the image (`super::copy_pass`). Not
    /// for a client image in DRM_FORMAT_MODIFIER tiling: its transfer
    /// features are reported per modifier, and lavapipe, the CPU device
    /// that copies, reports none in `VkDrmFormatModifierPropertiesList2EXT`,
    /// so the copy's source could not be vouched for.
    pub(crate) copy_source: bool,
    /// A client buffer of one LINEAR plane (zero-copy image or buffer
    /// path): where its rows lie in the dma-buf, for frames written on the
    /// host (`super::host_frame`).
    pub(crate) host_plane: Option<HostPlane>,
    /// The host could not map the client's memory (an unsealed memfd, a
    /// file too short): frames sampling it stay on the queue.
    pub(crate) host_unmappable: AtomicBool,
    /// Counted in [`super::census`].
    _live: super::census::Live,
}

/// Where a client buffer's only plane lies in its dma-buf (LINEAR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostPlane {
    pub offset: u64,
    pub stride: u64,
}

impl HostPlane {
    /// The plane of a LINEAR single-plane buffer; `None` for others.
    fn of(desc: &DmabufDesc) -> Option<HostPlane> {
        let [plane] = &desc.planes[..] else { return None };
        desc.is_linear().then(|| HostPlane {
            offset: u64::from(plane.offset),
            stride: u64::from(plane.stride),
        })
    }
}

impl std::fmt::Debug for Texture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Texture")
            .field("size", &(self.width, self.height))
            .field("format", &self.format.fourcc)
            .field("backing", &self.backing)
            .finish_non_exhaustive()
    }
}

/// The sampled view of `image`; with `ycbcr`, through that conversion.
fn create_view(
    ctx: &VkContext,
    image: vk::Image,
    format: &FormatInfo,
    ycbcr: Option<&YcbcrSampler>,
) -> Result<vk::ImageView, VkError> {
    let mut with = vk::SamplerYcbcrConversionInfo::default();
    let mut info = vk::ImageViewCreateInfo::default()
        .image(image)
        .view_type(vk::ImageViewType::TYPE_2D)
        .format(format.vk_format)
        .components(format.swizzle())
        .subresource_range(color_range());
    if let Some(y) = ycbcr {
        with = with.conversion(y.conversion);
        // The conversion maps the components; the view must not swizzle.
        info = info.components(vk::ComponentMapping::default()).push_next(&mut with);
    }
    unsafe { ctx.device.create_image_view(&info, None) }.call("vkCreateImageView")
}

/// A device-local image the compositor fills by copies (`extra` usage added).
fn create_owned_image<'a>(
    ctx: &'a VkContext,
    format: &FormatInfo,
    (width, height): (u32, u32),
    extra: vk::ImageUsageFlags,
) -> Result<ImageAlloc<'a>, VkError> {
    if width == 0 || height == 0 {
        return Err(VkError::Unsupported(format!("empty texture {width}x{height}")));
    }
    let usage = SAMPLED_USAGE | vk::ImageUsageFlags::TRANSFER_DST | extra;
    let info = image_info(format, width, height, vk::ImageTiling::OPTIMAL, usage);
    let image = unsafe { ctx.device.create_image(&info, None) }.call("vkCreateImage")?;
    let mut alloc = ImageAlloc::new(ctx, image);
    alloc.allocate_and_bind("texture")?;
    Ok(alloc)
}

/// A pool and the one set binding `view`: a sampled image in `layout`, or
/// with `ycbcr` a combined image sampler in that conversion's layout.
fn create_descriptor(
    ctx: &VkContext,
    layout: vk::DescriptorSetLayout,
    view: vk::ImageView,
    ycbcr: Option<&YcbcrSampler>,
) -> Result<(vk::DescriptorPool, vk::DescriptorSet), VkError> {
    let (ty, layout, descriptor_count) = match ycbcr {
        Some(y) => (vk::DescriptorType::COMBINED_IMAGE_SAMPLER, y.set_layout, y.descriptors),
        None => (vk::DescriptorType::SAMPLED_IMAGE, layout, 1),
    };
    let sizes = [vk::DescriptorPoolSize { ty, descriptor_count }];
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
        .descriptor_type(ty)
        .image_info(&image_info);
    unsafe { ctx.device.update_descriptor_sets(&[write], &[]) };
    Ok((pool, set))
}

/// A YUV texture's view and descriptor set for one more representation.
struct YcbcrBinding {
    ctx: Arc<VkContext>,
    sampler: Arc<YcbcrSampler>,
    view: vk::ImageView,
    pool: vk::DescriptorPool,
    set: vk::DescriptorSet,
}

impl Drop for YcbcrBinding {
    fn drop(&mut self) {
        unsafe {
            self.ctx.device.destroy_descriptor_pool(self.pool, None);
            self.ctx.device.destroy_image_view(self.view, None);
        }
    }
}

/// Dups of `desc`'s plane fds, one per distinct file (planes may share one).
fn distinct_fds(desc: &DmabufDesc) -> Vec<OwnedFd> {
    let key = |fd: &OwnedFd| rustix::fs::fstat(fd).ok().map(|s| (s.st_dev, s.st_ino));
    let mut fds: Vec<OwnedFd> = Vec::new();
    for p in &desc.planes {
        let k = key(&p.fd);
        if k.is_some() && fds.iter().any(|f| key(f) == k) {
            continue;
        }
        if let Ok(fd) = p.fd.try_clone() {
            fds.push(fd);
        }
    }
    fds
}

impl Texture {
    /// A texture around a bound image: creates its view and descriptor set.
    fn assemble(
        ctx: &Arc<VkContext>,
        layout: vk::DescriptorSetLayout,
        alloc: ImageAlloc<'_>,
        format: FormatInfo,
        (width, height): (u32, u32),
        backing: Backing,
    ) -> Result<Texture, VkError> {
        Texture::assemble_with(ctx, layout, alloc, format, (width, height), backing, None)
    }

    /// [`Texture::assemble`], sampled through `ycbcr` where given.
    fn assemble_with(
        ctx: &Arc<VkContext>,
        layout: vk::DescriptorSetLayout,
        alloc: ImageAlloc<'_>,
        format: FormatInfo,
        (width, height): (u32, u32),
        backing: Backing,
        ycbcr: Option<Arc<YcbcrSampler>>,
    ) -> Result<Texture, VkError> {
        let view = create_view(ctx, alloc.image, &format, ycbcr.as_deref())?;
        let (pool, descriptor_set) = match create_descriptor(ctx, layout, view, ycbcr.as_deref()) {
            Ok(d) => d,
            Err(e) => {
                unsafe { ctx.device.destroy_image_view(view, None) };
                return Err(e);
            }
        };
        let (image, memory) = alloc.into_raw();
        Ok(Texture {
            ctx: ctx.clone(),
            width,
            height,
            format,
            image,
            view,
            memory,
            backing,
            source: None,
            pending: Mutex::new(Vec::new()),
            initialized: AtomicBool::new(false),
            pool,
            descriptor_set,
            dmabuf_fds: OnceLock::new(),
            nv12: None,
            // A multi-planar image cannot be copied into an RGB target.
            copy_source: ycbcr.is_none(),
            host_plane: None,
            host_unmappable: AtomicBool::new(false),
            ycbcr,
            ycbcr_samplers: None,
            ycbcr_more: Mutex::new(Vec::new()),
            _live: super::census::Live::new(super::census::Kind::Texture),
        })
    }

    /// Imports a client dma-buf of an RGB format, validated for its modifier
    /// (`format` is what validation returned): the zero-copy image when
    /// `try_image` (the negotiated entry allows it) and the device takes the
    /// client's layout, the buffer path otherwise (LINEAR only).
    ///
    /// Locks: creating the import is mapping work (locking rule B1): the
    /// caller holds the buffer's reservation and installs the result with
    /// `ReservationGuard::set_gpu_import` (`super::client_buffer::import_gpu`,
    /// which takes the guard). Nothing here blocks on a fence.
    pub fn import_dmabuf(
        ctx: &Arc<VkContext>,
        layout: vk::DescriptorSetLayout,
        desc: &DmabufDesc,
        format: FormatInfo,
        try_image: bool,
    ) -> Result<Texture, VkError> {
        if !ctx.caps.can_import_dmabuf() {
            return Err(VkError::NoDmabufImport);
        }
        if format.yuv {
            return Err(VkError::Unsupported(format!(
                "{:?} has no GPU import path; it is converted from its CPU mapping",
                desc.fourcc
            )));
        }
        let size = (desc.width, desc.height);
        if try_image {
            let explicit_layout = ctx.drm_format_modifier.is_some();
            if let Some(alloc) = import_image(ctx, desc, &format, explicit_layout)? {
                let mut tex = Texture::assemble(ctx, layout, alloc, format, size, Backing::ClientImage)?;
                tex.copy_source = ctx.drm_format_modifier.is_none();
                tex.host_plane = HostPlane::of(desc);
                let _ = tex.dmabuf_fds.set(distinct_fds(desc));
                return Ok(tex);
            }
        }
        if !desc.is_linear() {
            return Err(VkError::Unsupported(format!(
                "modifier {:#x} has no image path on this device, and only LINEAR can be copied",
                u64::from(desc.modifier)
            )));
        }
        let imported = import_buffer(ctx, desc, &format)?;
        let alloc = create_owned_image(ctx, &format, size, vk::ImageUsageFlags::empty())?;
        let mut tex = Texture::assemble(ctx, layout, alloc, format, size, Backing::ClientBufferCopy)?;
        let (buffer, memory) = imported.alloc.into_raw();
        tex.source = Some(ClientSource {
            buffer,
            memory,
            offset: imported.offset,
            row_length: imported.row_length,
        });
        tex.host_plane = HostPlane::of(desc);
        let _ = tex.dmabuf_fds.set(distinct_fds(desc));
        tex.queue_client_copy(None);
        Ok(tex)
    }

    /// Imports a YUV client dma-buf (`format` as validated) as a multi-planar
    /// image sampled through the device's Y'CbCr conversions, zero copy;
    /// with the client's plane layouts given explicitly where
    /// `explicit_layout` (the negotiated entry says). `Ok(None)`: the device
    /// cannot use the client's layout (the caller's fallback decides).
    ///
    /// Locks: as [`Texture::import_dmabuf`] (the buffer's reservation, held
    /// by the caller; rule B1). Nothing here blocks on a fence.
    pub fn import_ycbcr(
        ctx: &Arc<VkContext>,
        samplers: Arc<YcbcrSamplers>,
        desc: &DmabufDesc,
        (format, explicit_layout): (FormatInfo, bool),
    ) -> Result<Option<Texture>, VkError> {
        let Some(planar) = format.planar() else {
            return Err(VkError::Unsupported(format!("{:?} is not a YUV format", desc.fourcc)));
        };
        let sampler = samplers.get(YcbcrKey {
            format: planar.vk_format,
            representation: Representation::default(),
        })?;
        if !ctx.caps.can_import_dmabuf() {
            return Err(VkError::NoDmabufImport);
        }
        let Some(alloc) = import_image(ctx, desc, &planar, explicit_layout)? else {
            return Ok(None);
        };
        let size = (desc.width, desc.height);
        let layout = sampler.set_layout;
        let mut tex = Texture::assemble_with(ctx, layout, alloc, planar, size, Backing::ClientImage, Some(sampler))?;
        tex.ycbcr_samplers = Some(samplers);
        let _ = tex.dmabuf_fds.set(distinct_fds(desc));
        Ok(Some(tex))
    }

    /// A YUV client image's conversion and descriptor set for
    /// `representation`, made on first use; `None` for other textures. If
    /// making them fails (logged), the default ones.
    ///
    /// Locks: this texture's leaf mutex and the conversion cache's.
    pub(crate) fn ycbcr_binding(
        &self,
        representation: Representation,
    ) -> Option<(Arc<YcbcrSampler>, vk::DescriptorSet)> {
        let default = self.ycbcr.as_ref()?;
        if default.key.representation == representation {
            return Some((default.clone(), self.descriptor_set));
        }
        let mut more = self.ycbcr_more.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = more.iter().find(|b| b.sampler.key.representation == representation) {
            return Some((b.sampler.clone(), b.set));
        }
        match self.make_ycbcr_binding(representation) {
            Ok(b) => {
                let found = (b.sampler.clone(), b.set);
                more.push(b);
                Some(found)
            }
            Err(e) => {
                tracing::warn!(
                    ?representation,
                    "no Y'CbCr conversion for this representation, using BT.601: {e}"
                );
                Some((default.clone(), self.descriptor_set))
            }
        }
    }

    fn make_ycbcr_binding(&self, representation: Representation) -> Result<YcbcrBinding, VkError> {
        let samplers = self
            .ycbcr_samplers
            .as_ref()
            .ok_or_else(|| VkError::Unsupported("no Y'CbCr conversions".into()))?;
        let sampler = samplers.get(YcbcrKey {
            format: self.format.vk_format,
            representation,
        })?;
        let view = create_view(&self.ctx, self.image, &self.format, Some(&sampler))?;
        let mut binding = YcbcrBinding {
            ctx: self.ctx.clone(),
            sampler,
            view,
            pool: vk::DescriptorPool::null(),
            set: vk::DescriptorSet::null(),
        };
        (binding.pool, binding.set) =
            create_descriptor(&self.ctx, vk::DescriptorSetLayout::null(), view, Some(&binding.sampler))?;
        Ok(binding)
    }

    /// A compositor-owned image filled by [`Texture::queue_upload`] or
    /// [`Texture::queue_staged`]: shm buffers, memory uploads and the CPU
    /// fallback's upload target (that buffer's GPU import).
    pub fn new_owned(
        ctx: &Arc<VkContext>,
        layout: vk::DescriptorSetLayout,
        format: FormatInfo,
        width: u32,
        height: u32,
    ) -> Result<Texture, VkError> {
        let alloc = create_owned_image(ctx, &format, (width, height), vk::ImageUsageFlags::empty())?;
        Texture::assemble(ctx, layout, alloc, format, (width, height), Backing::Owned)
    }

    /// An owned image in the texture format of YUV `format` (ABGR8888) with
    /// storage usage, filled by NV12 uploads ([`StagedUpload::nv12`])
    /// converted by `pipeline`.
    pub fn new_nv12_target(
        ctx: &Arc<VkContext>,
        layout: vk::DescriptorSetLayout,
        pipeline: &Arc<Nv12Pipeline>,
        format: FormatInfo,
        width: u32,
        height: u32,
    ) -> Result<Texture, VkError> {
        let format = format.texture_format();
        let alloc = create_owned_image(ctx, &format, (width, height), vk::ImageUsageFlags::STORAGE)?;
        let mut tex = Texture::assemble(ctx, layout, alloc, format, (width, height), Backing::Owned)?;
        tex.nv12 = Some(pipeline.clone());
        Ok(tex)
    }

    /// What backs the image.
    pub fn backing(&self) -> Backing {
        self.backing
    }

    /// The client dma-buf fds of an imported texture (empty otherwise).
    pub fn dmabuf_fds(&self) -> &[OwnedFd] {
        self.dmabuf_fds.get().map(Vec::as_slice).unwrap_or(&[])
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
        if let Some(copy) = staged.into_pending() {
            self.push_pending(copy);
        }
    }

    /// Buffer path: queues a GPU copy of `damage` (all if `None`) from the
    /// client's memory, recorded by the next frame that samples the texture
    /// (under that frame's reservations). No-op for other backings.
    ///
    /// Locks: none needed (the pending list is a leaf lock).
    pub fn queue_client_copy(&self, damage: Option<&[Region]>) {
        let Some(src) = &self.source else { return };
        let full = [Region::full(self.width, self.height)];
        let bpp = u64::from(self.format.bytes_per_pixel);
        let clamped: Vec<Region> = damage
            .unwrap_or(&full)
            .iter()
            .filter_map(|r| r.clamp(self.width, self.height))
            .collect();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        // Copies from the client's memory not recorded yet (frames written
        // on the host leave them queued) are merged with this one: they all
        // read the same live memory, so one copy of the union does.
        let mut rects = clamped;
        if let Some(i) = pending.iter().position(|p| matches!(p.src, CopySource::ClientBuffer)) {
            rects.extend(pending.remove(i).regions.iter().map(copied_region));
        }
        let mut rects = Region::disjoint(rects);
        if rects.len() > MAX_CLIENT_COPY_REGIONS {
            rects = vec![Region::full(self.width, self.height)];
        }
        let regions: Vec<_> = rects
            .into_iter()
            .map(|r| {
                let off = src.offset + (u64::from(r.y) * u64::from(src.row_length) + u64::from(r.x)) * bpp;
                buffer_image_copy(off, src.row_length, r)
            })
            .collect();
        if !regions.is_empty() {
            pending.push(PendingCopy {
                src: CopySource::ClientBuffer,
                regions,
            });
        }
    }

    fn push_pending(&self, copy: PendingCopy) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).push(copy);
    }

    /// Records what makes the image ready to sample: for client images the
    /// acquire from the foreign queue family; otherwise the queued copies and
    /// layout transitions. Staging buffers move into `keep` (freed with the
    /// frame).
    ///
    /// A queued NV12 conversion converts as `representation` says (the
    /// drawing surface's).
    pub(crate) fn record_prepare(
        &self,
        cmd: vk::CommandBuffer,
        keep: &mut Vec<Box<dyn Send + Sync>>,
        representation: Representation,
    ) {
        if self.backing == Backing::ClientImage {
            acquire_client_image(&self.ctx, cmd, self.image);
            return;
        }
        let copies: Vec<PendingCopy> = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        let first = !self.initialized.swap(true, Ordering::AcqRel);
        if copies.is_empty() && !first {
            return;
        }
        let dev = &self.ctx.device;
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
            let dst = vk::ImageLayout::TRANSFER_DST_OPTIMAL;
            unsafe { dev.cmd_clear_color_image(cmd, self.image, dst, &clear, &[color_range()]) };
        }
        for (i, copy) in copies.into_iter().enumerate() {
            if i > 0 {
                // Queued copies may overlap (damage of successive commits):
                // each waits for the one before it.
                self.record_transfer_after_transfer(cmd);
            }
            match copy.src {
                CopySource::Staging(buf) => {
                    let dst = vk::ImageLayout::TRANSFER_DST_OPTIMAL;
                    unsafe { dev.cmd_copy_buffer_to_image(cmd, buf.buffer, self.image, dst, &copy.regions) };
                    keep.push(Box::new(buf));
                }
                CopySource::ClientBuffer => self.record_client_copy(cmd, &copy.regions),
                CopySource::Nv12(buf, params) => self.record_nv12(cmd, (buf, &params), representation, keep),
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

    /// A write-after-write barrier between two copies into the image
    /// (TRANSFER_DST_OPTIMAL throughout).
    fn record_transfer_after_transfer(&self, cmd: vk::CommandBuffer) {
        let dst = vk::ImageLayout::TRANSFER_DST_OPTIMAL;
        let b = image_barrier(self.image, dst, dst)
            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE);
        let transfer = vk::PipelineStageFlags::TRANSFER;
        unsafe { pipeline_barrier(&self.ctx.device, cmd, transfer, transfer, &[b], &[]) };
    }

    /// Converts a staged NV12 upload into the image: TRANSFER_DST → GENERAL,
    /// dispatch, → TRANSFER_DST (the state the copy loop expects).
    fn record_nv12(
        &self,
        cmd: vk::CommandBuffer,
        (buf, params): (HostBuffer, &Nv12Params),
        representation: Representation,
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
        match pipeline.record(cmd, (buf.buffer, self.view), params, representation) {
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

    /// The buffer path's copy: acquire the client buffer, copy, release it.
    fn record_client_copy(&self, cmd: vk::CommandBuffer, regions: &[vk::BufferImageCopy]) {
        let Some(src) = &self.source else { return };
        transfer_client_buffer(&self.ctx, cmd, src.buffer, true);
        let dst = vk::ImageLayout::TRANSFER_DST_OPTIMAL;
        unsafe {
            self.ctx
                .device
                .cmd_copy_buffer_to_image(cmd, src.buffer, self.image, dst, regions)
        };
        transfer_client_buffer(&self.ctx, cmd, src.buffer, false);
    }

    /// Releases client memory back to the foreign queue family after the
    /// frame's reads (client images only).
    pub(crate) fn record_release(&self, cmd: vk::CommandBuffer) {
        if self.backing == Backing::ClientImage {
            release_client_image(&self.ctx, cmd, self.image);
        }
    }
}

impl Drop for Texture {
    fn drop(&mut self) {
        // The other representations' views go before the image.
        self.ycbcr_more.get_mut().unwrap_or_else(|p| p.into_inner()).clear();
        let dev = &self.ctx.device;
        unsafe {
            dev.destroy_descriptor_pool(self.pool, None);
            dev.destroy_image_view(self.view, None);
            dev.destroy_image(self.image, None);
            for &m in &self.memory {
                dev.free_memory(m, None);
            }
            if let Some(src) = &self.source {
                dev.destroy_buffer(src.buffer, None);
                dev.free_memory(src.memory, None);
            }
        }
    }
}
