//! Scene descriptions shared by `scene-client` (which shows them) and
//! `make-references` (which predicts the screenshot on the CPU).
//!
//! Both sides read the same [`Scene`] value, so a scene can only be changed in
//! one place. Pixel functions return bytes in *memory order* for the surface's
//! format; see [`crate::pixel`] for the conventions.

use std::sync::Arc;

use crate::pixel::{premultiply, Format};

/// Output size used by the render tests.
pub const OUTPUT_SIZE: (u32, u32) = (320, 240);
/// Opaque background the compositor clears the output to.
pub const BACKGROUND: [u8; 4] = [32, 32, 32, 255];
/// Bytes written into row padding (beyond `width * 4`) so a compositor that
/// reads the wrong stride shows bright magenta garbage (memory order).
pub const PADDING_BYTES: [u8; 4] = [0xff, 0x00, 0xff, 0xff];

/// Where the compositor places the `n`-th mapped toplevel (0-based, per run).
pub fn toplevel_position(n: usize) -> (i32, i32) {
    let step = 64 * n as i32;
    (32 + step, 32 + step)
}

/// A pixel function: `(x, y)` to the 4 bytes stored in memory for that texel.
pub type PixelFn = Arc<dyn Fn(u32, u32) -> [u8; 4] + Send + Sync>;

/// One buffer's contents.
#[derive(Clone)]
pub struct SurfaceSpec {
    pub width: u32,
    pub height: u32,
    pub format: Format,
    /// Row pitch in bytes (>= `width * 4`).
    pub stride: u32,
    pub pixels: PixelFn,
}

impl SurfaceSpec {
    /// A surface with the tight stride `width * 4`.
    pub fn new(width: u32, height: u32, format: Format, pixels: PixelFn) -> SurfaceSpec {
        SurfaceSpec {
            width,
            height,
            format,
            stride: width * 4,
            pixels,
        }
    }

    /// Same surface with an explicit stride.
    pub fn with_stride(mut self, stride: u32) -> SurfaceSpec {
        self.stride = stride;
        self
    }

    /// The premultiplied RGBA colour the compositor must sample at `(x, y)`.
    pub fn texel(&self, x: u32, y: u32) -> [u8; 4] {
        self.format.decode((self.pixels)(x, y))
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
}

/// Names of all scenes, in a stable order.
pub const NAMES: [&str; 8] = [
    "solid",
    "gradient",
    "alpha",
    "overlap",
    "subsurface",
    "replace",
    "odd-stride",
    "nv12",
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
/// x and Cr with y, constant over each 2x2 block (as NV12 stores them), so
/// the reference can decode each pixel on its own.
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
    let s = SurfaceSpec::new(w, h, Format::Nv12, px).with_stride(w + 8);
    Scene {
        name: "nv12",
        windows: vec![WindowSpec::plain("nv12", s)],
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
        windows: vec![WindowSpec::plain("solid", s)],
    }
}

fn gradient() -> Scene {
    let f = Format::Argb8888;
    let (w, h) = (192, 128);
    let px = from_rgba(f, move |x, y| [ramp(x, w), ramp(y, h), 96, 255]);
    Scene {
        name: "gradient",
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
                    assert!(s.width <= 200 && s.height <= 200, "{name}: too big");
                    // NV12: one byte per pixel in the Y plane, 2 per 2x2 block in CbCr.
                    let min = if s.format == Format::Nv12 {
                        s.width.div_ceil(2) * 2
                    } else {
                        s.width * 4
                    };
                    assert!(s.stride >= min, "{name}: stride too small");
                }
            }
        }
        assert!(by_name("nope").is_none());
        assert_eq!(all().len(), NAMES.len());
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
