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
        let data = Arc::new(ParamsData::default());
        let params = client.globals.dmabuf.create_params(&client.qh, data.clone());
        ParamsBuilder { params, data }
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

/// A mapped buffer filled by the client and wrapped in a `wl_buffer`.
pub struct DmabufBuffer {
    pub buffer: WlBuffer,
    pub width: u32,
    pub height: u32,
    pub format: Format,
    pub stride: u32,
    map: Mapping,
    /// Kept open so the client can refill the same memory (the compositor has
    /// its own dup of the fd).
    fd: OwnedFd,
}

impl DmabufBuffer {
    /// Allocates and fills a buffer for a scene surface.
    pub fn from_spec(client: &Client, provider: &dyn BufferProvider, spec: &SurfaceSpec) -> Result<DmabufBuffer> {
        let pixels = spec.pixels.clone();
        DmabufBuffer::new(
            client,
            provider,
            spec.width,
            spec.height,
            spec.format,
            spec.stride,
            &*pixels,
        )
    }

    /// Allocates `stride * height` bytes, fills them with `pixels` (memory-order
    /// bytes; row padding gets [`PADDING_BYTES`]) and creates the wl_buffer
    /// with one LINEAR plane at offset 0 via `create_immed`.
    pub fn new(
        client: &Client,
        provider: &dyn BufferProvider,
        width: u32,
        height: u32,
        format: Format,
        stride: u32,
        pixels: &dyn Fn(u32, u32) -> [u8; 4],
    ) -> Result<DmabufBuffer> {
        if format == Format::Nv12 {
            return DmabufBuffer::new_nv12(client, provider, width, height, stride, pixels);
        }
        DmabufBuffer::new_filled_then(client, provider, (width, height), format, stride, pixels, &|_| Ok(()))
    }

    /// [`DmabufBuffer::new`] (RGB formats) that runs `before_create` on the
    /// filled buffer's fd just before `create_immed`: for example to attach
    /// a fence that is still pending when the compositor imports the buffer.
    pub fn new_filled_then(
        client: &Client,
        provider: &dyn BufferProvider,
        (width, height): (u32, u32),
        format: Format,
        stride: u32,
        pixels: &dyn Fn(u32, u32) -> [u8; 4],
        before_create: &dyn Fn(&OwnedFd) -> Result<()>,
    ) -> Result<DmabufBuffer> {
        if format == Format::Nv12 || width == 0 || height == 0 || stride < width * 4 {
            bail!("bad buffer geometry {format:?} {width}x{height} stride {stride}");
        }
        let size = stride as usize * height as usize;
        let fd = provider
            .allocate(size)
            .with_context(|| format!("{} provider: allocate {size} bytes", provider.name()))?;
        let map = Mapping::new(&fd, size).context("mmap client buffer")?;
        let params = ParamsBuilder::new(client);
        params.add(&fd, 0, 0, stride, MOD_LINEAR);
        let mut map = map;
        fill_mapping(&fd, &mut map, (width, height), format, stride, pixels);
        before_create(&fd)?;
        let buffer = params.create_immed(client, width as i32, height as i32, format.fourcc(), 0);
        params.destroy();
        Ok(DmabufBuffer {
            buffer,
            width,
            height,
            format,
            stride,
            map,
            fd,
        })
    }

    /// NV12: both planes in one fd, at offsets that are not page aligned
    /// ([`NV12_Y_OFFSET`], then the CbCr plane [`NV12_GAP`] bytes after the
    /// Y plane), both with `stride`. The CbCr pair of each 2x2 block comes
    /// from `pixels` at its top-left pixel.
    fn new_nv12(
        client: &Client,
        provider: &dyn BufferProvider,
        width: u32,
        height: u32,
        stride: u32,
        pixels: &dyn Fn(u32, u32) -> [u8; 4],
    ) -> Result<DmabufBuffer> {
        if width == 0 || height == 0 || stride < width.div_ceil(2) * 2 {
            bail!("bad NV12 geometry {width}x{height} stride {stride}");
        }
        let uv_offset = NV12_Y_OFFSET + stride * height + NV12_GAP;
        let size = (uv_offset + stride * height.div_ceil(2)) as usize;
        let fd = provider
            .allocate(size)
            .with_context(|| format!("{} provider: allocate {size} bytes", provider.name()))?;
        let map = Mapping::new(&fd, size).context("mmap client buffer")?;
        let params = ParamsBuilder::new(client);
        params.add(&fd, 0, NV12_Y_OFFSET, stride, MOD_LINEAR);
        params.add(&fd, 1, uv_offset, stride, MOD_LINEAR);
        let buffer = params.create_immed(client, width as i32, height as i32, Format::Nv12.fourcc(), 0);
        params.destroy();
        let mut buf = DmabufBuffer {
            buffer,
            width,
            height,
            format: Format::Nv12,
            stride,
            map,
            fd,
        };
        buf.fill(pixels);
        Ok(buf)
    }
}

/// Writes `pixels` into a client buffer's mapping inside a CPU-write bracket
/// (`DMA_BUF_IOCTL_SYNC`; see [`crate::provider::cpu_write`]); panics if the
/// kernel refuses it, since writing without it would be undefined.
fn fill_mapping(
    fd: &OwnedFd,
    map: &mut Mapping,
    (width, height): (u32, u32),
    format: Format,
    stride: u32,
    pixels: &dyn Fn(u32, u32) -> [u8; 4],
) {
    use std::os::fd::AsFd;
    let cpu =
        crate::provider::cpu_write(fd.as_fd()).unwrap_or_else(|e| panic!("begin CPU write to the client buffer: {e}"));
    if format == Format::Nv12 {
        fill_nv12(map.as_mut_slice(), width, height, stride, pixels);
    } else {
        let (w, stride) = (width as usize, stride as usize);
        for (y, row) in map.as_mut_slice().chunks_exact_mut(stride).enumerate() {
            for (x, px) in row.chunks_exact_mut(4).enumerate() {
                let bytes = if x < w {
                    pixels(x as u32, y as u32)
                } else {
                    PADDING_BYTES
                };
                px.copy_from_slice(&bytes);
            }
        }
    }
    cpu.end()
        .unwrap_or_else(|e| panic!("end CPU write to the client buffer: {e}"));
}

/// NV12 plane layout of [`DmabufBuffer::new`]: Y plane offset (not page
/// aligned) and the gap between the Y and the CbCr plane.
pub const NV12_Y_OFFSET: u32 = 100;
pub const NV12_GAP: u32 = 60;

fn fill_nv12(bytes: &mut [u8], width: u32, height: u32, stride: u32, pixels: &dyn Fn(u32, u32) -> [u8; 4]) {
    let (w, h, stride) = (width as usize, height as usize, stride as usize);
    let y0 = NV12_Y_OFFSET as usize;
    let uv0 = y0 + stride * h + NV12_GAP as usize;
    bytes.fill(PADDING_BYTES[0]);
    for y in 0..h {
        for x in 0..w {
            bytes[y0 + y * stride + x] = pixels(x as u32, y as u32)[0];
        }
    }
    for cy in 0..h.div_ceil(2) {
        for cx in 0..w.div_ceil(2) {
            let p = pixels(2 * cx as u32, 2 * cy as u32);
            let at = uv0 + cy * stride + 2 * cx;
            bytes[at] = p[1];
            bytes[at + 1] = p[2];
        }
    }
}

impl DmabufBuffer {
    /// Rewrites the whole buffer; only call while it is released.
    ///
    /// On a real dma-buf the writes are bracketed with `DMA_BUF_IOCTL_SYNC`
    /// START/END (see [`crate::provider::cpu_write`]); panics if the kernel
    /// refuses that, since writing without it would be undefined.
    pub fn fill(&mut self, pixels: &dyn Fn(u32, u32) -> [u8; 4]) {
        let size = (self.width, self.height);
        fill_mapping(&self.fd, &mut self.map, size, self.format, self.stride, pixels);
    }

    /// The mapped bytes (row padding included).
    pub fn bytes(&self) -> &[u8] {
        self.map.as_slice()
    }

    /// The underlying fd.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Whether the compositor has released the buffer since it was last attached.
    pub fn is_released(&self) -> bool {
        match buffer_data(&self.buffer) {
            Some(d) => d.released.load(Ordering::Acquire),
            None => true,
        }
    }

    /// Marks the buffer as held by the compositor; called on attach.
    pub fn mark_attached(&self) {
        if let Some(d) = buffer_data(&self.buffer) {
            d.released.store(false, Ordering::Release);
        }
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
