//! Scene descriptions shared by `scene-client` (which shows them) and
//! `make-references` (which predicts the screenshot on the CPU).
//!
//! Both sides read the same [`Scene`] value, so a scene can only be changed in
//! one place. Pixel functions return bytes in *memory order* for the surface's
//! format; see [`crate::pixel`] for the conventions.

use std::sync::Arc;

use crate::buffer::PlaneLayout;
use crate::pixel::{chroma_samples, premultiply, ycbcr_to_rgb_f, Format, Representation};

/// Output size used by the render tests, unless a scene asks for another
/// ([`Scene::output_size`]).
pub const OUTPUT_SIZE: (u32, u32) = (320, 240);
/// Opaque background the compositor clears the output to.
pub const BACKGROUND: [u8; 4] = [32, 32, 32, 255];
/// Bytes written into row padding (beyond `width * 4`) so a compositor that
/// reads the wrong stride shows bright magenta garbage (memory order).
pub const PADDING_BYTES: [u8; 4] = [0xff, 0x00, 0xff, 0xff];

/// Where the compositor places the `n`-th mapped toplevel (0-based, per run),
/// for `n` below the cascade's slots on the output (it wraps after them:
/// docs/shell.md; 4 on the scenes' 320×240 output).
pub fn toplevel_position(n: usize) -> (i32, i32) {
    let step = 64 * n as i32;
    (32 + step, 32 + step)
}

/// A pixel function: `(x, y)` to the 4 bytes stored in memory for that texel
/// (Y'CbCr formats: the pixel's packed samples, [`Format::pack_ycbcr`]).
pub type PixelFn = Arc<dyn Fn(u32, u32) -> [u8; 4] + Send + Sync>;

/// One buffer's contents.
#[derive(Clone)]
pub struct SurfaceSpec {
    pub width: u32,
    pub height: u32,
    pub format: Format,
    /// Row pitch in bytes: the plane's for RGB (>= `width * 4`), every
    /// plane's for [`PlaneLayout::OneFdUnaligned`] (>= every plane's row
    /// bytes); the other layouts take exactly plane 0's row bytes.
    pub stride: u32,
    /// Where a multi-planar format's planes go (ignored for RGB).
    pub layout: PlaneLayout,
    /// The colour representation the surface asks for with
    /// `wp_color_representation_v1` (Y'CbCr formats only): the client binds
    /// the protocol and sets coefficients and range before the commit that
    /// attaches the buffer. `None` (the default): the client never binds the
    /// protocol, and the compositor converts with
    /// [`Representation::BT601_LIMITED`].
    pub representation: Option<Representation>,
    pub pixels: PixelFn,
}

impl SurfaceSpec {
    /// A surface with the tight stride (`width * 4` for RGB, plane 0's row
    /// bytes for Y'CbCr) and the default [`PlaneLayout`].
    pub fn new(width: u32, height: u32, format: Format, pixels: PixelFn) -> SurfaceSpec {
        SurfaceSpec {
            width,
            height,
            format,
            stride: format.plane_row_bytes(0, width),
            layout: PlaneLayout::default(),
            representation: None,
            pixels,
        }
    }

    /// Same surface with an explicit stride.
    pub fn with_stride(mut self, stride: u32) -> SurfaceSpec {
        self.stride = stride;
        self
    }

    /// Same surface with its planes laid out as `layout`.
    pub fn with_layout(mut self, layout: PlaneLayout) -> SurfaceSpec {
        self.layout = layout;
        self
    }

    /// Same surface asking for `representation` (see
    /// [`SurfaceSpec::representation`]).
    pub fn with_representation(mut self, representation: Representation) -> SurfaceSpec {
        self.representation = Some(representation);
        self
    }

    /// The representation the compositor converts this surface with: the
    /// one it asks for, else the default.
    pub fn effective_representation(&self) -> Representation {
        self.representation.unwrap_or_default()
    }

    /// The premultiplied RGBA colour the compositor must sample at `(x, y)`.
    ///
    /// Y'CbCr: the pixel's own Y with the mean Cb and Cr of the chroma
    /// samples it lies between ([`crate::pixel::chroma_samples`]: cosited
    /// with the even pixels, linear reconstruction), which the buffer stores
    /// from the top-left pixel of each sample's block, converted with the
    /// surface's [`SurfaceSpec::effective_representation`].
    pub fn texel(&self, x: u32, y: u32) -> [u8; 4] {
        let own = (self.pixels)(x, y);
        if !self.format.is_yuv() {
            return self.format.decode(own);
        }
        let (sx, sy) = self.format.chroma_subsampling();
        let [luma, _, _] = self.format.unpack_ycbcr(own);
        // The mean of the (up to four) samples the pixel lies between.
        let mut chroma = [0.0f64; 2];
        for cy in chroma_samples(y, sy, self.height) {
            for cx in chroma_samples(x, sx, self.width) {
                let [_, cb, cr] = self.format.unpack_ycbcr((self.pixels)(sx * cx, sy * cy));
                chroma[0] += f64::from(cb) / 4.0;
                chroma[1] += f64::from(cr) / 4.0;
            }
        }
        let ycbcr = [f64::from(luma), chroma[0], chroma[1]];
        let [r, g, b] = ycbcr_to_rgb_f(ycbcr, self.format.bits(), self.effective_representation());
        [r, g, b, 255]
    }
}

/// A subsurface placed relative to its parent's top-left corner.
#[derive(Clone)]
pub struct SubsurfaceSpec {
    pub offset: (i32, i32),
    pub surface: SurfaceSpec,
}

/// One xdg_toplevel.
#[derive(Clone)]
pub struct WindowSpec {
    pub title: &'static str,
    pub surface: SurfaceSpec,
    /// Stacked above the parent in list order (later = higher).
    pub subsurfaces: Vec<SubsurfaceSpec>,
    /// If set: after the window's first frame, commit this buffer instead; the
    /// final image shows it.
    pub replacement: Option<SurfaceSpec>,
}

impl WindowSpec {
    fn plain(title: &'static str, surface: SurfaceSpec) -> WindowSpec {
        WindowSpec {
            title,
            surface,
            subsurfaces: Vec::new(),
            replacement: None,
        }
    }

    /// The buffer that is visible once the scene is complete.
    pub fn final_surface(&self) -> &SurfaceSpec {
        self.replacement.as_ref().unwrap_or(&self.surface)
    }
}

/// A complete scene; windows are mapped in order (later windows on top).
#[derive(Clone)]
pub struct Scene {
    pub name: &'static str,
    pub windows: Vec<WindowSpec>,
    /// The compositor's output size for this scene (`--size`) and the
    /// reference image's size: [`OUTPUT_SIZE`] unless the windows need more.
    pub output_size: (u32, u32),
}

/// Names of all scenes, in a stable order.
pub const NAMES: [&str; 17] = [
    "solid",
    "gradient",
    "alpha",
    "overlap",
    "subsurface",
    "replace",
    "odd-stride",
    "nv12",
    "nv12-planar",
    "nv12-disjoint",
    "nv16",
    "yuv420",
    "p010",
    "nv12-representations",
    "nv16-representations",
    "yuv420-representations",
    "p010-representations",
];

/// Looks a scene up by name.
pub fn by_name(name: &str) -> Option<Scene> {
    let scene = match name {
        "solid" => solid(),
        "gradient" => gradient(),
        "alpha" => alpha(),
        "overlap" => overlap(),
        "subsurface" => subsurface(),
        "replace" => replace(),
        "odd-stride" => odd_stride(),
        "nv12" => nv12(),
        "nv12-planar" => yuv_scene("nv12-planar", Format::Nv12, PlaneLayout::OneFdAligned),
        "nv12-disjoint" => yuv_scene("nv12-disjoint", Format::Nv12, PlaneLayout::FdPerPlane),
        "nv16" => yuv_scene("nv16", Format::Nv16, PlaneLayout::OneFdAligned),
        "yuv420" => yuv_scene("yuv420", Format::Yuv420, PlaneLayout::FdPerPlane),
        "p010" => yuv_scene("p010", Format::P010, PlaneLayout::OneFdAligned),
        "nv12-representations" => representations("nv12-representations", Format::Nv12, PlaneLayout::OneFdAligned),
        "nv16-representations" => representations("nv16-representations", Format::Nv16, PlaneLayout::OneFdAligned),
        "yuv420-representations" => representations("yuv420-representations", Format::Yuv420, PlaneLayout::FdPerPlane),
        "p010-representations" => representations("p010-representations", Format::P010, PlaneLayout::OneFdAligned),
        _ => return None,
    };
    Some(scene)
}

/// All scenes.
pub fn all() -> Vec<Scene> {
    NAMES.iter().filter_map(|n| by_name(n)).collect()
}

/// NV12 (BT.601 limited range), both planes in one fd at offsets that are not
/// page aligned, stride wider than the row: luma ramps left to right, Cb with
/// x and Cr with y, changing from one 2x2 block to the next, so which
/// chroma sample each pixel reads (`SurfaceSpec::texel`) shows.
fn nv12() -> Scene {
    let (w, h) = (96u32, 64u32);
    let px: PixelFn = Arc::new(move |x, y| {
        [
            (16 + x * 219 / (w - 1)) as u8,
            (40 + (x / 2) * 4) as u8,
            (220 - (y / 2) * 5) as u8,
            0,
        ]
    });
    let s = SurfaceSpec::new(w, h, Format::Nv12, px)
        .with_stride(w + 8)
        .with_layout(PlaneLayout::OneFdUnaligned);
    Scene {
        name: "nv12",
        output_size: OUTPUT_SIZE,
        windows: vec![WindowSpec::plain("nv12", s)],
    }
}

/// Size of the Y'CbCr scenes of [`yuv_scene`]: every plane's rows are a
/// multiple of 64 bytes (lavapipe's LINEAR row pitch alignment).
pub const YUV_SCENE_SIZE: (u32, u32) = (256, 128);
/// The Y'CbCr scenes' chroma is constant over blocks of this many pixels
/// square, so each is larger than any subsampled block.
pub const YUV_CHROMA_BLOCK: u32 = 16;

/// A 256x128 opaque Y'CbCr window in `format`, its planes in `layout`
/// (tight strides). The pattern is described at 10 bits and rounded to
/// `format`'s depth, so P010 keeps the low bits the 8-bit formats drop.
///
/// - Luma: a ramp over the limited range from left to right (every 10-bit
///   step, not only multiples of 4), with single-pixel detail: every pixel
///   at (4i + 1, 4j + 2) is inverted and every 32nd row is black, so luma
///   read at chroma resolution, or shifted by a pixel, is visible.
/// - Chroma: constant over [`YUV_CHROMA_BLOCK`]-pixel blocks; Cb and Cr take
///   different patterns over x and y (a Cb/Cr swap, a transposed or
///   mis-strided chroma plane changes the picture), within +-256 of neutral
///   at 10 bits so few colours clip.
fn yuv_scene(name: &'static str, format: Format, layout: PlaneLayout) -> Scene {
    let (w, h) = YUV_SCENE_SIZE;
    let shift = 10 - format.bits();
    let px: PixelFn = Arc::new(move |x, y| {
        let ramp = 64 + x * (940 - 64) / (w - 1);
        let luma = if x % 4 == 1 && y % 4 == 2 {
            64 + 940 - ramp
        } else if y % 32 == 31 {
            64
        } else {
            ramp
        };
        let (bx, by) = (x / YUV_CHROMA_BLOCK, y / YUV_CHROMA_BLOCK);
        let cb = 512 + ((bx * 5 + by * 3) % 9) as i32 * 64 - 256;
        let cr = 512 + ((bx * 3 + by * 7 + 2) % 9) as i32 * 64 - 256;
        // To the format's depth, rounded.
        let to_bits = |v: u32| ((v + (1 << shift >> 1)) >> shift) as u16;
        format.pack_ycbcr([to_bits(luma), to_bits(cb as u32), to_bits(cr as u32)])
    });
    let s = SurfaceSpec::new(w, h, format, px).with_layout(layout);
    Scene {
        name,
        output_size: OUTPUT_SIZE,
        windows: vec![WindowSpec::plain(name, s)],
    }
}

/// Size of each window of a [`representations`] scene. Every plane's rows
/// are a multiple of 64 bytes for all four formats (lavapipe's LINEAR row
/// pitch alignment; YUV420's chroma rows are 64 bytes), and every plane
/// that another follows in one fd fills whole 4096-byte pages, so the
/// [`PlaneLayout::OneFdAligned`] offsets are the tight ones. At most 64
/// rows high, the windows of the placement cascade (one 64-pixel step
/// right and down each) cannot overlap.
pub const REPRESENTATION_WINDOW: (u32, u32) = (128, 32);
/// Output of a [`representations`] scene: the six cascaded windows (the last
/// at 32 + 64 * 5 = 352) with a 32-pixel margin right and below.
pub const REPRESENTATION_OUTPUT: (u32, u32) = (352 + REPRESENTATION_WINDOW.0 + 32, 352 + REPRESENTATION_WINDOW.1 + 32);
/// The chroma `(Cb', Cr')` of each window of a [`representations`] scene
/// (normalized, -0.5..0.5), one per [`Representation::ALL`] entry: strong,
/// Cr'-heavy chroma of different hues, picked so that each window converted
/// with any other of the six representations is at least 12 levels (six
/// times the comparison tolerance) off somewhere.
pub const REPRESENTATION_CHROMA: [(f64, f64); 6] = [
    (0.25, 0.45),
    (0.3, 0.4),
    (-0.35, 0.45),
    (0.35, -0.45),
    (0.2, 0.45),
    (0.05, -0.5),
];

/// The normalized Y'CbCr `(Y', Cb', Cr')` at `(x, y)` of the `n`-th window of
/// a [`representations`] scene: luma ramps from black to white left to
/// right in the top half and back in the bottom half (every step of the
/// nominal range: where limited and full range differ, and colours from
/// dark and saturated to light); chroma is the window's
/// [`REPRESENTATION_CHROMA`] everywhere.
pub fn representation_sample(n: usize, x: u32, y: u32) -> [f64; 3] {
    let (w, h) = REPRESENTATION_WINDOW;
    let ramp = f64::from(x) / f64::from(w - 1);
    let luma = if y < h / 2 { ramp } else { 1.0 - ramp };
    let (cb, cr) = REPRESENTATION_CHROMA[n % REPRESENTATION_CHROMA.len()];
    [luma, cb, cr]
}

/// Six opaque [`REPRESENTATION_WINDOW`]-sized windows in `format`, planes in
/// `layout`, one per [`Representation::ALL`] in that order (BT.601 limited,
/// BT.601 full, BT.709 limited, BT.709 full, BT.2020 limited, BT.2020 full),
/// each asking for its representation with `wp_color_representation_v1`.
///
/// The content is described as normalized Y'CbCr
/// ([`representation_sample`]) and quantized with the window's own range
/// at the format's depth; the reference converts it with the window's
/// coefficients. Converted with any other representation, every window is
/// off by far more than the tolerance (the scene's unit test checks each
/// pair).
///
/// The chroma is constant over each window: with nearest-sample
/// reconstruction an odd pixel lies exactly halfway between two chroma
/// samples, a tie the GPU breaks by the rounding of the interpolated
/// coordinate, which varies with where the window lies on the output. The
/// Y'CbCr scenes at (32, 32) test which sample a pixel reads; these test
/// only the conversion.
fn representations(name: &'static str, format: Format, layout: PlaneLayout) -> Scene {
    let (w, h) = REPRESENTATION_WINDOW;
    let windows = Representation::ALL
        .into_iter()
        .enumerate()
        .map(|(n, rep)| {
            let px: PixelFn =
                Arc::new(move |x, y| format.pack_ycbcr(rep.quantize(representation_sample(n, x, y), format.bits())));
            let s = SurfaceSpec::new(w, h, format, px)
                .with_layout(layout)
                .with_representation(rep);
            WindowSpec::plain(rep.name(), s)
        })
        .collect();
    Scene {
        name,
        windows,
        output_size: REPRESENTATION_OUTPUT,
    }
}

/// A pixel function that is one premultiplied colour everywhere.
pub fn uniform(format: Format, rgba: [u8; 4]) -> PixelFn {
    let bytes = format.encode(rgba);
    Arc::new(move |_, _| bytes)
}

/// A pixel function from a premultiplied-RGBA function, encoded for `format`.
pub fn from_rgba(format: Format, f: impl Fn(u32, u32) -> [u8; 4] + Send + Sync + 'static) -> PixelFn {
    Arc::new(move |x, y| format.encode(f(x, y)))
}

/// Linear ramp 0..=255 over `0..n`.
fn ramp(i: u32, n: u32) -> u8 {
    (i * 255 / (n - 1).max(1)) as u8
}

fn solid() -> Scene {
    let f = Format::Xrgb8888;
    let s = SurfaceSpec::new(160, 120, f, uniform(f, [200, 40, 60, 255]));
    Scene {
        name: "solid",
        output_size: OUTPUT_SIZE,
        windows: vec![WindowSpec::plain("solid", s)],
    }
}

fn gradient() -> Scene {
    let f = Format::Argb8888;
    let (w, h) = (192, 128);
    let px = from_rgba(f, move |x, y| [ramp(x, w), ramp(y, h), 96, 255]);
    Scene {
        name: "gradient",
        output_size: OUTPUT_SIZE,
        windows: vec![WindowSpec::plain("gradient", SurfaceSpec::new(w, h, f, px))],
    }
}

fn alpha() -> Scene {
    let back = SurfaceSpec::new(
        160,
        120,
        Format::Xrgb8888,
        uniform(Format::Xrgb8888, [30, 90, 200, 255]),
    );
    let (w, h) = (160, 120);
    // Alpha ramps left to right; the top 8 rows are fully transparent.
    let front = from_rgba(Format::Argb8888, move |x, y| {
        if y < 8 {
            [0, 0, 0, 0]
        } else {
            premultiply([255, 64, 0], (32 + x * 191 / (w - 1)) as u8)
        }
    });
    Scene {
        name: "alpha",
        output_size: OUTPUT_SIZE,
        windows: vec![
            WindowSpec::plain("alpha-back", back),
            WindowSpec::plain("alpha-front", SurfaceSpec::new(w, h, Format::Argb8888, front)),
        ],
    }
}

fn overlap() -> Scene {
    // XBGR checkerboard with a zero padding byte: shows whether X is ignored.
    let checker = from_rgba(Format::Xbgr8888, |x, y| {
        if (x / 10 + y / 10) % 2 == 0 {
            [220, 220, 40, 0]
        } else {
            [40, 160, 60, 0]
        }
    });
    // ABGR translucent blue with an opaque band.
    let veil = from_rgba(Format::Abgr8888, |_, y| {
        if (40..60).contains(&y) {
            [250, 250, 250, 255]
        } else {
            premultiply([80, 120, 255], 160)
        }
    });
    // ARGB stripes: transparent, opaque, half.
    let stripes = from_rgba(Format::Argb8888, |x, _| match (x / 8) % 3 {
        0 => [0, 0, 0, 0],
        1 => [240, 240, 240, 255],
        _ => premultiply([255, 0, 128], 128),
    });
    let corner = uniform(Format::Xrgb8888, [255, 200, 0, 255]);
    Scene {
        name: "overlap",
        output_size: OUTPUT_SIZE,
        windows: vec![
            WindowSpec::plain("overlap-0", SurfaceSpec::new(140, 100, Format::Xbgr8888, checker)),
            WindowSpec::plain("overlap-1", SurfaceSpec::new(140, 100, Format::Abgr8888, veil)),
            WindowSpec::plain("overlap-2", SurfaceSpec::new(120, 70, Format::Argb8888, stripes)),
            // Partly below the bottom edge of the output: must be clipped.
            WindowSpec::plain("overlap-3", SurfaceSpec::new(64, 48, Format::Xrgb8888, corner)),
        ],
    }
}

fn subsurface() -> Scene {
    let parent = from_rgba(Format::Xrgb8888, |x, y| {
        [60, 60 + (y as u8 / 2), 160 + (x as u8 / 4), 255]
    });
    let child = from_rgba(Format::Argb8888, |x, y| {
        if x < 4 || y < 4 {
            [255, 255, 255, 255]
        } else {
            [200, 120, 20, 255]
        }
    });
    let badge = uniform(Format::Abgr8888, premultiply([0, 255, 128], 192));
    Scene {
        name: "subsurface",
        output_size: OUTPUT_SIZE,
        windows: vec![WindowSpec {
            title: "subsurface",
            surface: SurfaceSpec::new(120, 90, Format::Xrgb8888, parent),
            subsurfaces: vec![
                // Extends past the parent's right and bottom edges.
                SubsurfaceSpec {
                    offset: (80, 50),
                    surface: SurfaceSpec::new(80, 60, Format::Argb8888, child),
                },
                // Negative offset: sticks out above and left of the parent.
                SubsurfaceSpec {
                    offset: (-20, -20),
                    surface: SurfaceSpec::new(48, 48, Format::Abgr8888, badge),
                },
            ],
            replacement: None,
        }],
    }
}

fn replace() -> Scene {
    let f = Format::Xrgb8888;
    let (w, h) = (128, 96);
    let a = SurfaceSpec::new(w, h, f, uniform(f, [0, 200, 0, 255]));
    let b = from_rgba(f, move |x, y| match (x < w / 2, y < h / 2) {
        (true, true) => [230, 30, 30, 255],
        (false, true) => [30, 230, 30, 255],
        (true, false) => [30, 30, 230, 255],
        (false, false) => [230, 230, 230, 255],
    });
    Scene {
        name: "replace",
        output_size: OUTPUT_SIZE,
        windows: vec![WindowSpec {
            title: "replace",
            surface: a,
            subsurfaces: Vec::new(),
            replacement: Some(SurfaceSpec::new(w, h, f, b)),
        }],
    }
}

fn odd_stride() -> Scene {
    let f = Format::Xrgb8888;
    let (w, h) = (100, 80);
    let px = from_rgba(f, |x, y| match ((x + y) / 6) % 3 {
        0 => [250, 180, 0, 0x80],
        1 => [0, 120, 250, 0x80],
        _ => [20, 20, 20, 0x80],
    });
    let s = SurfaceSpec::new(w, h, f, px).with_stride(w * 4 + 16);
    Scene {
        name: "odd-stride",
        output_size: OUTPUT_SIZE,
        windows: vec![WindowSpec::plain("odd-stride", s)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_resolves_and_fits_limits() {
        let (ow, oh) = OUTPUT_SIZE;
        assert_eq!((ow, oh), (320, 240));
        for name in NAMES {
            let scene = by_name(name).unwrap_or_else(|| panic!("scene {name} missing"));
            assert_eq!(scene.name, name);
            assert!(!scene.windows.is_empty());
            for w in &scene.windows {
                let mut all = vec![&w.surface];
                all.extend(w.subsurfaces.iter().map(|s| &s.surface));
                all.extend(w.replacement.as_ref());
                for s in all {
                    assert!(s.width <= 256 && s.height <= 200, "{name}: too big");
                    // Every plane's rows fit the stride (the layouts
                    // other than OneFdUnaligned check theirs themselves).
                    let min = (0..s.format.plane_count())
                        .map(|p| s.format.plane_row_bytes(p, s.width))
                        .max();
                    assert!(Some(s.stride) >= min, "{name}: stride too small");
                    crate::buffer::BufferGeometry::new(s.format, (s.width, s.height), s.layout, s.stride)
                        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
                }
            }
        }
        assert!(by_name("nope").is_none());
        assert_eq!(all().len(), NAMES.len());
    }

    #[test]
    fn yuv_scenes_are_opaque_with_block_chroma_and_luma_detail() {
        let want = [
            ("nv12-planar", Format::Nv12, PlaneLayout::OneFdAligned),
            ("nv12-disjoint", Format::Nv12, PlaneLayout::FdPerPlane),
            ("nv16", Format::Nv16, PlaneLayout::OneFdAligned),
            ("yuv420", Format::Yuv420, PlaneLayout::FdPerPlane),
            ("p010", Format::P010, PlaneLayout::OneFdAligned),
        ];
        for (name, format, layout) in want {
            let scene = by_name(name).unwrap_or_else(|| panic!("scene {name} missing"));
            assert_eq!(scene.windows.len(), 1, "{name}");
            let s = &scene.windows[0].surface;
            assert_eq!(
                (s.width, s.height, s.format, s.layout),
                (256, 128, format, layout),
                "{name}"
            );
            assert_eq!(s.stride, format.plane_row_bytes(0, s.width), "{name}: tight stride");
            let samples = |x, y| format.unpack_ycbcr((s.pixels)(x, y));
            let mut lumas = std::collections::HashSet::new();
            let mut chromas = std::collections::HashSet::new();
            for y in 0..s.height {
                for x in 0..s.width {
                    assert_eq!(s.texel(x, y)[3], 255, "{name}: opaque");
                    let [luma, cb, cr] = samples(x, y);
                    let max = 1 << format.bits();
                    let k = max / 256;
                    assert!((16 * k..=235 * k).contains(&luma), "{name}: Y {luma} out of range");
                    assert!((16 * k..=240 * k).contains(&cb) && (16 * k..=240 * k).contains(&cr));
                    let corner = samples(x - x % YUV_CHROMA_BLOCK, y - y % YUV_CHROMA_BLOCK);
                    assert_eq!(
                        [cb, cr],
                        [corner[1], corner[2]],
                        "{name}: ({x},{y}) chroma not block-constant"
                    );
                    lumas.insert(luma);
                    chromas.insert((cb, cr));
                }
            }
            assert!(lumas.len() > 200, "{name}: {} luma values", lumas.len());
            assert!(chromas.len() >= 20, "{name}: {} chroma pairs", chromas.len());
            if format == Format::P010 {
                assert!(lumas.iter().any(|v| v % 4 != 0), "p010 uses all 10 bits");
            }
        }
        // The original NV12 scene keeps its unaligned single-fd layout and odd stride.
        let nv12 = by_name("nv12").expect("nv12");
        let s = &nv12.windows[0].surface;
        assert_eq!((s.layout, s.stride), (PlaneLayout::OneFdUnaligned, s.width + 8));
    }

    #[test]
    fn representation_scenes_tell_every_representation_apart() {
        let want = [
            ("nv12-representations", Format::Nv12, PlaneLayout::OneFdAligned),
            ("nv16-representations", Format::Nv16, PlaneLayout::OneFdAligned),
            ("yuv420-representations", Format::Yuv420, PlaneLayout::FdPerPlane),
            ("p010-representations", Format::P010, PlaneLayout::OneFdAligned),
        ];
        let (ow, oh) = REPRESENTATION_OUTPUT;
        for (name, format, layout) in want {
            let scene = by_name(name).unwrap_or_else(|| panic!("scene {name} missing"));
            assert_eq!(scene.output_size, REPRESENTATION_OUTPUT, "{name}");
            let reps: Vec<_> = scene.windows.iter().map(|w| w.surface.representation).collect();
            assert_eq!(
                reps,
                Representation::ALL.map(Some),
                "{name}: one window per representation"
            );
            let mut rects = Vec::new();
            for (n, w) in scene.windows.iter().enumerate() {
                let s = &w.surface;
                assert!(w.subsurfaces.is_empty() && w.replacement.is_none(), "{name}");
                assert_eq!((s.width, s.height), REPRESENTATION_WINDOW, "{name}");
                assert_eq!((s.format, s.layout), (format, layout), "{name}");
                // Planes where lavapipe puts them: 64-byte rows; in one fd,
                // each plane followed by another ends on a page.
                let g = crate::buffer::BufferGeometry::new(format, (s.width, s.height), layout, s.stride)
                    .expect("geometry");
                for (i, p) in g.planes.iter().enumerate() {
                    assert_eq!(p.stride % 64, 0, "{name}: plane {i} stride {}", p.stride);
                    assert_eq!(p.row_bytes, p.stride, "{name}: tight rows");
                    if layout == PlaneLayout::OneFdAligned && i + 1 < g.planes.len() {
                        assert_eq!(g.planes[i + 1].offset, p.offset + p.stride * p.rows, "{name}: gap");
                    }
                }
                // On the output, apart from every other window.
                let (x, y) = toplevel_position(n);
                let rect = (x as u32, y as u32, x as u32 + s.width, y as u32 + s.height);
                assert!(rect.2 <= ow && rect.3 <= oh, "{name}: window {n} leaves the output");
                for &(x0, y0, x1, y1) in &rects {
                    assert!(
                        rect.0 >= x1 || rect.2 <= x0 || rect.1 >= y1 || rect.3 <= y0,
                        "{name}: overlap"
                    );
                }
                rects.push(rect);
            }
            for (n, w) in scene.windows.iter().enumerate() {
                let s = &w.surface;
                let rep = s.effective_representation();
                let samples = |x, y| format.unpack_ycbcr((s.pixels)(x, y));
                // Chroma constant over the window: no chroma sample tie matters.
                let chroma = |x, y| {
                    let [_, cb, cr] = samples(x, y);
                    [cb, cr]
                };
                let [black, white] = [0.0, 1.0].map(|l| rep.quantize([l, 0.0, 0.0], format.bits())[0]);
                let mut lumas = std::collections::BTreeSet::new();
                let mut far = [0u8; 6];
                for y in 0..s.height {
                    for x in 0..s.width {
                        assert_eq!(chroma(x, y), chroma(0, 0), "{name} window {n}: chroma not constant");
                        lumas.insert(samples(x, y)[0]);
                        let texel = s.texel(x, y);
                        assert_eq!(texel[3], 255, "{name}: opaque");
                        // Converted with any other representation: far off somewhere.
                        for (i, other) in Representation::ALL.into_iter().enumerate() {
                            let as_other = SurfaceSpec {
                                representation: Some(other),
                                ..s.clone()
                            };
                            let t = as_other.texel(x, y);
                            let d = (0..3).map(|c| t[c].abs_diff(texel[c])).max().unwrap_or(0);
                            far[i] = far[i].max(d);
                        }
                    }
                }
                // The luma ramp spans the window's nominal range, both ends included.
                assert_eq!(lumas.first(), Some(&black), "{name} window {n}");
                assert_eq!(lumas.last(), Some(&white), "{name} window {n}");
                assert!(lumas.len() >= 100, "{name} window {n}: {} luma values", lumas.len());
                for (i, other) in Representation::ALL.into_iter().enumerate() {
                    if other == rep {
                        assert_eq!(far[i], 0);
                    } else {
                        assert!(
                            far[i] >= 6 * crate::image_compare::DEFAULT_TOLERANCE,
                            "{name} window {n} ({}) read as {}: at most {} off",
                            rep.name(),
                            other.name(),
                            far[i]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn subsampled_chroma_is_reconstructed_between_cosited_samples() {
        // Chroma that changes inside a 2x2 block: the model reads what the
        // buffer stores (each block's top-left pixel's) for the samples the
        // pixel lies between, their mean, and each pixel's own luma. Cb and
        // Cr are linear in x and y here, so the mean is the value the
        // formula gives at the pixel itself.
        let f = Format::Nv12;
        let px: PixelFn = Arc::new(move |x, y| f.pack_ycbcr([100 + x as u16, 60 + (x + y) as u16, 200 - y as u16]));
        let s = SurfaceSpec::new(6, 6, f, px);
        let want = |luma: u16, (cx, cy): (u16, u16)| f.decode(f.pack_ycbcr([luma, 60 + cx + cy, 200 - cy]));
        // Even pixels: their own block's sample; odd ones: the mean of the
        // samples on either side.
        assert_eq!(s.texel(0, 0), want(100, (0, 0)));
        assert_eq!(s.texel(2, 2), want(102, (2, 2)));
        assert_eq!(s.texel(1, 0), want(101, (1, 0)));
        assert_eq!(s.texel(1, 3), want(101, (1, 3)));
        // The last column and row have no next sample.
        assert_eq!(s.texel(5, 5), want(105, (4, 4)));
        // NV16: subsampled horizontally only, every row its own chroma.
        let nv16 = SurfaceSpec {
            format: Format::Nv16,
            ..s.clone()
        };
        assert_eq!(nv16.texel(3, 3), want(103, (3, 3)));
        let rgb = SurfaceSpec::new(4, 4, Format::Xrgb8888, uniform(Format::Xrgb8888, [1, 2, 3, 255]));
        assert_eq!(rgb.texel(3, 3), [1, 2, 3, 255]);
    }

    #[test]
    fn premultiplied_alpha_is_respected() {
        for scene in all() {
            for w in &scene.windows {
                let s = w.final_surface();
                for y in 0..s.height {
                    for x in 0..s.width {
                        let [r, g, b, a] = s.texel(x, y);
                        assert!(
                            r <= a && g <= a && b <= a,
                            "{}: ({x},{y}) not premultiplied",
                            scene.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn required_properties() {
        let odd = by_name("odd-stride").expect("odd-stride");
        let st = odd.windows[0].surface.stride;
        assert_eq!(st, odd.windows[0].surface.width * 4 + 16);
        assert_ne!(st % 64, 0);
        let overlap = by_name("overlap").expect("overlap");
        assert!(overlap.windows.len() >= 3);
        let formats: Vec<_> = overlap.windows.iter().map(|w| w.surface.format).collect();
        assert!(formats.contains(&Format::Abgr8888) && formats.contains(&Format::Xbgr8888));
        assert!(by_name("replace").expect("replace").windows[0].replacement.is_some());
        let sub = by_name("subsurface").expect("subsurface");
        let w = &sub.windows[0];
        let outside = w.subsurfaces.iter().any(|s| {
            s.offset.0 < 0
                || s.offset.1 < 0
                || s.offset.0 + s.surface.width as i32 > w.surface.width as i32
                || s.offset.1 + s.surface.height as i32 > w.surface.height as i32
        });
        assert!(outside);
        assert_eq!(toplevel_position(0), (32, 32));
        assert_eq!(toplevel_position(2), (160, 160));
    }
}
