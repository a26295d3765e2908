//! Scan-out buffers: allocated as dma-bufs (GBM, or dumb buffers exported
//! with PRIME), added as KMS framebuffers, and imported into our Vulkan
//! renderer as colour attachments so frames are rendered straight into the
//! memory the display engine reads (zero-copy).
//!
//! DOC: fallback
//!
//! If the renderer cannot import a scan-out buffer (no dma-buf import, a
//! pitch the driver's LINEAR layout does not match, a modifier it cannot
//! take), frames are rendered into one offscreen target and copied into the
//! buffer through its CPU mapping (`DMA_BUF_IOCTL_SYNC` bracket). That is
//! logged once and counted per frame (`drm.copied_frames` in `--stats`).
//! A test hook (`crate::test_hooks::drm_force_copy`) takes this path on
//! purpose.
//!
//! These buffers are the compositor's own, not client buffers: they have no
//! reservation (part B of docs/locking-rules.md is about imported client
//! buffers); CPU access still follows rule A1 (SYNC START/END, restarted on
//! EINTR).

use std::os::fd::BorrowedFd;

use anyhow::Context;
use smithay::backend::allocator::dmabuf::{AsDmabuf, Dmabuf};
use smithay::backend::allocator::dumb::{DumbAllocator, DumbBuffer};
use smithay::backend::allocator::format::FormatSet;
use smithay::backend::allocator::gbm::{GbmAllocator, GbmBuffer, GbmBufferFlags, GbmDevice};
use smithay::backend::allocator::{Allocator, Buffer, Format, Fourcc, Modifier};
use smithay::backend::drm::dumb::{framebuffer_from_dumb_buffer, DumbFramebuffer};
use smithay::backend::drm::gbm::{framebuffer_from_bo, GbmFramebuffer};
use smithay::backend::drm::DrmDeviceFd;
use smithay::reexports::drm::control::framebuffer;
use tracing::{info, warn};

/// How scan-out buffers are allocated (`--drm-allocator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DrmAllocator {
    /// GBM if the device has a GBM driver, dumb buffers otherwise.
    Auto,
    /// GBM buffer objects (LINEAR, SCANOUT | RENDERING).
    Gbm,
    /// Dumb buffers exported as dma-bufs with PRIME.
    Dumb,
}
use crate::render::{VkRenderer, VkTarget};
use crate::screenshot::RgbaImage;

/// The scan-out format: XRGB8888 is what every KMS primary plane takes.
pub const FORMAT: Fourcc = Fourcc::Xrgb8888;

/// How a buffer was allocated; owns the buffer object and its framebuffer.
enum Allocation {
    Gbm { _fb: GbmFramebuffer, _bo: GbmBuffer },
    Dumb { _fb: DumbFramebuffer, _buffer: DumbBuffer },
}

/// One scan-out buffer.
pub struct ScanoutBuffer {
    pub fb: framebuffer::Handle,
    pub dmabuf: Dmabuf,
    /// The dma-buf imported as a render target (zero-copy), if the device could.
    pub target: Option<VkTarget>,
    /// Render counter of the last frame drawn into it (buffer age).
    pub rendered_at: Option<u64>,
    // Dropped last: the framebuffer and buffer object go after the import.
    _alloc: Allocation,
}

/// Which allocator produced the buffers (for logs and `--stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocatorKind {
    Gbm,
    Dumb,
}

impl AllocatorKind {
    pub fn name(self) -> &'static str {
        match self {
            AllocatorKind::Gbm => "gbm",
            AllocatorKind::Dumb => "dumb",
        }
    }
}

/// Two GBM buffers (SCANOUT | RENDERING) with one of `modifiers` (the
/// driver picks; LINEAR must be among them for the copy fallback).
fn alloc_gbm(
    fd: &DrmDeviceFd,
    w: u32,
    h: u32,
    modifiers: &[Modifier],
) -> anyhow::Result<Vec<(Allocation, Dmabuf, framebuffer::Handle)>> {
    let device = GbmDevice::new(fd.clone()).context("gbm_create_device")?;
    let mut alloc = GbmAllocator::new(device, GbmBufferFlags::RENDERING | GbmBufferFlags::SCANOUT);
    let mut out = Vec::new();
    for _ in 0..2 {
        let bo = alloc
            .create_buffer(w, h, FORMAT, modifiers)
            .with_context(|| format!("gbm_bo_create ({} modifier(s), SCANOUT | RENDERING)", modifiers.len()))?;
        let dmabuf = bo.export().context("exporting the GBM bo as a dma-buf")?;
        // gbm_bo_get_fd exports without DRM_RDWR on some drivers (kms_swrast:
        // a read-only dma-buf); the GPU cannot render into that.
        let plane_fd = dmabuf.handles().next().context("GBM dma-buf without a plane")?;
        let mode = smithay::reexports::rustix::fs::fcntl_getfl(plane_fd).context("F_GETFL on the GBM dma-buf")?;
        anyhow::ensure!(
            mode & smithay::reexports::rustix::fs::OFlags::ACCMODE == smithay::reexports::rustix::fs::OFlags::RDWR,
            "GBM exports its buffers read-only (gbm_bo_get_fd without DRM_RDWR); cannot render into them"
        );
        let fb = framebuffer_from_bo(fd, &bo, false).context("adding a framebuffer for the GBM bo")?;
        let handle = *fb.as_ref();
        out.push((Allocation::Gbm { _fb: fb, _bo: bo }, dmabuf, handle));
    }
    Ok(out)
}

fn alloc_dumb(fd: &DrmDeviceFd, w: u32, h: u32) -> anyhow::Result<Vec<(Allocation, Dmabuf, framebuffer::Handle)>> {
    let mut alloc = DumbAllocator::new(fd.clone());
    let mut out = Vec::new();
    for _ in 0..2 {
        let buffer = alloc
            .create_buffer(w, h, FORMAT, &[Modifier::Linear])
            .context("DRM_IOCTL_MODE_CREATE_DUMB")?;
        let dmabuf = buffer.export().context("exporting the dumb buffer with PRIME")?;
        let fb =
            framebuffer_from_dumb_buffer(fd, &buffer, false).context("adding a framebuffer for the dumb buffer")?;
        let handle = *fb.as_ref();
        out.push((
            Allocation::Dumb {
                _fb: fb,
                _buffer: buffer,
            },
            dmabuf,
            handle,
        ));
    }
    Ok(out)
}

/// Two scan-out buffers (double buffering) and, if they could not be
/// imported, the offscreen target frames are rendered into before the copy.
pub struct Scanout {
    pub buffers: Vec<ScanoutBuffer>,
    pub offscreen: Option<VkTarget>,
    pub offscreen_rendered_at: Option<u64>,
    pub allocator: AllocatorKind,
    pub size: (u32, u32),
}

/// Allocates two scan-out buffers with `which`, trying `modifiers` (GBM
/// only; dumb buffers are LINEAR).
fn allocate(
    fd: &DrmDeviceFd,
    which: DrmAllocator,
    (w, h): (u32, u32),
    modifiers: &[Modifier],
) -> anyhow::Result<(AllocatorKind, Vec<(Allocation, Dmabuf, framebuffer::Handle)>)> {
    Ok(match which {
        DrmAllocator::Gbm => (AllocatorKind::Gbm, alloc_gbm(fd, w, h, modifiers)?),
        DrmAllocator::Dumb => (AllocatorKind::Dumb, alloc_dumb(fd, w, h)?),
        DrmAllocator::Auto => match alloc_gbm(fd, w, h, modifiers) {
            Ok(a) => (AllocatorKind::Gbm, a),
            Err(err) => {
                info!("GBM unavailable ({err:#}); using dumb buffers exported with PRIME");
                (AllocatorKind::Dumb, alloc_dumb(fd, w, h)?)
            }
        },
    })
}

/// The modifiers to allocate scan-out buffers with: those the primary plane
/// lists for the format and the renderer can render into as one plane,
/// in the renderer's order, then LINEAR.
fn scanout_modifiers(renderer: &VkRenderer, plane: &FormatSet) -> Vec<Modifier> {
    let mut out: Vec<Modifier> = renderer
        .scanout_modifiers(FORMAT)
        .into_iter()
        .map(Modifier::from)
        .filter(|m| {
            *m != Modifier::Linear
                && plane.contains(&Format {
                    code: FORMAT,
                    modifier: *m,
                })
        })
        .collect();
    out.push(Modifier::Linear);
    out
}

/// The scan-out buffers of `allocs`, imported as render targets when `import`.
fn import_all(
    renderer: &mut VkRenderer,
    allocs: Vec<(Allocation, Dmabuf, framebuffer::Handle)>,
    import: bool,
) -> Vec<ScanoutBuffer> {
    allocs
        .into_iter()
        .map(|(alloc, dmabuf, fb)| {
            let target = import
                .then(|| renderer.import_scanout(&dmabuf))
                .and_then(|r| r.map_err(|e| warn!("importing a scan-out buffer: {e}")).ok());
            ScanoutBuffer {
                fb,
                dmabuf,
                target,
                rendered_at: None,
                _alloc: alloc,
            }
        })
        .collect()
}

impl Scanout {
    pub fn new(
        fd: &DrmDeviceFd,
        renderer: &mut VkRenderer,
        which: DrmAllocator,
        size: (u32, u32),
        plane_formats: &FormatSet,
    ) -> anyhow::Result<Scanout> {
        let (w, h) = size;
        // A test hook can take the copy fallback on purpose; a renderer that
        // is not the card's device must take it.
        let forced = if crate::test_hooks::drm_force_copy() {
            Some("forced by a test hook".to_string())
        } else if renderer.renders_on_kms_device() == Some(false) {
            Some("the rendering Vulkan device is not the KMS card's device (multi-GPU)".to_string())
        } else {
            None
        };
        let modifiers = match forced {
            Some(_) => vec![Modifier::Linear],
            None => scanout_modifiers(renderer, plane_formats),
        };
        info!(?modifiers, "scan-out modifiers to allocate with");
        let (mut allocator, allocs) = allocate(fd, which, size, &modifiers)?;
        let mut buffers = import_all(renderer, allocs, forced.is_none());
        let failed = buffers.iter().any(|b| b.target.is_none());
        let tiled = buffers.iter().any(|b| b.dmabuf.format().modifier != Modifier::Linear);
        if forced.is_none() && failed && tiled {
            // Only a LINEAR buffer can take the copy fallback (rows written
            // by the CPU); reallocate rather than copy into a tiled layout.
            warn!("the renderer cannot render into the tiled scan-out buffers; reallocating LINEAR");
            drop(buffers);
            let allocs;
            (allocator, allocs) = allocate(fd, which, size, &[Modifier::Linear])?;
            buffers = import_all(renderer, allocs, true);
        }
        let import_error = forced.or_else(|| {
            buffers
                .iter()
                .any(|b| b.target.is_none())
                .then(|| "the device cannot import them as colour attachments (see the log)".to_string())
        });
        let pitch = buffers[0].dmabuf.strides().next().unwrap_or(0);
        let offscreen = if let Some(err) = import_error {
            warn!(
                "cannot render into the scan-out buffers ({err}); rendering offscreen and copying each frame \
                 into the mapped buffer (counted as drm.copied_frames)"
            );
            buffers.iter_mut().for_each(|b| b.target = None);
            let target = smithay::backend::renderer::Offscreen::<VkTarget>::create_buffer(
                renderer,
                FORMAT,
                (w as i32, h as i32).into(),
            )
            .map_err(|e| anyhow::anyhow!("creating the {w}x{h} offscreen target: {e}"))?;
            Some(target)
        } else {
            info!(
                allocator = allocator.name(),
                pitch, "scan-out buffers imported into Vulkan as colour attachments (zero-copy)"
            );
            None
        };
        Ok(Scanout {
            buffers,
            offscreen,
            offscreen_rendered_at: None,
            allocator,
            size,
        })
    }

    pub fn zero_copy(&self) -> bool {
        self.offscreen.is_none()
    }
}

/// A CPU mapping of a single-plane scan-out dma-buf (whole fd, offset 0).
struct Mapped<'a> {
    fd: BorrowedFd<'a>,
    ptr: *mut u8,
    len: usize,
    offset: usize,
    stride: usize,
}

impl<'a> Mapped<'a> {
    fn new(dmabuf: &'a Dmabuf, writable: bool) -> anyhow::Result<Mapped<'a>> {
        // Rows at offset + y * stride: only the LINEAR layout means that.
        anyhow::ensure!(
            dmabuf.format().modifier == Modifier::Linear,
            "the scan-out buffer is tiled ({:?}); the CPU cannot read or write its rows",
            dmabuf.format().modifier
        );
        let fd = dmabuf.handles().next().context("dma-buf without a plane")?;
        let offset = dmabuf.offsets().next().unwrap_or(0) as usize;
        let stride = dmabuf.strides().next().unwrap_or(0) as usize;
        let len = importer::dmabuf::fd_size(fd).context("sizing the scan-out dma-buf")? as usize;
        let rows = dmabuf.size().h.max(0) as usize;
        anyhow::ensure!(
            offset + stride * rows <= len,
            "scan-out dma-buf of {len} bytes is smaller than {rows} rows of {stride}"
        );
        use smithay::reexports::rustix::mm::{mmap, MapFlags, ProtFlags};
        let prot = if writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        // SAFETY: a fresh shared mapping of a dma-buf (fixed size) we own.
        let ptr = unsafe { mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0) }
            .context("mmap of the scan-out dma-buf")?;
        Ok(Mapped {
            fd,
            ptr: ptr.cast(),
            len,
            offset,
            stride,
        })
    }

    /// Runs `f` on the mapped bytes between SYNC START and END (`dir`).
    fn access<R>(&self, dir: importer::sync::SyncDir, f: impl FnOnce(*mut u8) -> R) -> anyhow::Result<R> {
        importer::sync::dma_buf_sync(self.fd, dir, false).context("DMA_BUF_IOCTL_SYNC START")?;
        let out = f(self.ptr);
        importer::sync::dma_buf_sync(self.fd, dir, true).context("DMA_BUF_IOCTL_SYNC END")?;
        Ok(out)
    }
}

impl Drop for Mapped<'_> {
    fn drop(&mut self) {
        // SAFETY: unmapping what `new` mapped.
        let _ = unsafe { smithay::reexports::rustix::mm::munmap(self.ptr.cast(), self.len) };
    }
}

/// Copies tightly packed XRGB8888 rows (`src`, width × height) into the
/// scan-out buffer (the offscreen fallback). Blocking (SYNC): no lock held.
pub fn copy_into(dmabuf: &Dmabuf, src: &[u8]) -> anyhow::Result<()> {
    let map = Mapped::new(dmabuf, true)?;
    let (w, h) = (dmabuf.width() as usize, dmabuf.height() as usize);
    let row = w * 4;
    anyhow::ensure!(
        src.len() >= row * h,
        "read-back has {} bytes, need {}",
        src.len(),
        row * h
    );
    map.access(importer::sync::SyncDir::Write, |ptr| {
        for y in 0..h {
            // SAFETY: within the mapping (checked in Mapped::new; row <= stride).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    src.as_ptr().add(y * row),
                    ptr.add(map.offset + y * map.stride),
                    row.min(map.stride),
                )
            };
        }
    })
}

/// Reads a scanned-out buffer (ours, or a client's shown directly: LINEAR,
/// 32-bit RGB in either byte order) as RGBA8, what the display engine
/// shows (X and A written as opaque). Blocking (SYNC): exit-time
/// screenshots only.
pub fn read_rgba(dmabuf: &Dmabuf) -> anyhow::Result<RgbaImage> {
    let code = dmabuf.format().code;
    anyhow::ensure!(
        matches!(
            code,
            Fourcc::Xrgb8888 | Fourcc::Argb8888 | Fourcc::Xbgr8888 | Fourcc::Abgr8888
        ),
        "cannot read {code:?} as 32-bit RGB"
    );
    // Little-endian XRGB/ARGB store B, G, R, X; XBGR/ABGR store R, G, B, X.
    let bgr = !matches!(code, Fourcc::Xbgr8888 | Fourcc::Abgr8888);
    let map = Mapped::new(dmabuf, false)?;
    anyhow::ensure!(
        map.stride >= dmabuf.width() as usize * 4,
        "stride {} is shorter than a row",
        map.stride
    );
    let (w, h) = (dmabuf.width(), dmabuf.height());
    let mut pixels = vec![0u8; w as usize * h as usize * 4];
    map.access(importer::sync::SyncDir::Read, |ptr| {
        for y in 0..h as usize {
            // SAFETY: within the mapping (checked in Mapped::new).
            let row = unsafe { std::slice::from_raw_parts(ptr.add(map.offset + y * map.stride), w as usize * 4) };
            for (x, px) in row.chunks_exact(4).enumerate() {
                let o = (y * w as usize + x) * 4;
                let rgb = if bgr {
                    [px[2], px[1], px[0]]
                } else {
                    [px[0], px[1], px[2]]
                };
                pixels[o..o + 4].copy_from_slice(&[rgb[0], rgb[1], rgb[2], 0xff]);
            }
        }
    })?;
    Ok(RgbaImage {
        width: w,
        height: h,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use smithay::backend::allocator::dmabuf::DmabufFlags;

    /// A 2×1 LINEAR buffer in `code` holding `bytes`, in a memfd.
    fn buffer(code: Fourcc, bytes: &[u8; 8]) -> Dmabuf {
        use std::io::Write;
        let fd = rustix::fs::memfd_create("pixels", rustix::fs::MemfdFlags::CLOEXEC).expect("memfd");
        let mut file = std::fs::File::from(fd);
        file.write_all(bytes).expect("write");
        let mut builder = Dmabuf::builder((2, 1), code, Modifier::Linear, DmabufFlags::empty());
        builder.add_plane(file.into(), 0, 0, 8);
        builder.build().expect("dma-buf")
    }

    #[test]
    fn screenshots_read_both_byte_orders() {
        let bytes = [1, 2, 3, 0, 4, 5, 6, 0];
        let xrgb = read_rgba(&buffer(Fourcc::Xrgb8888, &bytes)).expect("xrgb");
        assert_eq!(xrgb.pixels, [3, 2, 1, 255, 6, 5, 4, 255]);
        let xbgr = read_rgba(&buffer(Fourcc::Xbgr8888, &bytes)).expect("xbgr");
        assert_eq!(xbgr.pixels, [1, 2, 3, 255, 4, 5, 6, 255]);
    }
}
