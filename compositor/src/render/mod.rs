//! Our Vulkan renderer, behind smithay 0.7's renderer traits.
//!
//! `VkRenderer` implements `Renderer`, `Frame` (see [`frame`]), `ImportMem`,
//! `ImportMemWl`, `ImportDma`, `ImportDmaWl`, `Bind`/`Offscreen` for offscreen
//! targets, and `ExportMem`, so our damage tracker ([`damage`]) and
//! smithay's render elements drive it. This module only maps smithay's types onto the importer: the
//! import decision is `importer::import::Importer`, sampling and its locking
//! are `importer::vulkan::recorder`.
//!
//! DOC: caches
//!
//! * dma-buf imports are cached per `WeakDmabuf`: a buffer committed again is
//!   not re-imported but refreshed (`ClientBuffer::refresh`: nothing for the
//!   zero-copy image, a GPU copy of the damage for the buffer path, a CPU copy
//!   for the fallback). Entries whose dma-buf is gone are handed to
//!   `Importer::destroy`, which frees them after the fences of the frames
//!   that sampled them. A dma-buf goes once its last `wl_buffer` handle
//!   does, which can be well after the client destroyed the `wl_buffer`
//!   (a surface's state or a frame in flight still holds it). So a
//!   destroyed buffer's dma-buf is watched ([`VkRenderer::forget_buffer`])
//!   and each frame tick checks only the watched ones
//!   ([`VkRenderer::drop_dead_imports`]): checking every entry meant a
//!   cache miss per client buffer per frame. `cleanup_texture_cache` still
//!   checks every entry, for callers without `wl_buffer`s.
//! * shm buffers are cached per live `wl_buffer`, updated with damage and
//!   dropped when the `wl_buffer` is destroyed.

pub mod damage;
pub mod frame;

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use drm_fourcc::DrmModifier;
use importer::format::{can_convert, convert_pixels, format_info, rgb_formats};
use importer::import::{ImportPolicy, ImportStats, ReservationStats};
use importer::renderer::{CoreOptions, RenderCore};
use importer::vulkan::client_buffer::ClientBuffer;
use importer::vulkan::pipeline::Filter;
use importer::vulkan::recorder::Drawable;
use importer::vulkan::target::{Readback, Target};
use importer::vulkan::ycbcr::Representation;
use importer::vulkan::{DeviceSelection, Region, VkError};
use importer::{DmabufDesc, DmabufPlane};
use smithay::backend::allocator::dmabuf::{Dmabuf, DmabufFlags, WeakDmabuf};
use smithay::backend::allocator::format::FormatSet;
use smithay::backend::allocator::{Buffer, Format, Fourcc, Modifier};
use smithay::backend::renderer::sync::SyncPoint;
use smithay::backend::renderer::{
    Bind, ContextId, DebugFlags, ExportMem, ImportDma, ImportDmaWl, ImportMem, ImportMemWl, Offscreen, Renderer,
    RendererSuper, Texture, TextureFilter, TextureMapping,
};
use smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer;
use smithay::reexports::wayland_server::{DisplayHandle, Resource};
use smithay::utils::{Buffer as BufferCoord, Physical, Rectangle, Size, Transform};
use smithay::wayland::compositor::{Cacheable, SurfaceData};
use smithay::wayland::shm::{shm_format_to_fourcc, with_buffer_contents};

pub use frame::VkFrame;

/// Errors of the renderer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Vulkan(#[from] VkError),
    #[error("format {0:?} is not supported")]
    UnsupportedFormat(Fourcc),
    #[error("shm buffer: {0}")]
    Shm(String),
    #[error("the wl_buffer is not a dma-buf")]
    NotDmabuf,
    #[error("the frame was already submitted")]
    FrameFinished,
    #[error("interrupted while waiting for a fence")]
    Interrupted,
    #[error("cannot convert a read-back from {from:?} to {to:?}")]
    Conversion { from: Fourcc, to: Fourcc },
}

/// How to create the renderer (the CLI builds it: `Cli::renderer_options`).
#[derive(Debug, Clone, Default)]
pub struct RendererOptions {
    /// Which Vulkan device.
    pub device: DeviceSelection,
    /// The KMS card's (major, minor), on the DRM backend: the device behind
    /// it renders where it can.
    pub kms_node: Option<(i64, i64)>,
    /// How client buffers are imported.
    pub import: ImportPolicy,
    /// Submit every frame to the device, even those the compositor thread
    /// could write itself on a CPU device.
    pub submit_every_frame: bool,
}

/// A texture: an imported client buffer or a compositor-owned upload.
#[derive(Debug, Clone)]
pub struct VkTexture {
    pub(crate) drawable: Drawable,
    pub(crate) y_inverted: bool,
    /// How a YUV buffer's values become colours, as its surface says.
    pub(crate) representation: Representation,
}

impl Texture for VkTexture {
    fn width(&self) -> u32 {
        self.drawable.width()
    }
    fn height(&self) -> u32 {
        self.drawable.height()
    }
    fn format(&self) -> Option<Fourcc> {
        Some(self.drawable.format().fourcc)
    }
}

/// A surface's colour representation, as its client stated it
/// (double-buffered surface state, written by the colour-representation
/// protocol): read when the surface's dma-buf is imported, so a YUV buffer
/// is sampled with the surface's coefficients, range and chroma siting.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SurfaceRepresentation {
    /// `None` until the client states anything: BT.601 limited range.
    pub stated: Option<Representation>,
    /// Whether the client stated coefficients (not only a chroma location).
    pub coefficients: bool,
}

impl Cacheable for SurfaceRepresentation {
    fn commit(&mut self, _dh: &DisplayHandle) -> Self {
        *self
    }
    fn merge_into(self, into: &mut Self, _dh: &DisplayHandle) {
        *into = self;
    }
}

/// An offscreen render target (the headless output).
#[derive(Debug)]
pub struct VkTarget {
    target: Target,
}

/// A bound [`VkTarget`].
#[derive(Debug)]
pub struct VkFramebuffer<'a> {
    target: &'a mut VkTarget,
}

impl Texture for VkFramebuffer<'_> {
    fn width(&self) -> u32 {
        self.target.target.width
    }
    fn height(&self) -> u32 {
        self.target.target.height
    }
    fn format(&self) -> Option<Fourcc> {
        Some(self.target.target.format.fourcc)
    }
}

/// Pixels read back from a target or texture.
#[derive(Debug)]
pub struct VkMapping {
    readback: Readback,
    requested: importer::FormatInfo,
    converted: std::sync::OnceLock<Vec<u8>>,
}

impl VkMapping {
    /// Whether the copy finished, so `map_texture` will not block (non-blocking).
    pub fn is_ready(&self) -> bool {
        self.readback.fence.is_signaled()
    }
}

impl Texture for VkMapping {
    fn width(&self) -> u32 {
        self.readback.region.width
    }
    fn height(&self) -> u32 {
        self.readback.region.height
    }
    fn format(&self) -> Option<Fourcc> {
        Some(self.requested.fourcc)
    }
}

impl TextureMapping for VkMapping {
    fn flipped(&self) -> bool {
        false
    }
}

/// The renderer.
#[derive(Debug)]
pub struct VkRenderer {
    core: RenderCore,
    context_id: ContextId<VkTexture>,
    dmabufs: HashMap<WeakDmabuf, ClientBuffer>,
    /// dma-bufs of destroyed `wl_buffer`s not gone yet.
    dying: Vec<WeakDmabuf>,
    shm: HashMap<smithay::reexports::wayland_server::backend::ObjectId, (WlBuffer, VkTexture)>,
    upscale: TextureFilter,
    downscale: TextureFilter,
    debug: DebugFlags,
}

fn filter(f: TextureFilter) -> Filter {
    match f {
        TextureFilter::Linear => Filter::Linear,
        TextureFilter::Nearest => Filter::Nearest,
    }
}

/// Builds the importer's description of a smithay dmabuf (fds are dup'd).
fn describe(dmabuf: &Dmabuf) -> Result<DmabufDesc, Error> {
    let format = dmabuf.format();
    let planes = dmabuf
        .handles()
        .zip(dmabuf.offsets())
        .zip(dmabuf.strides())
        .map(|((fd, offset), stride): ((BorrowedFd<'_>, u32), u32)| {
            Ok(DmabufPlane {
                fd: fd.try_clone_to_owned().map_err(VkError::Io)?,
                offset,
                stride,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(DmabufDesc {
        width: dmabuf.width(),
        height: dmabuf.height(),
        fourcc: format.code,
        modifier: DrmModifier::from(u64::from(format.modifier)),
        flags: if dmabuf.y_inverted() {
            DmabufFlags::Y_INVERT.bits()
        } else {
            0
        },
        planes,
    })
}

fn region(r: Rectangle<i32, BufferCoord>) -> Region {
    Region {
        x: r.loc.x.max(0) as u32,
        y: r.loc.y.max(0) as u32,
        width: r.size.w.max(0) as u32,
        height: r.size.h.max(0) as u32,
    }
}

/// The smithay formats of `infos` with `modifier`.
fn format_set(infos: impl Iterator<Item = importer::FormatInfo>, modifier: Modifier) -> FormatSet {
    infos
        .map(|f| Format {
            code: f.fourcc,
            modifier,
        })
        .collect()
}

impl VkRenderer {
    /// Picks a Vulkan device and builds the renderer.
    pub fn new(options: &RendererOptions) -> Result<VkRenderer, Error> {
        let core = RenderCore::new(CoreOptions {
            device: options.device.clone(),
            kms_node: options.kms_node,
            import: options.import,
            submit_every_frame: options.submit_every_frame,
        })?;
        Ok(VkRenderer {
            core,
            context_id: ContextId::new(),
            dmabufs: HashMap::new(),
            dying: Vec::new(),
            shm: HashMap::new(),
            upscale: TextureFilter::Linear,
            downscale: TextureFilter::Linear,
            debug: DebugFlags::empty(),
        })
    }

    /// Imports a client dma-buf at creation (`zwp_linux_buffer_params_v1`):
    /// picks its path and creates its import, reads no pixels and waits for
    /// no fence, so a buffer whose write fence is still pending is not
    /// refused for it. Its first use copies (CPU fallback) or samples it.
    pub fn import_new(&mut self, dmabuf: &Dmabuf) -> Result<ClientBuffer, Error> {
        let buf = self.core.importer_mut().import(&describe(dmabuf)?)?;
        self.dmabufs.insert(dmabuf.weak(), buf.clone());
        Ok(buf)
    }

    /// Whether `dmabuf` was imported on the CPU fallback (its pixels are
    /// read by the CPU, so no GPU can wait for its fences).
    pub fn takes_cpu_path(&self, dmabuf: &Dmabuf) -> bool {
        self.dmabufs
            .get(&dmabuf.weak())
            .is_some_and(|b| b.cpu_source().is_some())
    }

    /// The imported client buffer of `dmabuf` when its CPU-fallback copies
    /// belong on a worker thread (`crate::cpu_copy`). Locks: none.
    pub fn worker_copy(&self, dmabuf: &Dmabuf) -> Option<ClientBuffer> {
        let buf = self.dmabufs.get(&dmabuf.weak())?;
        buf.worker_copy().is_some().then(|| buf.clone())
    }

    /// The client destroyed `buffer`: its shm texture goes now; its
    /// dma-buf's import goes once the dma-buf is gone (every handle to the
    /// `wl_buffer` dropped), found by [`Self::drop_dead_imports`].
    ///
    /// Locks: none taken or needed (no import is touched here).
    pub fn forget_buffer(&mut self, buffer: &WlBuffer) {
        self.shm.remove(&buffer.id());
        if let Ok(dmabuf) = smithay::wayland::dmabuf::get_dmabuf(buffer) {
            self.forget_dmabuf(dmabuf);
        }
    }

    /// Nothing but what already holds `dmabuf` will use it (its `wl_buffer`
    /// is destroyed, or was never created): its import goes once it is
    /// gone, found by [`Self::drop_dead_imports`].
    ///
    /// Locks: none taken or needed (it only records the dma-buf).
    pub fn forget_dmabuf(&mut self, dmabuf: &Dmabuf) {
        self.dying.push(dmabuf.weak());
    }

    /// Destroys the imports of watched dma-bufs that are gone (invalidate
    /// under the lock, bury; freed by [`Self::poll_graveyard`] after the
    /// fences) and frees finished frames. Never blocks: call it from the
    /// frame tick.
    ///
    /// Locks: none may be a reservation (each destroy takes its own).
    pub fn drop_dead_imports(&mut self) {
        for weak in self.dying.extract_if(.., |weak| weak.is_gone()) {
            if let Some(buf) = self.dmabufs.remove(&weak) {
                self.core.importer_mut().destroy(&buf, true);
            }
        }
        self.core.retire();
    }

    /// Frees dead imports whose fences signaled (graveyard poll). Never
    /// blocks: call it from the frame tick. Locks: none may be held.
    pub fn poll_graveyard(&mut self) -> usize {
        self.core.importer_mut().poll_graveyard(true)
    }

    /// Reservation counters for `--stats`.
    pub fn reservation_stats(&self) -> ReservationStats {
        self.core.importer().reservation_stats()
    }

    /// Exit-time teardown: destroys every cached dma-buf import (the client
    /// is gone or the compositor is stopping), waits for the device to go
    /// idle (blocking: teardown only, no lock held) and frees what the
    /// graveyard holds.
    pub fn teardown_imports(&mut self) {
        for (_, buf) in self.dmabufs.drain() {
            self.core.importer_mut().destroy(&buf, false);
        }
        self.core.wait_idle();
        self.core.importer_mut().poll_graveyard(false);
    }

    /// The DRM render node of the device, when the driver reports it.
    pub fn main_device(&self) -> Option<libc::dev_t> {
        self.core
            .ctx
            .caps
            .render_node
            .map(|(major, minor)| libc::makedev(major as u32, minor as u32))
    }

    /// Whether the device is a CPU rasterizer (lavapipe), which imports a
    /// dma-buf by mapping it, whatever device allocated it.
    pub fn is_cpu(&self) -> bool {
        self.core.ctx.caps.device_type == ash::vk::PhysicalDeviceType::CPU
    }

    /// On the DRM backend: whether the renderer is the KMS card's device
    /// (`None`: no device reported a DRM node, so it is not known).
    pub fn renders_on_kms_device(&self) -> Option<bool> {
        self.core.ctx.renders_on_kms
    }

    /// Import counters by path.
    pub fn import_stats(&self) -> ImportStats {
        self.core.importer().stats()
    }

    /// Quads of the frames rendered so far: copied, drawn opaque, drawn blending.
    pub fn draw_stats(&self) -> importer::vulkan::recorder::DrawStats {
        self.core.draw_stats()
    }

    /// Client textures freed after the in-flight frame holding their last
    /// reference finished (asynchronous invalidation).
    pub fn deferred_texture_frees(&self) -> u64 {
        self.core.deferred_texture_frees()
    }

    /// Modifiers of `fourcc` the renderer can render into as a single-plane
    /// scan-out buffer, in the device's order.
    pub fn scanout_modifiers(&self, fourcc: Fourcc) -> Vec<u64> {
        let formats = self.core.importer().formats();
        formats
            .scanout_modifiers(fourcc)
            .filter(|m| formats.entry(fourcc, *m).is_some_and(|e| e.planes == 1))
            .collect()
    }

    /// The modifiers advertised for `fourcc`, in the device's order.
    pub fn advertised_modifiers(&self, fourcc: Fourcc) -> Vec<u64> {
        let formats = self.core.importer().formats();
        formats.pairs().filter(|(f, _)| *f == fourcc).map(|(_, m)| m).collect()
    }

    /// The negotiated table as Markdown rows: format | modifier | planes |
    /// zero-copy | scan-out.
    pub fn format_table_lines(&self) -> Vec<String> {
        let formats = self.core.importer().formats();
        formats
            .pairs()
            .filter_map(|(f, m)| {
                let e = formats.entry(f, m)?;
                Some(format!(
                    "| {f} | {m:#018x} | {} | {} | {} |",
                    e.planes, e.zero_copy, e.scanout
                ))
            })
            .collect()
    }

    /// The Vulkan device's name.
    pub fn device_name(&self) -> String {
        self.core.ctx.caps.name.clone()
    }

    /// One line describing the device and its import capabilities.
    pub fn device_summary(&self) -> String {
        self.core.ctx.caps.summary()
    }

    /// Imports a scan-out dma-buf the compositor allocated (DRM backend) as a
    /// render target, zero-copy. Errors if the device cannot render into it;
    /// the caller then falls back to an offscreen target and a CPU copy.
    pub fn import_scanout(&mut self, dmabuf: &Dmabuf) -> Result<VkTarget, Error> {
        let desc = describe(dmabuf)?;
        let info = format_info(desc.fourcc).ok_or(Error::UnsupportedFormat(dmabuf.format().code))?;
        let target = self.core.import_target(info, &desc)?;
        Ok(VkTarget { target })
    }

    /// The renderer core (benchmarks and tests).
    pub fn core(&self) -> &RenderCore {
        &self.core
    }

    fn owned(&self, texture: Arc<importer::vulkan::texture::Texture>, y_inverted: bool) -> VkTexture {
        VkTexture {
            drawable: Drawable::Owned(texture),
            y_inverted,
            representation: Representation::default(),
        }
    }
}

impl RendererSuper for VkRenderer {
    type Error = Error;
    type TextureId = VkTexture;
    type Framebuffer<'buffer> = VkFramebuffer<'buffer>;
    type Frame<'frame, 'buffer>
        = VkFrame<'frame>
    where
        'buffer: 'frame,
        Self: 'frame;
}

impl Renderer for VkRenderer {
    fn context_id(&self) -> ContextId<VkTexture> {
        self.context_id.clone()
    }

    fn downscale_filter(&mut self, filter: TextureFilter) -> Result<(), Error> {
        self.downscale = filter;
        Ok(())
    }

    fn upscale_filter(&mut self, filter: TextureFilter) -> Result<(), Error> {
        self.upscale = filter;
        Ok(())
    }

    fn set_debug_flags(&mut self, flags: DebugFlags) {
        self.debug = flags;
    }

    fn debug_flags(&self) -> DebugFlags {
        self.debug
    }

    fn render<'frame, 'buffer>(
        &'frame mut self,
        framebuffer: &'frame mut VkFramebuffer<'buffer>,
        _output_size: Size<i32, Physical>,
        dst_transform: Transform,
    ) -> Result<VkFrame<'frame>, Error>
    where
        'buffer: 'frame,
    {
        let target = &framebuffer.target.target;
        let recorder = self.core.begin_frame(target, filter(self.upscale))?;
        Ok(VkFrame {
            core: &self.core,
            recorder: Some(recorder),
            context_id: self.context_id.clone(),
            fb_size: Size::from((target.width as i32, target.height as i32)),
            transform: dst_transform,
        })
    }

    fn wait(&mut self, sync: &SyncPoint) -> Result<(), Error> {
        sync.wait().map_err(|_| Error::Interrupted)
    }

    /// Destroys imports whose client dma-buf is gone (invalidate under the
    /// lock, bury; freed by [`VkRenderer::poll_graveyard`] after the fences)
    /// and drops shm textures of dead buffers. Never blocks.
    ///
    /// Locks: none may be a reservation (each destroy takes its own).
    fn cleanup_texture_cache(&mut self) -> Result<(), Error> {
        for (_, buf) in self.dmabufs.extract_if(|weak, _| weak.is_gone()) {
            self.core.importer_mut().destroy(&buf, true);
        }
        self.dying.retain(|weak| !weak.is_gone());
        self.shm.retain(|_, (buffer, _)| buffer.is_alive());
        self.core.retire();
        Ok(())
    }
}

impl ImportMem for VkRenderer {
    fn import_memory(
        &mut self,
        data: &[u8],
        format: Fourcc,
        size: Size<i32, BufferCoord>,
        flipped: bool,
    ) -> Result<VkTexture, Error> {
        let info = rgb_formats()
            .find(|f| f.fourcc == format)
            .ok_or(Error::UnsupportedFormat(format))?;
        let (w, h) = (size.w.max(0) as u32, size.h.max(0) as u32);
        let stride = w as usize * info.bytes_per_pixel as usize;
        let texture = self.core.importer().upload(data, info, w, h, stride)?;
        Ok(self.owned(texture, flipped))
    }

    fn update_memory(&mut self, texture: &VkTexture, data: &[u8], r: Rectangle<i32, BufferCoord>) -> Result<(), Error> {
        let tex = texture.drawable.texture();
        let stride = tex.width as usize * tex.format.bytes_per_pixel as usize;
        tex.queue_upload(data, stride, region(r))?;
        Ok(())
    }

    fn mem_formats(&self) -> Box<dyn Iterator<Item = Fourcc>> {
        Box::new(rgb_formats().map(|f| f.fourcc))
    }
}

impl ImportMemWl for VkRenderer {
    fn import_shm_buffer(
        &mut self,
        buffer: &WlBuffer,
        _surface: Option<&SurfaceData>,
        damage: &[Rectangle<i32, BufferCoord>],
    ) -> Result<VkTexture, Error> {
        let cached = self.shm.get(&buffer.id()).map(|(_, t)| t.clone());
        let importer = self.core.importer();
        let result = with_buffer_contents(buffer, |ptr, len, data| -> Result<VkTexture, Error> {
            let fourcc = shm_format_to_fourcc(data.format).ok_or(Error::Shm(format!("format {:?}", data.format)))?;
            let info = rgb_formats()
                .find(|f| f.fourcc == fourcc)
                .ok_or(Error::UnsupportedFormat(fourcc))?;
            let (offset, stride) = (data.offset.max(0) as usize, data.stride.max(0) as usize);
            let (w, h) = (data.width.max(0) as u32, data.height.max(0) as u32);
            let end = offset + stride * h as usize;
            if end > len {
                return Err(Error::Shm(format!("buffer ends at {end}, pool has {len} bytes")));
            }
            // SAFETY: smithay keeps the pool mapped for the closure and handles SIGBUS on it.
            let bytes = unsafe { std::slice::from_raw_parts(ptr.add(offset), end - offset) };
            match cached.filter(|t| t.width() == w && t.height() == h && t.format() == Some(fourcc)) {
                Some(tex) => {
                    for d in damage {
                        tex.drawable.texture().queue_upload(bytes, stride, region(*d))?;
                    }
                    Ok(tex)
                }
                None => Ok(VkTexture {
                    drawable: Drawable::Owned(importer.upload(bytes, info, w, h, stride)?),
                    y_inverted: false,
                    representation: Representation::default(),
                }),
            }
        })
        .map_err(|e| Error::Shm(e.to_string()))??;
        // A buffer destroyed already (a surface's state still holds its
        // handle) is not cached: nothing would remove it
        // ([`Self::forget_buffer`] ran).
        if buffer.is_alive() {
            self.shm.insert(buffer.id(), (buffer.clone(), result.clone()));
        }
        Ok(result)
    }
}

impl ImportDma for VkRenderer {
    /// Exactly the negotiated pairs (`importer::vulkan::modifiers`): the
    /// device's modifiers that it can import and sample, and LINEAR for
    /// every format. Anything else is refused before a Vulkan call.
    fn dmabuf_formats(&self) -> FormatSet {
        self.core
            .importer()
            .formats()
            .pairs()
            .map(|(code, modifier)| Format {
                code,
                modifier: Modifier::from(modifier),
            })
            .collect()
    }

    /// Render time: the buffer, imported if it was not at creation, brought
    /// up to date with `damage` (`ClientBuffer::refresh`; the commit was held
    /// until its fences allowed reading it).
    fn import_dmabuf(
        &mut self,
        dmabuf: &Dmabuf,
        damage: Option<&[Rectangle<i32, BufferCoord>]>,
    ) -> Result<VkTexture, Error> {
        let buf = match self.dmabufs.get(&dmabuf.weak()) {
            Some(buf) => {
                let regions: Option<Vec<Region>> = damage.map(|d| d.iter().map(|r| region(*r)).collect());
                buf.refresh(regions.as_deref())?;
                buf.clone()
            }
            None => {
                let buf = self.import_new(dmabuf)?;
                if buf.cpu_source().is_some() {
                    buf.refresh(None)?;
                }
                buf
            }
        };
        Ok(VkTexture {
            drawable: Drawable::Client(buf),
            y_inverted: dmabuf.y_inverted(),
            representation: Representation::default(),
        })
    }
}

impl ImportDmaWl for VkRenderer {
    /// [`ImportDma::import_dmabuf`], sampled as the surface's committed
    /// [`SurfaceRepresentation`] says.
    fn import_dma_buffer(
        &mut self,
        buffer: &WlBuffer,
        surface: Option<&SurfaceData>,
        damage: &[Rectangle<i32, BufferCoord>],
    ) -> Result<VkTexture, Error> {
        let dmabuf = smithay::wayland::dmabuf::get_dmabuf(buffer).map_err(|_| Error::NotDmabuf)?;
        let mut texture = self.import_dmabuf(dmabuf, Some(damage))?;
        // `has` first: asking a surface without a color-representation
        // object with `get` would add a cache that smithay then commits
        // with every state of that surface.
        if let Some(data) = surface.filter(|d| d.cached_state.has::<SurfaceRepresentation>()) {
            let mut cached = data.cached_state.get::<SurfaceRepresentation>();
            texture.representation = cached.current().stated.unwrap_or_default();
        }
        Ok(texture)
    }
}

impl Bind<VkTarget> for VkRenderer {
    fn bind<'a>(&mut self, target: &'a mut VkTarget) -> Result<VkFramebuffer<'a>, Error> {
        Ok(VkFramebuffer { target })
    }

    fn supported_formats(&self) -> Option<FormatSet> {
        Some(format_set(rgb_formats(), Modifier::Invalid))
    }
}

impl Offscreen<VkTarget> for VkRenderer {
    fn create_buffer(&mut self, format: Fourcc, size: Size<i32, BufferCoord>) -> Result<VkTarget, Error> {
        let info = rgb_formats()
            .find(|f| f.fourcc == format)
            .ok_or(Error::UnsupportedFormat(format))?;
        let target = self
            .core
            .create_target(info, size.w.max(1) as u32, size.h.max(1) as u32)?;
        Ok(VkTarget { target })
    }
}

/// The format a read-back of `from` is converted to, if it can be.
fn read_back_format(from: &importer::FormatInfo, to: Fourcc) -> Result<importer::FormatInfo, Error> {
    format_info(to)
        .filter(|t| can_convert(from, t))
        .ok_or(Error::Conversion { from: from.fourcc, to })
}

impl ExportMem for VkRenderer {
    type TextureMapping = VkMapping;

    fn copy_framebuffer(
        &mut self,
        target: &VkFramebuffer<'_>,
        r: Rectangle<i32, BufferCoord>,
        format: Fourcc,
    ) -> Result<VkMapping, Error> {
        let target = &target.target.target;
        let requested = read_back_format(&target.format, format)?;
        let readback = self.core.read_target(target, region(r))?;
        Ok(VkMapping {
            readback,
            requested,
            converted: Default::default(),
        })
    }

    fn copy_texture(
        &mut self,
        texture: &VkTexture,
        r: Rectangle<i32, BufferCoord>,
        format: Fourcc,
    ) -> Result<VkMapping, Error> {
        let requested = read_back_format(&texture.drawable.format(), format)?;
        let readback = self.core.read_texture(&texture.drawable, region(r))?;
        Ok(VkMapping {
            readback,
            requested,
            converted: Default::default(),
        })
    }

    fn can_read_texture(&mut self, _texture: &VkTexture) -> Result<bool, Error> {
        Ok(true)
    }

    /// Blocks until the copy is done (screenshots, tests): never call it on a
    /// hot path of the event loop.
    fn map_texture<'a>(&mut self, mapping: &'a VkMapping) -> Result<&'a [u8], Error> {
        if let Some(bytes) = mapping.converted.get() {
            return Ok(bytes);
        }
        let raw = mapping.readback.wait_bytes()?;
        let (from, to) = (&mapping.readback.format, &mapping.requested);
        let bytes = convert_pixels(raw, from, to).ok_or(Error::Conversion {
            from: from.fourcc,
            to: to.fourcc,
        })?;
        Ok(mapping.converted.get_or_init(|| bytes))
    }
}
