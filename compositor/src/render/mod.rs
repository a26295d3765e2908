//! Our Vulkan renderer, behind smithay 0.7's renderer traits.
//!
//! `VkRenderer` implements `Renderer`, `Frame` (see [`frame`]), `ImportMem`,
//! `ImportMemWl`, `ImportDma`, `ImportDmaWl`, `Bind`/`Offscreen` for offscreen
//! targets, and `ExportMem`, so smithay's damage tracker and render elements
//! drive it and any smithay compositor could adopt it. The Vulkan work lives
//! in the `importer` crate; this module maps smithay's types onto it.
//!
//! DOC: texture caches
//!
//! * dma-buf imports are cached per `WeakDmabuf`: a buffer committed again is
//!   not re-imported (the image path *is* the client's memory; the buffer path
//!   queues a GPU copy of the damage). Each import lives under its buffer's
//!   reservation (`importer::vulkan::client_buffer`). Entries whose dmabuf is
//!   gone are destroyed in `cleanup_texture_cache` (called from the frame
//!   tick): invalidated under the lock and buried in a graveyard
//!   ([`reservations`]) that the frame tick polls; the GPU objects are freed
//!   only after the fences of the frames that sampled them signal.
//! * Frames register every client buffer they sample (`Recorder::sample`);
//!   `RenderCore::submit_frame` locks them all in buffer-id order around the
//!   submission and adds the frame's fence (rules B1, B4).
//! * shm buffers are cached per live `wl_buffer` and updated with damage.
//!
//! DOC: CPU fallback
//!
//! A dma-buf the device cannot import (an error that is the device's limit,
//! not the client's fault) is read through its CPU mapping instead
//! (`importer::vulkan::cpu_import`), as is every dma-buf with
//! `--cpu-fallback`. Its path is logged and counted like the GPU paths.
//! Buffers below the copy threshold are copied on the loop when imported and
//! at each commit (damage only). Larger ones are copied on a worker thread
//! ([`copy_worker`]) while their commit is held (`sync::cpu_copy`); the
//! upload it stages is queued by [`VkRenderer::staged_upload_ready`] and the
//! render-time import then skips its own copy.

mod convert;
pub mod copy_worker;
pub mod frame;
pub mod reservations;

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use drm_fourcc::{DrmFourcc, DrmModifier};
use importer::vulkan::client_buffer::{BufferReservation, ClientBuffer};
use importer::vulkan::cpu_import::CpuSource;
use importer::vulkan::pipeline::Filter;
use importer::vulkan::render::{CoreOptions, RenderCore};
use importer::vulkan::target::{Readback, Target};
use importer::vulkan::texture::{Region, Texture as VkImageTexture};
use importer::vulkan::{DeviceSelection, VkError};
use importer::{format::format_info, DmabufDesc, DmabufPlane};
use smithay::backend::allocator::dmabuf::{Dmabuf, DmabufFlags, WeakDmabuf};
use smithay::backend::allocator::format::FormatSet;
use smithay::backend::allocator::{Buffer, Format, Fourcc, Modifier};
use smithay::backend::renderer::sync::SyncPoint;
use smithay::backend::renderer::{
    Bind, ContextId, DebugFlags, ExportMem, ImportDma, ImportDmaWl, ImportMem, ImportMemWl, Offscreen, Renderer,
    RendererSuper, Texture, TextureFilter, TextureMapping,
};
use smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer;
use smithay::reexports::wayland_server::Resource;
use smithay::utils::{Buffer as BufferCoord, Physical, Rectangle, Size, Transform};
use smithay::wayland::compositor::SurfaceData;
use smithay::wayland::shm::{shm_format_to_fourcc, with_buffer_contents};

pub use frame::VkFrame;
pub use importer::ImportStats;

/// Errors of the renderer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Vulkan(#[from] VkError),
    #[error("format {0:?} is not supported")]
    UnsupportedFormat(Fourcc),
    #[error("shm buffer: {0}")]
    Shm(String),
    #[error("the frame was already submitted")]
    FrameFinished,
    #[error("interrupted while waiting for a fence")]
    Interrupted,
    #[error("cannot convert a read-back from {from:?} to {to:?}")]
    Conversion { from: Fourcc, to: Fourcc },
}

/// How to create the renderer.
#[derive(Debug, Clone, Default)]
pub struct RendererOptions {
    /// Device index or name substring; `None` picks the best device.
    pub device: Option<String>,
    /// Import every dma-buf through the buffer path (tests the fallback).
    pub force_buffer_path: bool,
    /// Import every dma-buf through the CPU fallback (tests that path).
    pub cpu_fallback: bool,
}

/// A texture: an imported dma-buf or an uploaded image.
#[derive(Debug, Clone)]
pub struct VkTexture {
    pub(crate) inner: Arc<VkImageTexture>,
    pub(crate) y_inverted: bool,
    /// The mapped client buffer of a CPU fallback import, copied again on
    /// every commit of the buffer.
    pub(crate) cpu: Option<Arc<CpuSource>>,
    /// The client buffer's reservation (dma-buf imports; `None` for shm and
    /// memory uploads, which the compositor owns outright).
    pub(crate) resv: Option<Arc<BufferReservation>>,
}

impl VkTexture {
    fn from_client(buf: ClientBuffer, y_inverted: bool) -> VkTexture {
        VkTexture {
            inner: buf.texture,
            y_inverted,
            cpu: buf.cpu,
            resv: Some(buf.resv),
        }
    }

    fn owned(inner: Arc<VkImageTexture>, y_inverted: bool) -> VkTexture {
        VkTexture {
            inner,
            y_inverted,
            cpu: None,
            resv: None,
        }
    }
}

impl Texture for VkTexture {
    fn width(&self) -> u32 {
        self.inner.width
    }
    fn height(&self) -> u32 {
        self.inner.height
    }
    fn format(&self) -> Option<Fourcc> {
        Some(self.inner.format.fourcc)
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
    requested: Fourcc,
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
        Some(self.requested)
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
    cpu_fallback: bool,
    context_id: ContextId<VkTexture>,
    dmabufs: HashMap<WeakDmabuf, VkTexture>,
    /// Dead imports and mappings the graveyard freed once their fences
    /// signaled (`poll_graveyard`, from the frame tick).
    invalidated_freed: u64,
    shm: HashMap<smithay::reexports::wayland_server::backend::ObjectId, (WlBuffer, VkTexture)>,
    upscale: TextureFilter,
    downscale: TextureFilter,
    debug: DebugFlags,
    /// Destroyed client buffers waiting for their fences.
    reservations: reservations::Reservations,
    /// CPU-fallback copies of at least this many bytes run on the worker.
    copy_threshold: u64,
    /// Buffers (reservation ids) whose next commit's upload the worker
    /// already staged: the render-time import does not copy them again.
    staged_by_worker: std::collections::HashSet<u64>,
}

const MEM_FORMATS: [Fourcc; 4] = [Fourcc::Argb8888, Fourcc::Xrgb8888, Fourcc::Abgr8888, Fourcc::Xbgr8888];

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

/// Whether a GPU import error is the device's limit (take the CPU fallback)
/// rather than the client's fault (an invalid buffer stays an error).
fn falls_back(e: &VkError) -> bool {
    !matches!(e, VkError::Dmabuf(_) | VkError::Io(_))
}

fn region(r: Rectangle<i32, BufferCoord>) -> Region {
    Region {
        x: r.loc.x.max(0) as u32,
        y: r.loc.y.max(0) as u32,
        width: r.size.w.max(0) as u32,
        height: r.size.h.max(0) as u32,
    }
}

impl VkRenderer {
    /// Picks a Vulkan device and builds the renderer.
    pub fn new(options: &RendererOptions) -> Result<VkRenderer, Error> {
        let device = options
            .device
            .clone()
            .or_else(|| std::env::var("COMPOSITOR_VK_DEVICE").ok());
        let core = RenderCore::new(CoreOptions {
            device: DeviceSelection::from_option(device.as_deref()),
            force_buffer_path: options.force_buffer_path,
        })?;
        Ok(VkRenderer {
            core,
            cpu_fallback: options.cpu_fallback,
            context_id: ContextId::new(),
            dmabufs: HashMap::new(),
            invalidated_freed: 0,
            shm: HashMap::new(),
            upscale: TextureFilter::Linear,
            downscale: TextureFilter::Linear,
            debug: DebugFlags::empty(),
            reservations: Default::default(),
            copy_threshold: copy_worker::threshold(),
            staged_by_worker: Default::default(),
        })
    }

    /// The mapped source and texture of a cached CPU-fallback import whose
    /// copy belongs on the worker (at least the copy threshold), if
    /// `dmabuf` is one. Locks: none.
    pub fn worker_copy_source(&self, dmabuf: &Dmabuf) -> Option<(Arc<CpuSource>, VkTexture)> {
        let tex = self.dmabufs.get(&dmabuf.weak())?;
        let cpu = tex.cpu.as_ref()?;
        (cpu.copy_bytes() >= self.copy_threshold).then(|| (cpu.clone(), tex.clone()))
    }

    /// The worker staged a copy of `texture`'s buffer: queue it, and let the
    /// render-time import of the held commit skip its own copy.
    /// Locks: none (the texture's pending list is a leaf lock).
    pub fn staged_upload_ready(&mut self, texture: &VkTexture, staged: importer::vulkan::texture::StagedUpload) {
        texture.inner.queue_staged(staged);
        if let Some(resv) = &texture.resv {
            self.staged_by_worker.insert(resv.id());
        }
    }

    /// Frees dead imports whose fences signaled (graveyard poll). Never
    /// blocks: call it from the frame tick. Locks: none may be held.
    pub fn poll_graveyard(&mut self) -> usize {
        let freed = self.reservations.poll(true);
        self.invalidated_freed += freed as u64;
        freed
    }

    /// Reservation counters for `--stats`.
    pub fn reservation_stats(&self) -> reservations::ReservationStats {
        self.reservations.stats()
    }

    /// Exit-time teardown: destroys every cached dma-buf import (the client
    /// is gone or the compositor is stopping), waits for the device to go
    /// idle (blocking: teardown only, no lock held) and frees what the
    /// graveyard holds.
    pub fn teardown_imports(&mut self) {
        for (_, tex) in self.dmabufs.drain() {
            if let Some(resv) = &tex.resv {
                self.reservations.destroy(resv, false);
            }
        }
        self.core.wait_idle();
        self.reservations.poll(false);
    }

    /// The DRM render node of the device, when the driver reports it.
    pub fn main_device(&self) -> Option<libc::dev_t> {
        self.core
            .ctx
            .caps
            .render_node
            .map(|(major, minor)| libc::makedev(major as u32, minor as u32))
    }

    /// Import counters by path.
    pub fn import_stats(&self) -> ImportStats {
        self.core.stats()
    }

    /// SYNC: client textures freed after the in-flight frame holding their
    /// last reference finished (asynchronous invalidation).
    pub fn deferred_texture_frees(&self) -> u64 {
        self.core.deferred_texture_frees()
    }

    /// SYNC: invalidated imports freed by the graveyard while running, once
    /// the fences of the frames that sampled them signaled.
    pub fn invalidated_imports_freed(&self) -> u64 {
        self.invalidated_freed
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
        for (_, tex) in self.dmabufs.extract_if(|weak, _| weak.is_gone()) {
            if let Some(resv) = &tex.resv {
                self.reservations.destroy(resv, true);
            }
        }
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
        let info = format_info(format).ok_or(Error::UnsupportedFormat(format))?;
        let (w, h) = (size.w.max(0) as u32, size.h.max(0) as u32);
        let inner = self
            .core
            .upload(data, info, w, h, w as usize * info.bytes_per_pixel as usize)?;
        Ok(VkTexture::owned(inner, flipped))
    }

    fn update_memory(&mut self, texture: &VkTexture, data: &[u8], r: Rectangle<i32, BufferCoord>) -> Result<(), Error> {
        let stride = texture.inner.width as usize * texture.inner.format.bytes_per_pixel as usize;
        texture.inner.queue_upload(data, stride, region(r))?;
        Ok(())
    }

    fn mem_formats(&self) -> Box<dyn Iterator<Item = Fourcc>> {
        Box::new(MEM_FORMATS.into_iter())
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
        let core = &self.core;
        let result = with_buffer_contents(buffer, |ptr, len, data| -> Result<VkTexture, Error> {
            let fourcc = shm_format_to_fourcc(data.format).ok_or(Error::Shm(format!("format {:?}", data.format)))?;
            let info = format_info(fourcc).ok_or(Error::UnsupportedFormat(fourcc))?;
            let (offset, stride) = (data.offset.max(0) as usize, data.stride.max(0) as usize);
            let (w, h) = (data.width.max(0) as u32, data.height.max(0) as u32);
            let end = offset + stride * h as usize;
            if end > len {
                return Err(Error::Shm(format!("buffer ends at {end}, pool has {len} bytes")));
            }
            // SAFETY: smithay keeps the pool mapped for the closure and handles SIGBUS on it.
            let bytes = unsafe { std::slice::from_raw_parts(ptr.add(offset), end - offset) };
            match cached.filter(|t| t.inner.width == w && t.inner.height == h && t.inner.format.fourcc == fourcc) {
                Some(tex) => {
                    for d in damage {
                        tex.inner.queue_upload(bytes, stride, region(*d))?;
                    }
                    Ok(tex)
                }
                None => Ok(VkTexture::owned(core.upload(bytes, info, w, h, stride)?, false)),
            }
        })
        .map_err(|e| Error::Shm(e.to_string()))??;
        self.shm.insert(buffer.id(), (buffer.clone(), result.clone()));
        Ok(result)
    }
}

impl ImportDma for VkRenderer {
    fn dmabuf_formats(&self) -> FormatSet {
        if !self.core.ctx.caps.can_import_dmabuf() {
            return FormatSet::default();
        }
        // NV12 (LINEAR) always takes the CPU path and is converted on the GPU
        // by a compute shader (importer::vulkan::yuv), so any device can show it.
        MEM_FORMATS
            .iter()
            .chain(&[Fourcc::Nv12])
            .map(|&code| Format {
                code,
                modifier: Modifier::Linear,
            })
            .collect()
    }

    fn import_dmabuf(
        &mut self,
        dmabuf: &Dmabuf,
        damage: Option<&[Rectangle<i32, BufferCoord>]>,
    ) -> Result<VkTexture, Error> {
        if let Some(tex) = self.dmabufs.get(&dmabuf.weak()) {
            let regions: Option<Vec<Region>> = damage.map(|d| d.iter().map(|r| region(*r)).collect());
            let staged = tex.resv.as_ref().is_some_and(|r| self.staged_by_worker.remove(&r.id()));
            match &tex.cpu {
                Some(_) if staged => {} // the worker copied it while the commit was held
                Some(cpu) if cpu.nv12 => cpu.copy_into(&tex.inner, None)?, // converted whole
                Some(cpu) => match regions {
                    Some(rs) => rs.into_iter().try_for_each(|r| cpu.copy_into(&tex.inner, Some(r)))?,
                    None => cpu.copy_into(&tex.inner, None)?,
                },
                None => tex.inner.queue_dmabuf_refresh(regions.as_deref()),
            }
            return Ok(tex.clone());
        }
        let desc = describe(dmabuf)?;
        // NV12 has no GPU import path yet: its CPU path converts it (README "NV12").
        let nv12 = desc.fourcc == DrmFourcc::Nv12;
        let gpu = if self.cpu_fallback || nv12 {
            None
        } else {
            Some(self.core.import_dmabuf(&desc))
        };
        let buf = match gpu {
            Some(Ok(buf)) => buf,
            Some(Err(e)) if !falls_back(&e) => return Err(e.into()),
            _ => {
                let (w, h) = (u64::from(desc.width), u64::from(desc.height));
                let bytes = if nv12 {
                    w * h + 2 * w.div_ceil(2) * h.div_ceil(2)
                } else {
                    format_info(desc.fourcc).map_or(0, |f| u64::from(f.bytes_per_pixel)) * w * h
                };
                if bytes >= self.copy_threshold {
                    // Copied on the worker when committed (sync::cpu_copy).
                    self.core.import_cpu_deferred(&desc)?
                } else {
                    self.core.import_cpu(&desc)?
                }
            }
        };
        self.reservations.created();
        let tex = VkTexture::from_client(buf, dmabuf.y_inverted());
        self.dmabufs.insert(dmabuf.weak(), tex.clone());
        Ok(tex)
    }
}

impl ImportDmaWl for VkRenderer {}

impl Bind<VkTarget> for VkRenderer {
    fn bind<'a>(&mut self, target: &'a mut VkTarget) -> Result<VkFramebuffer<'a>, Error> {
        Ok(VkFramebuffer { target })
    }

    fn supported_formats(&self) -> Option<FormatSet> {
        Some(
            MEM_FORMATS
                .iter()
                .map(|&code| Format {
                    code,
                    modifier: Modifier::Invalid,
                })
                .collect(),
        )
    }
}

impl Offscreen<VkTarget> for VkRenderer {
    fn create_buffer(&mut self, format: Fourcc, size: Size<i32, BufferCoord>) -> Result<VkTarget, Error> {
        let info = format_info(format).ok_or(Error::UnsupportedFormat(format))?;
        let target = self
            .core
            .create_target(info, size.w.max(1) as u32, size.h.max(1) as u32)?;
        Ok(VkTarget { target })
    }
}

impl ExportMem for VkRenderer {
    type TextureMapping = VkMapping;

    fn copy_framebuffer(
        &mut self,
        target: &VkFramebuffer<'_>,
        r: Rectangle<i32, BufferCoord>,
        format: Fourcc,
    ) -> Result<VkMapping, Error> {
        let from = target.target.target.format.fourcc;
        if !convert::supported(from, format) {
            return Err(Error::Conversion { from, to: format });
        }
        let readback = self.core.read_target(&target.target.target, region(r))?;
        Ok(VkMapping {
            readback,
            requested: format,
            converted: Default::default(),
        })
    }

    fn copy_texture(
        &mut self,
        texture: &VkTexture,
        r: Rectangle<i32, BufferCoord>,
        format: Fourcc,
    ) -> Result<VkMapping, Error> {
        let from = texture.inner.format.fourcc;
        if !convert::supported(from, format) {
            return Err(Error::Conversion { from, to: format });
        }
        let readback = self.core.read_texture(&texture.inner, region(r))?;
        Ok(VkMapping {
            readback,
            requested: format,
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
        let from = mapping.readback.format.fourcc;
        let bytes = convert::convert(raw, from, mapping.requested).ok_or(Error::Conversion {
            from,
            to: mapping.requested,
        })?;
        Ok(mapping.converted.get_or_init(|| bytes))
    }
}
