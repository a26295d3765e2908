//! linux-dmabuf buffers: a raw params builder (for protocol tests that must
//! send bad input) and [`DmabufBuffer`], a filled, mapped, ready-to-attach buffer.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use wayland_client::protocol::wl_buffer::{self, WlBuffer};
use wayland_client::{Connection, Dispatch, Proxy, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_buffer_params_v1::{self, ZwpLinuxBufferParamsV1};

use crate::client::{Client, State};
use crate::mapping::Mapping;
use crate::pixel::Format;
use crate::provider::BufferProvider;
use crate::scenes::{SurfaceSpec, PADDING_BYTES};

/// `DRM_FORMAT_MOD_LINEAR`.
pub const MOD_LINEAR: u64 = 0;

/// Per-wl_buffer state: whether the compositor has released it.
#[derive(Debug)]
pub struct BufferData {
    released: AtomicBool,
}

impl BufferData {
    pub fn new() -> Arc<BufferData> {
        // A new buffer has never been attached, so it is free to use.
        Arc::new(BufferData {
            released: AtomicBool::new(true),
        })
    }
}

/// Result of the asynchronous `create` request.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    Created(WlBuffer),
    Failed,
}

/// Per-params state for the asynchronous `create` path.
#[derive(Debug, Default)]
pub struct ParamsData {
    outcome: Mutex<Option<CreateOutcome>>,
}

/// Thin wrapper over `zwp_linux_buffer_params_v1` that sends exactly what it
/// is told, so protocol tests can provoke every error.
pub struct ParamsBuilder {
    pub params: ZwpLinuxBufferParamsV1,
    data: Arc<ParamsData>,
}

impl ParamsBuilder {
    /// `zwp_linux_dmabuf_v1.create_params`.
    pub fn new(client: &Client) -> ParamsBuilder {
        ParamsBuilder::on(client, &client.globals.dmabuf)
    }

    /// `create_params` on a `zwp_linux_dmabuf_v1` the test bound itself
    /// (at another version than [`Client`]'s).
    pub fn on(
        client: &Client,
        dmabuf: &wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
    ) -> ParamsBuilder {
        let data = Arc::new(ParamsData::default());
        let params = dmabuf.create_params(&client.qh, data.clone());
        ParamsBuilder { params, data }
    }

    /// `set_sampling_device(device)` (version 6), the array as given.
    pub fn set_sampling_device(&self, device: &[u8]) -> &Self {
        self.params.set_sampling_device(device.to_vec());
        self
    }

    /// `add(fd, plane_idx, offset, stride, modifier_hi, modifier_lo)`.
    pub fn add(&self, fd: impl AsFd, plane_idx: u32, offset: u32, stride: u32, modifier: u64) -> &Self {
        self.params.add(
            fd.as_fd(),
            plane_idx,
            offset,
            stride,
            (modifier >> 32) as u32,
            modifier as u32,
        );
        self
    }

    /// `create_immed`; the buffer tracks its release state.
    pub fn create_immed(&self, client: &Client, width: i32, height: i32, fourcc: u32, flags: u32) -> WlBuffer {
        self.params.create_immed(
            width,
            height,
            fourcc,
            zwp_linux_buffer_params_v1::Flags::from_bits_retain(flags),
            &client.qh,
            BufferData::new(),
        )
    }

    /// The asynchronous `create`; see [`ParamsBuilder::wait_outcome`].
    pub fn create(&self, width: i32, height: i32, fourcc: u32, flags: u32) {
        self.params.create(
            width,
            height,
            fourcc,
            zwp_linux_buffer_params_v1::Flags::from_bits_retain(flags),
        );
    }

    /// Waits (bounded) for `created`/`failed` after [`ParamsBuilder::create`].
    pub fn wait_outcome(&self, client: &mut Client) -> Result<CreateOutcome> {
        let data = self.data.clone();
        let mut out = None;
        client.dispatch_until("zwp_linux_buffer_params_v1.created/failed", |_| {
            out = lock(&data.outcome).take();
            out.is_some()
        })?;
        out.context("create outcome vanished")
    }

    /// `destroy` (allowed at any time).
    pub fn destroy(&self) {
        self.params.destroy();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Poisoning only means another thread panicked; the data is still valid.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How the planes of a multi-planar (Y'CbCr) buffer are laid out in memory.
/// Single-plane (RGB) buffers are always one plane at offset 0 with the
/// surface's stride, whatever the layout says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PlaneLayout {
    /// All planes in one fd at offsets that are not page aligned: the first
    /// at [`NV12_Y_OFFSET`], each next one [`NV12_GAP`] bytes after the end
    /// of the previous one; every plane with the surface's stride (which may
    /// be wider than any plane's rows). The layout NV12 buffers always had,
    /// and the default; the importer takes it on the CPU fallback path.
    #[default]
    OneFdUnaligned,
    /// All planes in one fd, each at an offset that is a multiple of
    /// [`PLANE_ALIGNMENT`] (the first at 0, each next one at the end of the
    /// previous one rounded up), each with a stride of exactly its row bytes
    /// ([`Format::plane_row_bytes`]).
    OneFdAligned,
    /// One fd per plane, each plane at offset 0 with a stride of exactly its
    /// row bytes. Every fd is as large as all planes together: a device may
    /// ask that much memory of each plane of a disjoint image (lavapipe
    /// does), and the importer refuses memory smaller than the device asks.
    FdPerPlane,
}

/// [`PlaneLayout::OneFdAligned`] puts every plane at a multiple of this.
pub const PLANE_ALIGNMENT: u32 = 4096;

/// One plane as sent with `zwp_linux_buffer_params_v1.add`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneGeometry {
    /// Which fd holds the plane (an index into [`BufferGeometry::fd_sizes`]).
    pub fd: usize,
    pub offset: u32,
    pub stride: u32,
    /// Bytes of samples in one row (at most `stride`; the rest is padding).
    pub row_bytes: u32,
    pub rows: u32,
}

/// Where every plane of a buffer goes, and how large each fd is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufferGeometry {
    /// In plane order (`plane_idx` 0, 1, ...).
    pub planes: Vec<PlaneGeometry>,
    /// The bytes to allocate for each fd.
    pub fd_sizes: Vec<usize>,
}

impl BufferGeometry {
    /// The planes of a `width` x `height` buffer of `format` in `layout`.
    /// `stride` is the surface's stride: the single plane's for RGB, every
    /// plane's for [`PlaneLayout::OneFdUnaligned`]; the other layouts take
    /// exactly their row bytes and refuse any other `stride` for plane 0, so
    /// a scene cannot ask for padding that would silently be dropped.
    pub fn new(
        format: Format,
        (width, height): (u32, u32),
        layout: PlaneLayout,
        stride: u32,
    ) -> Result<BufferGeometry> {
        let bad = || format!("bad buffer geometry {format:?} {width}x{height} {layout:?} stride {stride}");
        if width == 0 || height == 0 {
            bail!("{}", bad());
        }
        let to_u32 = |v: u64| u32::try_from(v).with_context(bad);
        let tight: Vec<(u32, u32)> = (0..format.plane_count())
            .map(|p| (format.plane_row_bytes(p, width), format.plane_rows(p, height)))
            .collect();
        let mut planes = Vec::with_capacity(tight.len());
        let mut fd_sizes = Vec::new();
        if !format.is_yuv() || layout == PlaneLayout::OneFdUnaligned {
            if tight.iter().any(|&(row_bytes, _)| stride < row_bytes) {
                bail!("{}: stride below a plane's row bytes", bad());
            }
            // RGB: one plane at 0. Y'CbCr: the unaligned offsets after NV12_Y_OFFSET.
            let mut offset = if format.is_yuv() { u64::from(NV12_Y_OFFSET) } else { 0 };
            let mut end = 0;
            for &(row_bytes, rows) in &tight {
                end = offset + u64::from(stride) * u64::from(rows);
                planes.push(PlaneGeometry {
                    fd: 0,
                    offset: to_u32(offset)?,
                    stride,
                    row_bytes,
                    rows,
                });
                offset = end + u64::from(NV12_GAP);
            }
            fd_sizes.push(to_u32(end)? as usize);
        } else {
            if stride != tight[0].0 {
                bail!("{}: {layout:?} takes the tight stride {}", bad(), tight[0].0);
            }
            let mut offset = 0u64;
            for &(row_bytes, rows) in &tight {
                let size = u64::from(row_bytes) * u64::from(rows);
                let (fd, at) = match layout {
                    PlaneLayout::OneFdAligned => (0, offset.next_multiple_of(u64::from(PLANE_ALIGNMENT))),
                    _ => (planes.len(), 0),
                };
                planes.push(PlaneGeometry {
                    fd,
                    offset: to_u32(at)?,
                    stride: row_bytes,
                    row_bytes,
                    rows,
                });
                offset = at + size;
                if layout == PlaneLayout::FdPerPlane {
                    fd_sizes.push(to_u32(size)? as usize);
                }
            }
            if layout == PlaneLayout::OneFdAligned {
                fd_sizes.push(to_u32(offset)? as usize);
            }
            if layout == PlaneLayout::FdPerPlane {
                let all: usize = fd_sizes.iter().sum();
                fd_sizes.iter_mut().for_each(|size| *size = all);
            }
        }
        Ok(BufferGeometry { planes, fd_sizes })
    }
}

/// Writes the contents of fd number `fd` of a buffer laid out as `geometry`
/// into `bytes` (that fd's bytes): the samples of its planes from `pixels`,
/// everything else (row padding, gaps between planes) [`PADDING_BYTES`].
///
/// RGB: `pixels` gives memory-order bytes. Y'CbCr: `pixels` gives packed
/// samples ([`Format::pack_ycbcr`]); each plane-0 sample is that pixel's Y,
/// each chroma sample the Cb or Cr of the top-left pixel of its subsampled
/// block. P010 samples are written as little-endian `u16` `value << 6`.
pub fn write_fd(
    bytes: &mut [u8],
    fd: usize,
    geometry: &BufferGeometry,
    format: Format,
    (width, height): (u32, u32),
    pixels: &dyn Fn(u32, u32) -> [u8; 4],
) {
    if format.is_yuv() {
        bytes.fill(PADDING_BYTES[0]);
    }
    let (sx, sy) = format.chroma_subsampling();
    let sample_bytes = format.sample_bytes() as usize;
    for (idx, plane) in geometry.planes.iter().enumerate().filter(|(_, p)| p.fd == fd) {
        for row in 0..plane.rows as usize {
            let start = plane.offset as usize + row * plane.stride as usize;
            let line = &mut bytes[start..start + plane.stride as usize];
            if !format.is_yuv() {
                for (x, px) in line.chunks_exact_mut(4).enumerate() {
                    let texel = if x < width as usize {
                        pixels(x as u32, row as u32)
                    } else {
                        PADDING_BYTES
                    };
                    px.copy_from_slice(&texel);
                }
                continue;
            }
            let samples = (plane.row_bytes as usize) / sample_bytes;
            for i in 0..samples {
                let value = match (idx, format) {
                    (0, _) => format.unpack_ycbcr(pixels(i as u32, row as u32))[0],
                    // Interleaved CbCr: sample i is Cb (even) or Cr (odd) of block i / 2.
                    (1, Format::Nv12 | Format::Nv16 | Format::P010) => {
                        let (bx, by) = ((i / 2) as u32 * sx, row as u32 * sy);
                        format.unpack_ycbcr(pixels(bx.min(width - 1), by.min(height - 1)))[1 + i % 2]
                    }
                    // Separate Cb (plane 1) and Cr (plane 2).
                    (1 | 2, _) => {
                        let (bx, by) = (i as u32 * sx, row as u32 * sy);
                        format.unpack_ycbcr(pixels(bx.min(width - 1), by.min(height - 1)))[idx]
                    }
                    _ => unreachable!("{format:?} has no plane {idx}"),
                };
                let at = &mut line[i * sample_bytes..(i + 1) * sample_bytes];
                match sample_bytes {
                    1 => at[0] = value as u8,
                    _ => at.copy_from_slice(&(value << 6).to_le_bytes()),
                }
            }
        }
    }
}

/// A mapped buffer filled by the client and wrapped in a `wl_buffer`.
pub struct DmabufBuffer {
    pub buffer: WlBuffer,
    pub width: u32,
    pub height: u32,
    pub format: Format,
    /// Plane 0's stride.
    pub stride: u32,
    pub geometry: BufferGeometry,
    maps: Vec<Mapping>,
    /// Kept open so the client can refill the same memory (the compositor has
    /// its own dups of the fds). One per entry of `geometry.fd_sizes`.
    fds: Vec<OwnedFd>,
}

impl DmabufBuffer {
    /// Allocates and fills a buffer for a scene surface (its format, stride
    /// and plane layout).
    pub fn from_spec(client: &Client, provider: &dyn BufferProvider, spec: &SurfaceSpec) -> Result<DmabufBuffer> {
        let pixels = spec.pixels.clone();
        DmabufBuffer::with_layout(
            client,
            provider,
            (spec.width, spec.height),
            spec.format,
            spec.layout,
            spec.stride,
            &*pixels,
        )
    }

    /// Allocates `stride * height` bytes (RGB), fills them with `pixels`
    /// (memory-order bytes; row padding gets [`PADDING_BYTES`]) and creates
    /// the wl_buffer with one LINEAR plane at offset 0 via `create_immed`.
    /// Y'CbCr formats get the default [`PlaneLayout`] (see
    /// [`DmabufBuffer::with_layout`]).
    pub fn new(
        client: &Client,
        provider: &dyn BufferProvider,
        width: u32,
        height: u32,
        format: Format,
        stride: u32,
        pixels: &dyn Fn(u32, u32) -> [u8; 4],
    ) -> Result<DmabufBuffer> {
        let layout = PlaneLayout::default();
        DmabufBuffer::with_layout(client, provider, (width, height), format, layout, stride, pixels)
    }

    /// A memfd-backed XRGB8888 buffer of one colour (`rgba`'s alpha is
    /// ignored), tightly packed.
    pub fn solid(client: &Client, width: u32, height: u32, rgba: [u8; 4]) -> Result<DmabufBuffer> {
        let pixel = Format::Xrgb8888.encode(rgba);
        let provider = crate::provider::MemfdProvider;
        DmabufBuffer::new(
            client,
            &provider,
            width,
            height,
            Format::Xrgb8888,
            width * 4,
            &|_, _| pixel,
        )
    }

    /// Allocates the fds of [`BufferGeometry::new`], fills them
    /// ([`write_fd`]) and creates the wl_buffer with its LINEAR planes via
    /// `create_immed`.
    pub fn with_layout(
        client: &Client,
        provider: &dyn BufferProvider,
        size: (u32, u32),
        format: Format,
        layout: PlaneLayout,
        stride: u32,
        pixels: &dyn Fn(u32, u32) -> [u8; 4],
    ) -> Result<DmabufBuffer> {
        DmabufBuffer::create(client, provider, size, format, layout, stride, pixels, &|_| Ok(()))
    }

    /// [`DmabufBuffer::new`] that runs `before_create` on the filled
    /// buffer's (first) fd just before `create_immed`: for example to attach
    /// a fence that is still pending when the compositor imports the buffer.
    pub fn new_filled_then(
        client: &Client,
        provider: &dyn BufferProvider,
        size: (u32, u32),
        format: Format,
        stride: u32,
        pixels: &dyn Fn(u32, u32) -> [u8; 4],
        before_create: &dyn Fn(&OwnedFd) -> Result<()>,
    ) -> Result<DmabufBuffer> {
        let layout = PlaneLayout::default();
        DmabufBuffer::create(client, provider, size, format, layout, stride, pixels, before_create)
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        client: &Client,
        provider: &dyn BufferProvider,
        (width, height): (u32, u32),
        format: Format,
        layout: PlaneLayout,
        stride: u32,
        pixels: &dyn Fn(u32, u32) -> [u8; 4],
        before_create: &dyn Fn(&OwnedFd) -> Result<()>,
    ) -> Result<DmabufBuffer> {
        let geometry = BufferGeometry::new(format, (width, height), layout, stride)?;
        let mut fds = Vec::new();
        let mut maps = Vec::new();
        for &size in &geometry.fd_sizes {
            let fd = provider
                .allocate(size)
                .with_context(|| format!("{} provider: allocate {size} bytes", provider.name()))?;
            maps.push(Mapping::new(&fd, size).context("mmap client buffer")?);
            fds.push(fd);
        }
        let params = ParamsBuilder::new(client);
        for (idx, plane) in geometry.planes.iter().enumerate() {
            params.add(&fds[plane.fd], idx as u32, plane.offset, plane.stride, MOD_LINEAR);
        }
        fill_mappings(&fds, &mut maps, &geometry, format, (width, height), pixels);
        before_create(&fds[0])?;
        let buffer = params.create_immed(client, width as i32, height as i32, format.fourcc(), 0);
        params.destroy();
        Ok(DmabufBuffer {
            buffer,
            width,
            height,
            format,
            stride: geometry.planes[0].stride,
            geometry,
            maps,
            fds,
        })
    }
}

/// Writes `pixels` into every fd of a client buffer inside a CPU-write
/// bracket (`DMA_BUF_IOCTL_SYNC`; see [`crate::provider::cpu_write`]);
/// panics if the kernel refuses it, since writing without it would be
/// undefined.
fn fill_mappings(
    fds: &[OwnedFd],
    maps: &mut [Mapping],
    geometry: &BufferGeometry,
    format: Format,
    size: (u32, u32),
    pixels: &dyn Fn(u32, u32) -> [u8; 4],
) {
    use std::os::fd::AsFd;
    for (i, (fd, map)) in fds.iter().zip(maps.iter_mut()).enumerate() {
        let cpu = crate::provider::cpu_write(fd.as_fd())
            .unwrap_or_else(|e| panic!("begin CPU write to the client buffer: {e}"));
        write_fd(map.as_mut_slice(), i, geometry, format, size, pixels);
        cpu.end()
            .unwrap_or_else(|e| panic!("end CPU write to the client buffer: {e}"));
    }
}

/// [`PlaneLayout::OneFdUnaligned`]: the first plane's offset (not page
/// aligned) and the gap between one plane and the next.
pub const NV12_Y_OFFSET: u32 = 100;
pub const NV12_GAP: u32 = 60;

impl DmabufBuffer {
    /// Rewrites the whole buffer; only call while it is released.
    ///
    /// On a real dma-buf the writes are bracketed with `DMA_BUF_IOCTL_SYNC`
    /// START/END (see [`crate::provider::cpu_write`]); panics if the kernel
    /// refuses that, since writing without it would be undefined.
    pub fn fill(&mut self, pixels: &dyn Fn(u32, u32) -> [u8; 4]) {
        let size = (self.width, self.height);
        fill_mappings(&self.fds, &mut self.maps, &self.geometry, self.format, size, pixels);
    }

    /// The mapped bytes of the first fd (row padding included).
    pub fn bytes(&self) -> &[u8] {
        self.maps[0].as_slice()
    }

    /// The mapped bytes of fd number `fd` (see [`BufferGeometry::fd_sizes`]).
    pub fn fd_bytes(&self, fd: usize) -> &[u8] {
        self.maps[fd].as_slice()
    }

    /// The first underlying fd (the only one unless the layout is
    /// [`PlaneLayout::FdPerPlane`]).
    pub fn fd(&self) -> &OwnedFd {
        &self.fds[0]
    }

    /// Every underlying fd, in [`BufferGeometry::fd_sizes`] order.
    pub fn fds(&self) -> &[OwnedFd] {
        &self.fds
    }

    /// Whether the compositor has released the buffer since it was last attached.
    pub fn is_released(&self) -> bool {
        is_released(&self.buffer)
    }

    /// Marks the buffer as held by the compositor; called on attach.
    pub fn mark_attached(&self) {
        mark_attached(&self.buffer);
    }
}

/// Whether the compositor has released `buffer` since it was last marked
/// attached ([`mark_attached`]); a buffer not made here counts as released.
pub fn is_released(buffer: &WlBuffer) -> bool {
    buffer_data(buffer).is_none_or(|d| d.released.load(Ordering::Acquire))
}

/// Marks `buffer` as held by the compositor: call it when attaching.
pub fn mark_attached(buffer: &WlBuffer) {
    if let Some(d) = buffer_data(buffer) {
        d.released.store(false, Ordering::Release);
    }
}

impl Drop for DmabufBuffer {
    fn drop(&mut self) {
        self.buffer.destroy();
    }
}

fn buffer_data(buffer: &WlBuffer) -> Option<&Arc<BufferData>> {
    buffer.data::<Arc<BufferData>>()
}

impl Dispatch<WlBuffer, Arc<BufferData>> for State {
    fn event(
        _: &mut Self,
        _: &WlBuffer,
        event: wl_buffer::Event,
        data: &Arc<BufferData>,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_buffer::Event::Release = event {
            data.released.store(true, Ordering::Release);
        }
    }
}

impl Dispatch<ZwpLinuxBufferParamsV1, Arc<ParamsData>> for State {
    fn event(
        _: &mut Self,
        _: &ZwpLinuxBufferParamsV1,
        event: zwp_linux_buffer_params_v1::Event,
        data: &Arc<ParamsData>,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let outcome = match event {
            zwp_linux_buffer_params_v1::Event::Created { buffer } => CreateOutcome::Created(buffer),
            zwp_linux_buffer_params_v1::Event::Failed => CreateOutcome::Failed,
            _ => return,
        };
        *lock(&data.outcome) = Some(outcome);
    }

    wayland_client::event_created_child!(State, ZwpLinuxBufferParamsV1, [
        zwp_linux_buffer_params_v1::EVT_CREATED_OPCODE => (WlBuffer, BufferData::new()),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(fd: usize, offset: u32, stride: u32, rows: u32) -> PlaneGeometry {
        PlaneGeometry {
            fd,
            offset,
            stride,
            row_bytes: stride,
            rows,
        }
    }

    #[test]
    fn one_fd_aligned_planes_start_on_4096_with_tight_strides() {
        let g = |f: Format, size: (u32, u32)| {
            let stride = f.plane_row_bytes(0, size.0);
            BufferGeometry::new(f, size, PlaneLayout::OneFdAligned, stride).expect("geometry")
        };
        // The scenes' 256x128: every plane already ends on a page.
        let nv12 = g(Format::Nv12, (256, 128));
        assert_eq!(nv12.planes, [plane(0, 0, 256, 128), plane(0, 32768, 256, 64)]);
        assert_eq!(nv12.fd_sizes, [32768 + 16384]);
        let nv16 = g(Format::Nv16, (256, 128));
        assert_eq!(nv16.planes, [plane(0, 0, 256, 128), plane(0, 32768, 256, 128)]);
        assert_eq!(nv16.fd_sizes, [65536]);
        let p010 = g(Format::P010, (256, 128));
        assert_eq!(p010.planes, [plane(0, 0, 512, 128), plane(0, 65536, 512, 64)]);
        assert_eq!(p010.fd_sizes, [65536 + 32768]);
        let yuv420 = g(Format::Yuv420, (256, 128));
        assert_eq!(
            yuv420.planes,
            [
                plane(0, 0, 256, 128),
                plane(0, 32768, 128, 64),
                plane(0, 40960, 128, 64)
            ]
        );
        // Sizes that do not fill pages: the next plane is rounded up.
        let odd = g(Format::Yuv420, (100, 50));
        assert_eq!(
            odd.planes,
            [plane(0, 0, 100, 50), plane(0, 8192, 50, 25), plane(0, 12288, 50, 25)]
        );
        assert_eq!(odd.fd_sizes, [12288 + 50 * 25]);
        for p in odd.planes.iter().chain(&yuv420.planes) {
            assert_eq!(p.offset % PLANE_ALIGNMENT, 0);
        }
    }

    #[test]
    fn fd_per_plane_puts_each_plane_at_zero_in_its_own_fd() {
        let g = |f: Format, size: (u32, u32)| {
            let stride = f.plane_row_bytes(0, size.0);
            BufferGeometry::new(f, size, PlaneLayout::FdPerPlane, stride).expect("geometry")
        };
        let yuv420 = g(Format::Yuv420, (256, 128));
        assert_eq!(
            yuv420.planes,
            [plane(0, 0, 256, 128), plane(1, 0, 128, 64), plane(2, 0, 128, 64)]
        );
        // Each fd holds all planes' bytes (a device may ask that much of each).
        assert_eq!(yuv420.fd_sizes, [49152; 3]);
        let nv12 = g(Format::Nv12, (256, 128));
        assert_eq!(nv12.planes, [plane(0, 0, 256, 128), plane(1, 0, 256, 64)]);
        assert_eq!(nv12.fd_sizes, [49152; 2]);
        let odd = g(Format::P010, (7, 5));
        assert_eq!(odd.planes, [plane(0, 0, 14, 5), plane(1, 0, 16, 3)]);
        assert_eq!(odd.fd_sizes, [118; 2]);
    }

    #[test]
    fn aligned_layouts_refuse_a_padded_stride() {
        for layout in [PlaneLayout::OneFdAligned, PlaneLayout::FdPerPlane] {
            assert!(BufferGeometry::new(Format::Nv12, (256, 128), layout, 264).is_err());
            assert!(BufferGeometry::new(Format::P010, (256, 128), layout, 256).is_err());
            assert!(BufferGeometry::new(Format::Nv12, (0, 128), layout, 0).is_err());
        }
    }

    #[test]
    fn one_fd_unaligned_is_the_original_nv12_layout() {
        // The nv12 scene: 96x64, stride 104.
        let g = BufferGeometry::new(Format::Nv12, (96, 64), PlaneLayout::OneFdUnaligned, 104).expect("geometry");
        let uv = NV12_Y_OFFSET + 104 * 64 + NV12_GAP;
        assert_eq!(
            g.planes,
            [
                PlaneGeometry {
                    fd: 0,
                    offset: NV12_Y_OFFSET,
                    stride: 104,
                    row_bytes: 96,
                    rows: 64
                },
                PlaneGeometry {
                    fd: 0,
                    offset: uv,
                    stride: 104,
                    row_bytes: 96,
                    rows: 32
                },
            ]
        );
        assert_eq!(g.fd_sizes, [(uv + 104 * 32) as usize]);
        assert_ne!(NV12_Y_OFFSET % 64, 0);
        assert_ne!(uv % 64, 0);
        // Odd width: the CbCr rows are one byte longer than the Y rows.
        assert!(BufferGeometry::new(Format::Nv12, (7, 4), PlaneLayout::OneFdUnaligned, 7).is_err());
        assert!(BufferGeometry::new(Format::Nv12, (7, 4), PlaneLayout::OneFdUnaligned, 8).is_ok());
        // RGB ignores the layout: one plane at 0 with the given stride.
        for layout in [
            PlaneLayout::OneFdUnaligned,
            PlaneLayout::OneFdAligned,
            PlaneLayout::FdPerPlane,
        ] {
            let g = BufferGeometry::new(Format::Xrgb8888, (100, 80), layout, 416).expect("geometry");
            assert_eq!(
                g.planes,
                [PlaneGeometry {
                    fd: 0,
                    offset: 0,
                    stride: 416,
                    row_bytes: 400,
                    rows: 80
                }]
            );
            assert_eq!(g.fd_sizes, [416 * 80]);
        }
        assert!(BufferGeometry::new(Format::Xrgb8888, (100, 80), PlaneLayout::OneFdAligned, 396).is_err());
    }

    /// Fills every fd of `geometry` into vectors, as `DmabufBuffer` does into its mappings.
    fn write_all(
        geometry: &BufferGeometry,
        f: Format,
        size: (u32, u32),
        px: &dyn Fn(u32, u32) -> [u8; 4],
    ) -> Vec<Vec<u8>> {
        (0..geometry.fd_sizes.len())
            .map(|i| {
                let mut bytes = vec![0u8; geometry.fd_sizes[i]];
                write_fd(&mut bytes, i, geometry, f, size, px);
                bytes
            })
            .collect()
    }

    #[test]
    fn planes_hold_luma_and_block_corner_chroma() {
        // Y = 10x + y, Cb = 100 + x, Cr = 200 - y (chroma varies inside blocks).
        let samples = |x: u32, y: u32| [(10 * x + y) as u16, (100 + x) as u16, (200 - y) as u16];
        let size = (6, 4);
        // YUV420, one fd per plane: Cb and Cr in their own fds, from each 2x2 block's corner.
        let f = Format::Yuv420;
        let g = BufferGeometry::new(f, size, PlaneLayout::FdPerPlane, 6).expect("geometry");
        let fds = write_all(&g, f, size, &|x, y| f.pack_ycbcr(samples(x, y)));
        assert_eq!(&fds[0][6..12], &[1, 11, 21, 31, 41, 51]);
        assert_eq!(fds[1][..6], [100, 102, 104, 100, 102, 104]);
        assert_eq!(fds[2][..6], [200, 200, 200, 198, 198, 198]);
        // NV16, one fd: CbCr interleaved at full height after the Y plane (page aligned).
        let f = Format::Nv16;
        let g = BufferGeometry::new(f, size, PlaneLayout::OneFdAligned, 6).expect("geometry");
        let fd = &write_all(&g, f, size, &|x, y| f.pack_ycbcr(samples(x, y)))[0];
        assert_eq!(&fd[18..24], &[3, 13, 23, 33, 43, 53]);
        // The gap up to the chroma plane is padding.
        assert!(fd[24..4096].iter().all(|&b| b == PADDING_BYTES[0]));
        assert_eq!(&fd[4096 + 6..4096 + 12], &[100, 199, 102, 199, 104, 199]);
        // P010: little-endian u16 with the 10-bit value in the high bits.
        let f = Format::P010;
        let g = BufferGeometry::new(f, (2, 2), PlaneLayout::OneFdAligned, 4).expect("geometry");
        let fd = &write_all(&g, f, (2, 2), &|x, y| {
            f.pack_ycbcr([940 - x as u16, 64 + y as u16, 960])
        })[0];
        assert_eq!(&fd[..8], &[0x00, 0xeb, 0xc0, 0xea, 0x00, 0xeb, 0xc0, 0xea]);
        assert_eq!(u16::from_le_bytes([fd[0], fd[1]]), 940 << 6);
        assert_eq!(
            &fd[4096..4100],
            &(64u16 << 6)
                .to_le_bytes()
                .into_iter()
                .chain((960u16 << 6).to_le_bytes())
                .collect::<Vec<_>>()[..]
        );
        // The unaligned NV12 layout: stride padding and the gap are padding bytes.
        let f = Format::Nv12;
        let g = BufferGeometry::new(f, size, PlaneLayout::OneFdUnaligned, 8).expect("geometry");
        let fd = &write_all(&g, f, size, &|x, y| f.pack_ycbcr(samples(x, y)))[0];
        let y0 = NV12_Y_OFFSET as usize;
        assert!(fd[..y0].iter().all(|&b| b == PADDING_BYTES[0]));
        assert_eq!(&fd[y0 + 8..y0 + 16], &[1, 11, 21, 31, 41, 51, 0xff, 0xff]);
        let uv = g.planes[1].offset as usize;
        assert_eq!(uv, y0 + 8 * 4 + NV12_GAP as usize);
        assert_eq!(&fd[uv + 8..uv + 16], &[100, 198, 102, 198, 104, 198, 0xff, 0xff]);
    }
}
