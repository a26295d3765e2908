//! Imports memfd-backed "dma-bufs" on the host's Vulkan device (lavapipe on
//! CI), renders them and reads the pixels back. Exercises both import paths.

mod support;

use std::os::fd::OwnedFd;

use ash::vk;
use drm_fourcc::{DrmFourcc, DrmModifier};
use importer::renderer::{CoreOptions, RenderCore};
use importer::vulkan::pipeline::{Filter, QuadPush};
use importer::vulkan::recorder::{Drawable, Quad};
use importer::vulkan::ycbcr::Representation;
use importer::vulkan::Region;
use importer::{DmabufDesc, DmabufPlane, ImportPath, ImportPolicy, ImportStats, Importer};

const W: u32 = 64;
const H: u32 = 48;

/// A sealed memfd of `stride * H + offset` bytes holding `pixel(x, y)` (memory byte order).
fn memfd_buffer(stride: u32, offset: u32, pixel: impl Fn(u32, u32) -> [u8; 4]) -> OwnedFd {
    let len = (offset + stride * H) as usize;
    let mut bytes = vec![0u8; len];
    for y in 0..H {
        for x in 0..W {
            let at = (offset + y * stride + x * 4) as usize;
            bytes[at..at + 4].copy_from_slice(&pixel(x, y));
        }
    }
    support::memfd_holding("test-dmabuf", &bytes, true)
}

fn desc(fd: OwnedFd, fourcc: DrmFourcc, stride: u32, offset: u32) -> DmabufDesc {
    DmabufDesc {
        width: W,
        height: H,
        fourcc,
        modifier: DrmModifier::Linear,
        flags: 0,
        planes: vec![DmabufPlane { fd, offset, stride }],
    }
}

fn pattern(x: u32, y: u32) -> [u8; 4] {
    // XRGB8888 memory order: B, G, R, X (X deliberately not 255).
    [(x * 4) as u8, (y * 5) as u8, 200, 7]
}

/// Renders `what` over a clear colour into a W×H target; returns the bytes per pixel as stored (B8G8R8A8).
fn render_texture(core: &RenderCore, what: &Drawable) -> Vec<u8> {
    render_texture_sized(core, what, (W, H), Representation::default())
}

/// [`render_texture`] into a target of `(w, h)`, a YUV texture sampled as `representation`.
fn render_texture_sized(
    core: &RenderCore,
    what: &Drawable,
    (w, h): (u32, u32),
    representation: Representation,
) -> Vec<u8> {
    let fmt = importer::format::format_info(DrmFourcc::Xrgb8888).unwrap();
    let target = core.create_target(fmt, w, h).unwrap();
    let mut frame = core.begin_frame(&target, Filter::Nearest).unwrap();
    let all = vk::Rect2D {
        offset: vk::Offset2D { x: 0, y: 0 },
        extent: vk::Extent2D { width: w, height: h },
    };
    frame.clear([0.125, 0.125, 0.125, 1.0], &[all]);
    let corners = QuadPush::rect_corners(0.0, 0.0, w as f32, h as f32);
    let uv = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
    let quad = Quad {
        push: QuadPush::textured(corners, [w as f32, h as f32], uv, 1.0),
        opaque: &[],
        blended: &[all],
        pixel_exact: true,
        texel_offset: None,
        representation,
    };
    frame.draw(Some(what), &quad);
    core.submit_frame(frame).unwrap();
    let rb = core.read_target(&target, Region::full(w, h)).unwrap();
    rb.wait_bytes().unwrap().to_vec()
}

/// Imports `desc` and renders it like [`render_texture`]; returns the import path and the pixels.
fn render(core: &mut RenderCore, d: &DmabufDesc) -> (ImportPath, Vec<u8>) {
    let buf = core.importer_mut().import(d).expect("import");
    (Importer::path_of(&buf), render_texture(core, &Drawable::Client(buf)))
}

fn core_with(import: ImportPolicy) -> RenderCore {
    // Final check: a lock-rule violation anywhere in this binary fails it.
    importer::lockdep::fail_at_exit_on_violations();
    RenderCore::new(CoreOptions {
        import,
        ..Default::default()
    })
    .expect("a Vulkan device (run scripts/setup-host.sh)")
}

fn core(force_buffer_path: bool) -> RenderCore {
    core_with(ImportPolicy {
        force_buffer_path,
        ..Default::default()
    })
}

/// A renderer whose every dma-buf takes the CPU fallback.
fn cpu_core() -> RenderCore {
    core_with(ImportPolicy {
        cpu_fallback: true,
        ..Default::default()
    })
}

fn stats(core: &RenderCore) -> ImportStats {
    core.importer().stats()
}

fn assert_pattern(bytes: &[u8]) {
    for y in 0..H {
        for x in 0..W {
            let at = ((y * W + x) * 4) as usize;
            let want = pattern(x, y);
            assert_eq!(&bytes[at..at + 3], &want[..3], "pixel ({x},{y})");
            assert_eq!(bytes[at + 3], 255, "X format must sample alpha as 1 at ({x},{y})");
        }
    }
}

#[test]
fn aligned_stride_imports_zero_copy_as_image() {
    let mut core = core(false);
    let (path, bytes) = render(
        &mut core,
        &desc(memfd_buffer(W * 4, 0, pattern), DrmFourcc::Xrgb8888, W * 4, 0),
    );
    assert_eq!(path, ImportPath::ZeroCopyImage);
    assert_pattern(&bytes);
    assert_eq!(stats(&core).zero_copy_image, 1);
}

#[test]
fn unaligned_stride_takes_the_buffer_path() {
    let mut core = core(false);
    let stride = W * 4 + 16; // not a multiple of lavapipe's 64-byte pitch alignment
    let (path, bytes) = render(
        &mut core,
        &desc(memfd_buffer(stride, 0, pattern), DrmFourcc::Xrgb8888, stride, 0),
    );
    assert_eq!(path, ImportPath::GpuBufferCopy);
    assert_pattern(&bytes);
    assert_eq!(stats(&core).gpu_buffer_copy, 1);
}

#[test]
fn plane_offset_takes_the_buffer_path_and_reads_from_the_offset() {
    let mut core = core(false);
    let (path, bytes) = render(
        &mut core,
        &desc(
            memfd_buffer(W * 4, 4096 + 64, pattern),
            DrmFourcc::Xrgb8888,
            W * 4,
            4096 + 64,
        ),
    );
    assert_eq!(path, ImportPath::GpuBufferCopy);
    assert_pattern(&bytes);
}

#[test]
fn premultiplied_alpha_blends_over_the_clear_colour() {
    let mut core = core(false);
    // ARGB8888 memory order B,G,R,A; premultiplied half-transparent red: (128,0,0,128).
    let red = |_, _| [0u8, 0, 128, 128];
    let (_, bytes) = render(
        &mut core,
        &desc(memfd_buffer(W * 4, 0, red), DrmFourcc::Argb8888, W * 4, 0),
    );
    // out = src + dst * (1 - a) = 128 + 32 * (127/255) ≈ 144 (red), 0 + 16 ≈ 16 (green/blue)
    let px = &bytes[0..4]; // stored B,G,R,A
    assert!((px[2] as i32 - 144).abs() <= 1, "red {px:?}");
    assert!((px[1] as i32 - 16).abs() <= 1, "green {px:?}");
}

#[test]
fn forced_buffer_path_is_used_for_every_import() {
    let mut core = core(true);
    let (path, bytes) = render(
        &mut core,
        &desc(memfd_buffer(W * 4, 0, pattern), DrmFourcc::Xrgb8888, W * 4, 0),
    );
    assert_eq!(path, ImportPath::GpuBufferCopy);
    assert_pattern(&bytes);
}

#[test]
fn out_of_bounds_plane_is_refused_before_the_driver_sees_it() {
    let mut core = core(false);
    let fd = memfd_buffer(W * 4, 0, pattern);
    let d = desc(fd, DrmFourcc::Xrgb8888, W * 4, 64); // offset pushes the last row past the end
    let err = core.importer_mut().import(&d).unwrap_err();
    assert!(err.to_string().contains("exceeds the fd size"), "{err}");
    assert_eq!(stats(&core).failed, 1);
}

#[test]
fn cpu_fallback_reads_a_plane_at_an_unaligned_offset() {
    let mut core = cpu_core();
    let offset = 4096 + 64; // not page aligned: the mapping starts at 0 and indexes to the plane
    let stride = W * 4 + 16;
    let d = desc(
        memfd_buffer(stride, offset, pattern),
        DrmFourcc::Xrgb8888,
        stride,
        offset,
    );
    let buf = core.importer_mut().import(&d).expect("CPU fallback import");
    assert_eq!(stats(&core).cpu_fallback, 1);
    // The first use copies the whole buffer, whatever the damage says.
    buf.refresh(Some(&[Region::full(1, 1)]))
        .expect("first copy at first use");
    assert_pattern(&render_texture(&core, &Drawable::Client(buf)));
}

#[test]
fn cpu_fallback_refuses_an_unsealed_memfd() {
    let mut core = cpu_core();
    let fd = rustix::fs::memfd_create("unsealed", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, u64::from(W * 4 * H)).unwrap();
    let err = core
        .importer_mut()
        .import(&desc(fd, DrmFourcc::Xrgb8888, W * 4, 0))
        .unwrap_err();
    assert!(err.to_string().contains("F_SEAL_SHRINK"), "{err}");
}

/// A modifier the device did not list is refused before any import is
/// attempted, on the GPU paths and the CPU fallback alike (the CPU reads
/// rows at offset + y × stride, which a tiled layout is not).
#[test]
fn an_unadvertised_modifier_is_refused_before_any_import() {
    for mut core in [core(false), cpu_core()] {
        let mut d = desc(memfd_buffer(W * 4, 0, pattern), DrmFourcc::Xrgb8888, W * 4, 0);
        d.modifier = DrmModifier::I915_x_tiled;
        let err = core.importer_mut().import(&d).unwrap_err();
        assert!(err.to_string().contains("not advertised"), "{err}");
        let s = stats(&core);
        assert_eq!(
            (
                s.refused,
                s.failed,
                s.zero_copy_image + s.gpu_buffer_copy + s.cpu_fallback
            ),
            (1, 0, 0)
        );
    }
}

/// The chroma samples pixel `x` of a row of `w` is reconstructed from when
/// chroma is subsampled by 2 (cosited with the even pixels, linear filter:
/// `vulkan::ycbcr`): its own for an even pixel, the two around an odd one
/// (the last repeats past the edge); the pixel gets their mean.
fn cosited(x: u32, w: u32) -> [u32; 2] {
    [x / 2, ((x + 1) / 2).min((w - 1) / 2)]
}

/// The mean of `chroma` over the samples that pixel (x, y) is reconstructed
/// from, `sub` being the (horizontal, vertical) subsampling.
fn reconstructed(
    chroma: &dyn Fn(u32, u32) -> (u16, u16),
    (x, y): (u32, u32),
    (w, h): (u32, u32),
    sub: (u32, u32),
) -> [f64; 2] {
    let pick = |v: u32, n: u32, s: u32| if s == 2 { cosited(v, n) } else { [v, v] };
    let (xs, ys) = (pick(x, w, sub.0), pick(y, h, sub.1));
    let mut sum = [0.0; 2];
    for cy in ys {
        for cx in xs {
            let (cb, cr) = chroma(cx, cy);
            sum[0] += f64::from(cb) / 4.0;
            sum[1] += f64::from(cr) / 4.0;
        }
    }
    sum
}

/// BT.601 limited range, the reference for the NV12 conversion shader, of
/// samples in 8-bit units that may have a fraction (10-bit samples divided
/// by 4).
fn bt601_f([y, cb, cr]: [f64; 3]) -> [f64; 3] {
    let (y, cb, cr) = (y - 16.0, cb - 128.0, cr - 128.0);
    let l = 1.164383 * y;
    [l + 1.596027 * cr, l - 0.391762 * cb - 0.812968 * cr, l + 2.017232 * cb].map(|v| v.clamp(0.0, 255.0))
}

/// NV12 through the CPU fallback: both planes in one sealed memfd at offsets
/// that are not page (nor word) aligned, with strides wider than the rows;
/// mapped once from offset 0, staged, converted by the compute shader and
/// compared pixel by pixel with the BT.601 formula.
#[test]
fn cpu_fallback_converts_nv12_from_one_fd_at_unaligned_offsets() {
    // The default policy: NV12 takes the CPU fallback on its own.
    let mut core = core(false);
    let (y_off, y_stride, uv_stride) = (4096 + 99, W + 13, W + 6);
    let uv_off = y_off + y_stride * H + 37;
    let len = (uv_off + uv_stride * H.div_ceil(2)) as usize;
    let luma = |x: u32, y: u32| (16 + (x * 3 + y) % 220) as u8;
    let chroma = |cx: u32, cy: u32| ((40 + cx * 5) as u8, (230 - cy * 6) as u8);
    let mut bytes = vec![0xAAu8; len];
    for y in 0..H {
        for x in 0..W {
            bytes[(y_off + y * y_stride + x) as usize] = luma(x, y);
        }
    }
    for cy in 0..H.div_ceil(2) {
        for cx in 0..W.div_ceil(2) {
            let (cb, cr) = chroma(cx, cy);
            let at = (uv_off + cy * uv_stride + cx * 2) as usize;
            bytes[at] = cb;
            bytes[at + 1] = cr;
        }
    }
    let fd = support::memfd_holding("nv12", &bytes, true);
    let fd2 = fd.try_clone().unwrap();
    let d = DmabufDesc {
        width: W,
        height: H,
        fourcc: DrmFourcc::Nv12,
        modifier: DrmModifier::Linear,
        flags: 0,
        planes: vec![
            DmabufPlane {
                fd,
                offset: y_off,
                stride: y_stride,
            },
            DmabufPlane {
                fd: fd2,
                offset: uv_off,
                stride: uv_stride,
            },
        ],
    };
    let buf = core.importer_mut().import(&d).expect("NV12 CPU fallback import");
    assert_eq!(Importer::path_of(&buf), ImportPath::CpuFallback);
    buf.refresh(Some(&[Region::full(1, 1)]))
        .expect("first use converts the whole buffer");
    let out = render_texture(&core, &Drawable::Client(buf)); // B8G8R8A8 target
    let chroma8 = |cx, cy| {
        let (cb, cr) = chroma(cx, cy);
        (u16::from(cb), u16::from(cr))
    };
    for y in 0..H {
        for x in 0..W {
            let [cb, cr] = reconstructed(&chroma8, (x, y), (W, H), (2, 2));
            let want = bt601_f([f64::from(luma(x, y)), cb, cr]);
            let at = ((y * W + x) * 4) as usize;
            let got = [out[at + 2], out[at + 1], out[at]];
            for c in 0..3 {
                assert!(
                    (f64::from(got[c]) - want[c]).abs() <= 2.0,
                    "pixel ({x},{y}) channel {c}: got {got:?}, want {want:?}"
                );
            }
            assert_eq!(out[at + 3], 255, "alpha at ({x},{y})");
        }
    }
}

#[test]
fn nv12_with_one_plane_is_refused() {
    let mut core = core(false);
    let d = desc(memfd_buffer(W * 4, 0, pattern), DrmFourcc::Nv12, W, 0);
    let err = core.importer_mut().import(&d).unwrap_err();
    assert!(err.to_string().contains("plane"), "{err}");
}

/// Y'CbCr samples at `bits` → R'G'B' (0–255) by Vulkan's formulas for the
/// representation's model and range: an independent model of the sampler.
fn ycbcr_to_rgb([y, cb, cr]: [f64; 3], bits: u32, r: Representation) -> [f64; 3] {
    use ash::vk::{SamplerYcbcrModelConversion as M, SamplerYcbcrRange as R};
    let n = f64::from(1u32 << bits);
    let k = f64::from(1u32 << (bits - 8));
    let (y, cb, cr) = if r.range == R::ITU_FULL {
        (y / (n - 1.0), (cb - n / 2.0) / (n - 1.0), (cr - n / 2.0) / (n - 1.0))
    } else {
        (
            (y - 16.0 * k) / (219.0 * k),
            (cb - 128.0 * k) / (224.0 * k),
            (cr - 128.0 * k) / (224.0 * k),
        )
    };
    let (kr, kb) = match r.model {
        M::YCBCR_709 => (0.2126, 0.0722),
        M::YCBCR_2020 => (0.2627, 0.0593),
        _ => (0.299, 0.114),
    };
    let red = y + 2.0 * (1.0 - kr) * cr;
    let blue = y + 2.0 * (1.0 - kb) * cb;
    let green = (y - kr * red - kb * blue) / (1.0 - kr - kb);
    [red, green, blue].map(|v| (v * 255.0).clamp(0.0, 255.0))
}

/// How a YUV test buffer lays its planes out.
struct Layout {
    /// One fd per plane (else all planes in one fd).
    separate_fds: bool,
    /// Byte offset of each plane in its fd.
    offsets: Vec<u32>,
    /// Each fd holds at least this many bytes.
    file_len: u32,
    /// Stride of each plane in bytes.
    strides: Vec<u32>,
}

/// A YUV buffer of `format` (`w`×`h`): 8-bit (or, for P010, 10-bit in the
/// high bits of 16) samples from `luma(x, y)` and `chroma(cx, cy)`, written
/// where `layout` says. Returns the description.
fn yuv_desc(
    fourcc: DrmFourcc,
    (w, h): (u32, u32),
    layout: &Layout,
    luma: &dyn Fn(u32, u32) -> u16,
    chroma: &dyn Fn(u32, u32) -> (u16, u16),
) -> DmabufDesc {
    let info = importer::format::format_info(fourcc).unwrap();
    let wide = fourcc == DrmFourcc::P010;
    let put = |bytes: &mut Vec<u8>, at: usize, v: u16| {
        if wide {
            bytes[at..at + 2].copy_from_slice(&(v << 6).to_le_bytes());
        } else {
            bytes[at] = v as u8;
        }
    };
    let sample = if wide { 2 } else { 1 };
    let mut files: Vec<Vec<u8>> = vec![Vec::new(); info.planes.len()];
    for (i, plane) in info.planes.iter().enumerate() {
        let (pw, ph) = plane.extent(w, h);
        let file = if layout.separate_fds { i } else { 0 };
        let end = ((layout.offsets[i] + layout.strides[i] * ph) as usize).max(layout.file_len as usize);
        let bytes = &mut files[file];
        if bytes.len() < end {
            bytes.resize(end, 0xAA);
        }
        for y in 0..ph {
            for x in 0..pw {
                let at = (layout.offsets[i] + y * layout.strides[i]) as usize + (x * plane.bytes_per_sample) as usize;
                match (i, info.planes.len()) {
                    (0, _) => put(bytes, at, luma(x, y)),
                    (1, 2) => {
                        let (cb, cr) = chroma(x, y);
                        put(bytes, at, cb);
                        put(bytes, at + sample, cr);
                    }
                    (1, _) => put(bytes, at, chroma(x, y).0),
                    _ => put(bytes, at, chroma(x, y).1),
                }
            }
        }
    }
    let fds: Vec<OwnedFd> = files
        .iter()
        .filter(|b| !b.is_empty())
        .map(|bytes| support::memfd_holding("yuv", bytes, true))
        .collect();
    let planes = (0..info.planes.len())
        .map(|i| DmabufPlane {
            fd: fds[if layout.separate_fds { i } else { 0 }].try_clone().unwrap(),
            offset: layout.offsets[i],
            stride: layout.strides[i],
        })
        .collect();
    DmabufDesc {
        width: w,
        height: h,
        fourcc,
        modifier: DrmModifier::Linear,
        flags: 0,
        planes,
    }
}

/// Imports `d`, renders it unscaled and compares every pixel with BT.601
/// limited range of its samples (chroma: the nearest cosited sample, by
/// `sub` = the format's (horizontal, vertical) subsampling). `bits` is the
/// sample depth. Returns the import path.
fn render_yuv(
    d: DmabufDesc,
    sub: (u32, u32),
    bits: u32,
    luma: &dyn Fn(u32, u32) -> u16,
    chroma: &dyn Fn(u32, u32) -> (u16, u16),
) -> ImportPath {
    render_yuv_as(d, (sub, bits), luma, chroma, Representation::default())
}

/// [`render_yuv`] sampled as `representation` (compared with its formula).
fn render_yuv_as(
    d: DmabufDesc,
    (sub, bits): ((u32, u32), u32),
    luma: &dyn Fn(u32, u32) -> u16,
    chroma: &dyn Fn(u32, u32) -> (u16, u16),
    representation: Representation,
) -> ImportPath {
    let (w, h, fourcc) = (d.width, d.height, d.fourcc);
    let mut core = core(false);
    let buf = core.importer_mut().import(&d).expect("YUV import");
    let path = Importer::path_of(&buf);
    buf.refresh(None).expect("refresh");
    let out = render_texture_sized(&core, &Drawable::Client(buf), (w, h), representation);
    for y in 0..h {
        for x in 0..w {
            let [cb, cr] = reconstructed(chroma, (x, y), (w, h), sub);
            let want = ycbcr_to_rgb([f64::from(luma(x, y)), cb, cr], bits, representation);
            let at = ((y * w + x) * 4) as usize;
            let got = [out[at + 2], out[at + 1], out[at]];
            for c in 0..3 {
                assert!(
                    (f64::from(got[c]) - want[c]).abs() <= 2.0,
                    "{fourcc:?} pixel ({x},{y}) channel {c}: got {got:?}, want {want:?} ({path:?}, {representation:?})"
                );
            }
        }
    }
    path
}

const YW: u32 = 256;
const YH: u32 = 64;

fn luma8(x: u32, y: u32) -> u16 {
    (16 + (x * 3 + y * 7) % 220) as u16
}

/// Chroma that changes every 2 samples, so a wrong siting shows.
fn chroma8(cx: u32, cy: u32) -> (u16, u16) {
    ((40 + (cx * 5) % 180) as u16, (230 - (cy * 6) % 200) as u16)
}

fn luma10(x: u32, y: u32) -> u16 {
    luma8(x, y) * 4 + (x & 3) as u16
}

fn chroma10(cx: u32, cy: u32) -> (u16, u16) {
    let (cb, cr) = chroma8(cx, cy);
    (cb * 4 + 1, cr * 4 + 2)
}

/// Tight strides (row bytes) with planes one after another at 4096-aligned
/// offsets in one fd, or each in its own fd at offset 0.
fn tight(fourcc: DrmFourcc, separate_fds: bool) -> Layout {
    let info = importer::format::format_info(fourcc).unwrap();
    let strides: Vec<u32> = info.planes.iter().map(|p| p.row_bytes(YW) as u32).collect();
    let mut offsets = Vec::new();
    let mut at = 0;
    for (p, stride) in info.planes.iter().zip(&strides) {
        offsets.push(if separate_fds { 0 } else { at });
        at = (at + stride * p.extent(YW, YH).1).next_multiple_of(4096);
    }
    Layout {
        separate_fds,
        offsets,
        strides,
        // Lavapipe asks each disjoint plane's memory to hold the whole image.
        file_len: if separate_fds { at } else { 0 },
    }
}

#[test]
fn nv12_in_one_fd_is_sampled_zero_copy() {
    let d = yuv_desc(
        DrmFourcc::Nv12,
        (YW, YH),
        &tight(DrmFourcc::Nv12, false),
        &luma8,
        &chroma8,
    );
    assert_eq!(render_yuv(d, (2, 2), 8, &luma8, &chroma8), ImportPath::ZeroCopyImage);
}

#[test]
fn nv12_with_a_plane_per_fd_is_sampled_zero_copy() {
    let d = yuv_desc(
        DrmFourcc::Nv12,
        (YW, YH),
        &tight(DrmFourcc::Nv12, true),
        &luma8,
        &chroma8,
    );
    assert_eq!(render_yuv(d, (2, 2), 8, &luma8, &chroma8), ImportPath::ZeroCopyImage);
}

#[test]
fn nv16_is_sampled_zero_copy() {
    let d = yuv_desc(
        DrmFourcc::Nv16,
        (YW, YH),
        &tight(DrmFourcc::Nv16, false),
        &luma8,
        &chroma8,
    );
    assert_eq!(render_yuv(d, (2, 1), 8, &luma8, &chroma8), ImportPath::ZeroCopyImage);
}

#[test]
fn yuv420_with_three_fds_is_sampled_zero_copy() {
    let d = yuv_desc(
        DrmFourcc::Yuv420,
        (YW, YH),
        &tight(DrmFourcc::Yuv420, true),
        &luma8,
        &chroma8,
    );
    assert_eq!(render_yuv(d, (2, 2), 8, &luma8, &chroma8), ImportPath::ZeroCopyImage);
}

#[test]
fn p010_is_sampled_zero_copy_at_ten_bits() {
    let d = yuv_desc(
        DrmFourcc::P010,
        (YW, YH),
        &tight(DrmFourcc::P010, false),
        &luma10,
        &chroma10,
    );
    assert_eq!(render_yuv(d, (2, 2), 10, &luma10, &chroma10), ImportPath::ZeroCopyImage);
}

/// NV12 whose layout the device cannot sample as it is (a stride wider
/// than the driver's pitch, an unaligned offset) still shows, through the
/// CPU fallback; NV16 in the same layout has no fallback and fails.
#[test]
fn yuv_in_a_layout_the_device_cannot_sample_falls_back_or_fails() {
    let mut odd = tight(DrmFourcc::Nv12, false);
    odd.strides = vec![YW + 64, YW + 64];
    odd.offsets = vec![100, 100 + (YW + 64) * YH + 60];
    odd.file_len = 0;
    let d = yuv_desc(DrmFourcc::Nv12, (YW, YH), &odd, &luma8, &chroma8);
    assert_eq!(render_yuv(d, (2, 2), 8, &luma8, &chroma8), ImportPath::CpuFallback);
    // The fallback converts as the surface's representation says, too.
    let bt709_full = Representation {
        model: ash::vk::SamplerYcbcrModelConversion::YCBCR_709,
        range: ash::vk::SamplerYcbcrRange::ITU_FULL,
        chroma: None,
    };
    let d = yuv_desc(DrmFourcc::Nv12, (YW, YH), &odd, &luma8, &chroma8);
    let path = render_yuv_as(d, ((2, 2), 8), &luma8, &chroma8, bt709_full);
    assert_eq!(path, ImportPath::CpuFallback);
    let mut core = core(false);
    let d = yuv_desc(DrmFourcc::Nv16, (YW, YH), &odd, &luma8, &chroma8);
    let err = core.importer_mut().import(&d).unwrap_err();
    assert!(err.to_string().contains("plane layout"), "{err}");
    assert_eq!(stats(&core).failed, 1);
}

/// Every offered coefficient × range pair on every YUV format, each
/// compared with its own formula: the conversion follows the representation.
#[test]
fn every_representation_converts_every_yuv_format_by_its_formula() {
    use ash::vk::{SamplerYcbcrModelConversion as M, SamplerYcbcrRange as R};
    let formats: [(DrmFourcc, (u32, u32), u32); 4] = [
        (DrmFourcc::Nv12, (2, 2), 8),
        (DrmFourcc::Nv16, (2, 1), 8),
        (DrmFourcc::Yuv420, (2, 2), 8),
        (DrmFourcc::P010, (2, 2), 10),
    ];
    for (fourcc, sub, bits) in formats {
        let (luma, chroma): (&dyn Fn(u32, u32) -> u16, &dyn Fn(u32, u32) -> (u16, u16)) = if bits == 10 {
            (&luma10, &chroma10)
        } else {
            (&luma8, &chroma8)
        };
        for model in [M::YCBCR_601, M::YCBCR_709, M::YCBCR_2020] {
            for range in [R::ITU_NARROW, R::ITU_FULL] {
                let representation = Representation {
                    model,
                    range,
                    chroma: None,
                };
                let d = yuv_desc(fourcc, (YW, YH), &tight(fourcc, false), luma, chroma);
                let path = render_yuv_as(d, (sub, bits), luma, chroma, representation);
                assert_eq!(path, ImportPath::ZeroCopyImage, "{fourcc:?} {representation:?}");
            }
        }
    }
}
