//! Pixel-format conventions shared by the test clients and the CPU reference model.
//!
//! DRM fourccs are little-endian packed words, so the byte order in memory is the
//! reverse of the name: `ARGB8888` is stored as `[B, G, R, A]`. Client colour is
//! premultiplied by alpha (Wayland convention) and `X` formats are sampled with
//! alpha = 1 no matter what the padding byte holds. Keeping these rules in one
//! place means the client that writes pixels and the model that predicts the
//! screenshot cannot silently disagree.

use drm_fourcc::DrmFourcc;

/// The 32-bit RGB formats the tests exercise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Argb8888,
    Xrgb8888,
    Abgr8888,
    Xbgr8888,
    /// Two planes (Y, then interleaved CbCr at 2x2 subsampling), BT.601
    /// limited range. A pixel function returns `[Y, Cb, Cr, 0]` per pixel; the
    /// buffer takes Cb/Cr from the top-left pixel of each 2x2 block (see
    /// `DmabufBuffer::new`). Not in [`Format::ALL`] (the 32 bpp formats).
    Nv12,
}

/// BT.601 limited range Y'CbCr -> R'G'B' (8 bit, rounded, clamped): the
/// reference for the compositor's NV12 conversion.
pub fn bt601_limited_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let (y, cb, cr) = (f64::from(y) - 16.0, f64::from(cb) - 128.0, f64::from(cr) - 128.0);
    let l = 1.164383 * y;
    [l + 1.596027 * cr, l - 0.391762 * cb - 0.812968 * cr, l + 2.017232 * cb].map(|v| v.round().clamp(0.0, 255.0) as u8)
}

/// R'G'B' -> BT.601 limited range Y'CbCr (8 bit, rounded), for scenes that
/// describe NV12 content as colours.
pub fn rgb_to_bt601_limited(rgb: [u8; 3]) -> [u8; 3] {
    let [r, g, b] = rgb.map(f64::from);
    let y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
    let cb = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
    let cr = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
    [y, cb, cr].map(|v| v.round().clamp(0.0, 255.0) as u8)
}

impl Format {
    /// All formats, for table-driven tests.
    pub const ALL: [Format; 4] = [Format::Argb8888, Format::Xrgb8888, Format::Abgr8888, Format::Xbgr8888];

    /// The DRM fourcc code sent over linux-dmabuf.
    pub fn fourcc(self) -> u32 {
        self.drm() as u32
    }

    /// The `drm-fourcc` enum value.
    pub fn drm(self) -> DrmFourcc {
        match self {
            Format::Argb8888 => DrmFourcc::Argb8888,
            Format::Xrgb8888 => DrmFourcc::Xrgb8888,
            Format::Abgr8888 => DrmFourcc::Abgr8888,
            Format::Xbgr8888 => DrmFourcc::Xbgr8888,
            Format::Nv12 => DrmFourcc::Nv12,
        }
    }

    /// Whether the fourth byte carries alpha (true) or is ignored padding (false).
    pub fn has_alpha(self) -> bool {
        matches!(self, Format::Argb8888 | Format::Abgr8888)
    }

    /// Bytes per pixel (all supported formats are 32 bpp).
    pub const fn bpp(self) -> usize {
        4
    }

    /// Encodes a premultiplied `[r, g, b, a]` colour into memory byte order.
    ///
    /// For `X` formats `a` is written into the padding byte unchanged; scenes use
    /// that to put junk there and prove the compositor ignores it.
    pub fn encode(self, rgba: [u8; 4]) -> [u8; 4] {
        let [r, g, b, a] = rgba;
        match self {
            Format::Argb8888 | Format::Xrgb8888 => [b, g, r, a],
            Format::Abgr8888 | Format::Xbgr8888 => [r, g, b, a],
            Format::Nv12 => {
                let [y, cb, cr] = rgb_to_bt601_limited([r, g, b]);
                [y, cb, cr, 0]
            }
        }
    }

    /// Decodes memory-order bytes into the premultiplied `[r, g, b, a]` colour
    /// the compositor must sample (alpha forced to 255 for `X` formats).
    pub fn decode(self, bytes: [u8; 4]) -> [u8; 4] {
        let [r, g, b, a] = match self {
            Format::Argb8888 | Format::Xrgb8888 => [bytes[2], bytes[1], bytes[0], bytes[3]],
            Format::Abgr8888 | Format::Xbgr8888 => [bytes[0], bytes[1], bytes[2], bytes[3]],
            Format::Nv12 => {
                let [r, g, b] = bt601_limited_to_rgb(bytes[0], bytes[1], bytes[2]);
                [r, g, b, 255]
            }
        };
        if self.has_alpha() {
            [r, g, b, a]
        } else {
            [r, g, b, 255]
        }
    }

    /// Parses a short lower-case name (`argb8888`, ...), for command lines.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// Short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Argb8888 => "argb8888",
            Format::Xrgb8888 => "xrgb8888",
            Format::Abgr8888 => "abgr8888",
            Format::Xbgr8888 => "xbgr8888",
            Format::Nv12 => "nv12",
        }
    }
}

/// Premultiplied "over": `out = src + dst * (1 - src_a)`, computed in real
/// numbers and rounded once, which is what an 8-bit UNORM framebuffer with
/// `ONE, ONE_MINUS_SRC_ALPHA` blending produces (up to GPU rounding, which the
/// image comparison tolerance absorbs).
pub fn blend_over(src: [u8; 4], dst: [u8; 4]) -> [u8; 4] {
    let inv = 1.0 - f32::from(src[3]) / 255.0;
    let mut out = [0u8; 4];
    for c in 0..4 {
        let v = f32::from(src[c]) + f32::from(dst[c]) * inv;
        out[c] = v.round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// Premultiplies a straight-alpha colour; scenes describe translucent colours
/// in straight alpha for readability and convert here.
pub fn premultiply(rgb: [u8; 3], a: u8) -> [u8; 4] {
    let p = |c: u8| ((u16::from(c) * u16::from(a) + 127) / 255) as u8;
    [p(rgb[0]), p(rgb[1]), p(rgb[2]), a]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bt601_limited_range_endpoints_and_round_trip() {
        assert_eq!(bt601_limited_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(bt601_limited_to_rgb(235, 128, 128), [255, 255, 255]);
        assert_eq!(rgb_to_bt601_limited([255, 255, 255]), [235, 128, 128]);
        for rgb in [[200, 40, 60], [10, 250, 30], [90, 90, 200]] {
            let [y, cb, cr] = rgb_to_bt601_limited(rgb);
            let back = bt601_limited_to_rgb(y, cb, cr);
            for c in 0..3 {
                assert!(back[c].abs_diff(rgb[c]) <= 2, "{rgb:?} -> {back:?}");
            }
        }
        assert_eq!(Format::Nv12.decode(Format::Nv12.encode([0, 0, 0, 255])), [0, 0, 0, 255]);
    }

    #[test]
    fn memory_order_matches_drm_little_endian() {
        let c = [1, 2, 3, 4];
        assert_eq!(Format::Argb8888.encode(c), [3, 2, 1, 4]);
        assert_eq!(Format::Xrgb8888.encode(c), [3, 2, 1, 4]);
        assert_eq!(Format::Abgr8888.encode(c), [1, 2, 3, 4]);
        assert_eq!(Format::Xbgr8888.encode(c), [1, 2, 3, 4]);
        // The packed little-endian u32 of ARGB8888 must read 0xAARRGGBB.
        let word = u32::from_le_bytes(Format::Argb8888.encode([0x11, 0x22, 0x33, 0x44]));
        assert_eq!(word, 0x4411_2233);
    }

    #[test]
    fn decode_inverts_encode_and_forces_x_alpha() {
        for f in Format::ALL {
            let d = f.decode(f.encode([10, 20, 30, 40]));
            let want_a = if f.has_alpha() { 40 } else { 255 };
            assert_eq!(d, [10, 20, 30, want_a], "{f:?}");
        }
    }

    #[test]
    fn fourcc_codes() {
        assert_eq!(Format::Argb8888.fourcc(), u32::from_le_bytes(*b"AR24"));
        assert_eq!(Format::Xrgb8888.fourcc(), u32::from_le_bytes(*b"XR24"));
        assert_eq!(Format::Abgr8888.fourcc(), u32::from_le_bytes(*b"AB24"));
        assert_eq!(Format::Xbgr8888.fourcc(), u32::from_le_bytes(*b"XB24"));
        assert_eq!(Format::from_name("XBGR8888"), Some(Format::Xbgr8888));
    }

    #[test]
    fn blend_rules() {
        let bg = [32, 32, 32, 255];
        assert_eq!(blend_over([200, 10, 0, 255], bg), [200, 10, 0, 255]);
        assert_eq!(blend_over([0, 0, 0, 0], bg), bg);
        // Half-transparent premultiplied red over grey.
        assert_eq!(blend_over([128, 0, 0, 128], bg), [144, 16, 16, 255]);
        assert_eq!(premultiply([255, 255, 0], 128), [128, 128, 0, 128]);
    }
}
