//! Pixel-format conventions shared by the test clients and the CPU reference model.
//!
//! DRM fourccs are little-endian packed words, so the byte order in memory is the
//! reverse of the name: `ARGB8888` is stored as `[B, G, R, A]`. Client colour is
//! premultiplied by alpha (Wayland convention) and `X` formats are sampled with
//! alpha = 1 no matter what the padding byte holds. Keeping these rules in one
//! place means the client that writes pixels and the model that predicts the
//! screenshot cannot silently disagree.

use drm_fourcc::DrmFourcc;

/// The formats the tests exercise: 32-bit RGB, and Y'CbCr in several plane
/// layouts.
///
/// Y'CbCr formats are converted with one model for all of them
/// ([`ycbcr_to_rgb_bits`]), BT.601 limited range unless the surface asks for
/// another [`Representation`]. Their pixel functions return the pixel's
/// samples packed by [`Format::pack_ycbcr`] rather than memory-order bytes
/// (the samples live in separate planes). The buffer takes each chroma pair
/// from the top-left pixel of its subsampled block, where the sample is
/// sited (cosited with the even pixels); the reference model reconstructs
/// each pixel's chroma from the samples [`chroma_samples`] names, as their
/// mean (see `scenes::SurfaceSpec::texel`).
/// None of them is in [`Format::ALL`] (the 32 bpp formats); see [`Format::YUV`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Argb8888,
    Xrgb8888,
    Abgr8888,
    Xbgr8888,
    /// `NV12`: a Y plane, then interleaved CbCr subsampled 2x2; 8 bit.
    Nv12,
    /// `NV16`: a Y plane, then interleaved CbCr subsampled 2x1 (horizontally
    /// only); 8 bit.
    Nv16,
    /// `YUV420` (`YU12`): three planes Y, Cb, Cr; chroma subsampled 2x2; 8 bit.
    Yuv420,
    /// `P010`: like NV12 with 16-bit little-endian samples that hold the
    /// 10-bit value in their high 10 bits (`value << 6`).
    P010,
}

/// The chroma samples, along one axis, the pixel at `x` is reconstructed
/// from when chroma is subsampled by `factor` over `len` pixels, the
/// samples being cosited with the pixels at multiples of `factor`: for 2,
/// an even pixel's own sample twice, an odd pixel's two neighbours (the last
/// sample repeats past the edge). The pixel gets their mean: the
/// compositor's convention on every path (`VK_CHROMA_LOCATION_COSITED_EVEN`
/// with the LINEAR chroma filter in the Y'CbCr sampler, and the CPU path's
/// NV12 shader). `factor` 1: the pixel's own sample.
pub fn chroma_samples(x: u32, factor: u32, len: u32) -> [u32; 2] {
    let last = len.saturating_sub(1) / factor;
    [(x / factor).min(last), x.div_ceil(factor).min(last)]
}

/// Matrix coefficients of a Y'CbCr encoding (`wp_color_representation_v1`'s
/// `coefficients`, the Y'CbCr ones the compositor advertises): they fix `Kr`
/// and `Kb`, from which the conversion follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Coefficients {
    /// Rec. ITU-R BT.601: `Kr` 0.299, `Kb` 0.114. The compositor's default.
    #[default]
    Bt601,
    /// Rec. ITU-R BT.709: `Kr` 0.2126, `Kb` 0.0722.
    Bt709,
    /// Rec. ITU-R BT.2020 (non-constant luminance): `Kr` 0.2627, `Kb` 0.0593.
    Bt2020,
}

impl Coefficients {
    pub const ALL: [Coefficients; 3] = [Coefficients::Bt601, Coefficients::Bt709, Coefficients::Bt2020];

    /// `(Kr, Kb)`.
    pub fn kr_kb(self) -> (f64, f64) {
        match self {
            Coefficients::Bt601 => (0.299, 0.114),
            Coefficients::Bt709 => (0.2126, 0.0722),
            Coefficients::Bt2020 => (0.2627, 0.0593),
        }
    }

    /// Short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Coefficients::Bt601 => "bt601",
            Coefficients::Bt709 => "bt709",
            Coefficients::Bt2020 => "bt2020",
        }
    }
}

/// Quantization range of a Y'CbCr encoding at `n` bits per sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Range {
    /// Y' 16..235 and Cb/Cr 16..240 (centre 128) at 8 bits, times
    /// `2^(n - 8)` at `n` bits (10 bit: Y' 64..940, C 64..960). The default.
    #[default]
    Limited,
    /// Y' 0..`2^n - 1`; Cb/Cr centred on `2^(n - 1)` with the same scale as Y'.
    Full,
}

impl Range {
    pub const ALL: [Range; 2] = [Range::Limited, Range::Full];

    /// Short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Range::Limited => "limited",
            Range::Full => "full",
        }
    }
}

/// How a Y'CbCr buffer's samples become R'G'B': matrix coefficients and
/// quantization range. A surface asks for one with
/// `wp_color_representation_surface_v1.set_coefficients_and_range`
/// (`scenes::SurfaceSpec::with_representation`); without it the compositor
/// converts with [`Representation::BT601_LIMITED`] ([`Representation::default`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Representation {
    pub coefficients: Coefficients,
    pub range: Range,
}

impl Representation {
    /// The compositor's default, and the convention of every Y'CbCr scene
    /// that asks for nothing.
    pub const BT601_LIMITED: Representation = Representation::new(Coefficients::Bt601, Range::Limited);

    /// Every combination, coefficients-major: BT.601 limited, BT.601 full,
    /// BT.709 limited, ...
    pub const ALL: [Representation; 6] = [
        Representation::new(Coefficients::Bt601, Range::Limited),
        Representation::new(Coefficients::Bt601, Range::Full),
        Representation::new(Coefficients::Bt709, Range::Limited),
        Representation::new(Coefficients::Bt709, Range::Full),
        Representation::new(Coefficients::Bt2020, Range::Limited),
        Representation::new(Coefficients::Bt2020, Range::Full),
    ];

    pub const fn new(coefficients: Coefficients, range: Range) -> Representation {
        Representation { coefficients, range }
    }

    /// `bt709-full` and the like.
    pub fn name(self) -> &'static str {
        match (self.coefficients, self.range) {
            (Coefficients::Bt601, Range::Limited) => "bt601-limited",
            (Coefficients::Bt601, Range::Full) => "bt601-full",
            (Coefficients::Bt709, Range::Limited) => "bt709-limited",
            (Coefficients::Bt709, Range::Full) => "bt709-full",
            (Coefficients::Bt2020, Range::Limited) => "bt2020-limited",
            (Coefficients::Bt2020, Range::Full) => "bt2020-full",
        }
    }

    /// Y'CbCr at `bits` bits per sample -> R'G'B' (8 bit): [`ycbcr_to_rgb_bits`].
    pub fn to_rgb(self, ycbcr: [u16; 3], bits: u32) -> [u8; 3] {
        ycbcr_to_rgb_bits(ycbcr, bits, self)
    }

    /// R'G'B' (8 bit) -> Y'CbCr at `bits` bits per sample: [`rgb_to_ycbcr_bits`].
    pub fn from_rgb(self, rgb: [u8; 3], bits: u32) -> [u16; 3] {
        rgb_to_ycbcr_bits(rgb, bits, self)
    }

    /// Normalizes samples at `bits` bits: `(Y' in 0..1, Cb' and Cr' in -0.5..0.5)`
    /// on the nominal scale (values outside it stay outside).
    pub fn normalize(self, ycbcr: [u16; 3], bits: u32) -> [f64; 3] {
        self.normalize_f(ycbcr.map(f64::from), bits)
    }

    /// [`Representation::normalize`] of samples that may have a fraction
    /// (the mean of several).
    pub fn normalize_f(self, [y, cb, cr]: [f64; 3], bits: u32) -> [f64; 3] {
        match self.range {
            Range::Limited => {
                // Scaled to 8-bit units exactly (a power of two), so a
                // 10-bit triple that is an 8-bit one times 4 converts alike.
                let k = f64::from(1u32 << (bits - 8));
                let [y, cb, cr] = [y, cb, cr].map(|v| v / k);
                [(y - 16.0) / 219.0, (cb - 128.0) / 224.0, (cr - 128.0) / 224.0]
            }
            Range::Full => {
                let max = f64::from((1u32 << bits) - 1);
                let mid = f64::from(1u32 << (bits - 1));
                [y / max, (cb - mid) / max, (cr - mid) / max]
            }
        }
    }

    /// Inverse of [`Representation::normalize`], rounded once and clamped
    /// to the `bits`-bit code range: for content described as Y'CbCr.
    pub fn quantize(self, [y, cb, cr]: [f64; 3], bits: u32) -> [u16; 3] {
        let max = f64::from((1u32 << bits) - 1);
        let samples = match self.range {
            Range::Limited => {
                let k = f64::from(1u32 << (bits - 8));
                [
                    (16.0 + 219.0 * y) * k,
                    (128.0 + 224.0 * cb) * k,
                    (128.0 + 224.0 * cr) * k,
                ]
            }
            Range::Full => {
                let mid = f64::from(1u32 << (bits - 1));
                [y * max, mid + cb * max, mid + cr * max]
            }
        };
        samples.map(|v| v.round().clamp(0.0, max) as u16)
    }
}

/// Y'CbCr at `bits` bits per sample -> R'G'B' (8 bit, rounded, clamped) for
/// `representation`: the reference for the compositor's conversion of every
/// Y'CbCr format.
///
/// The samples are normalized by the range (limited: `Y' = (Y - 16·2^(n-8)) /
/// (219·2^(n-8))`, `C' = (C - 128·2^(n-8)) / (224·2^(n-8))`; full: `Y' = Y /
/// (2^n - 1)`, `C' = (C - 2^(n-1)) / (2^n - 1)`), then `R = Y' + 2(1 - Kr)·Cr'`,
/// `B = Y' + 2(1 - Kb)·Cb'`, `G = (Y' - Kr·R - Kb·B) / (1 - Kr - Kb)`, each
/// clamped to 0..1, times 255 and rounded.
pub fn ycbcr_to_rgb_bits(ycbcr: [u16; 3], bits: u32, representation: Representation) -> [u8; 3] {
    ycbcr_to_rgb_f(ycbcr.map(f64::from), bits, representation)
}

/// [`ycbcr_to_rgb_bits`] of samples that may have a fraction (a pixel's
/// reconstructed chroma: the mean of the samples around it).
pub fn ycbcr_to_rgb_f(ycbcr: [f64; 3], bits: u32, representation: Representation) -> [u8; 3] {
    let (kr, kb) = representation.coefficients.kr_kb();
    let [y, cb, cr] = representation.normalize_f(ycbcr, bits);
    let r = y + 2.0 * (1.0 - kr) * cr;
    let b = y + 2.0 * (1.0 - kb) * cb;
    let g = (y - kr * r - kb * b) / (1.0 - kr - kb);
    [r, g, b].map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
}

/// R'G'B' (8 bit) -> Y'CbCr at `bits` bits per sample for `representation`
/// (the inverse of [`ycbcr_to_rgb_bits`] before rounding; rounded once, at
/// that precision, and clamped to the code range), for scenes that describe
/// Y'CbCr content as colours: `Y' = Kr·R + (1 - Kr - Kb)·G + Kb·B`,
/// `Cb' = (B - Y') / 2(1 - Kb)`, `Cr' = (R - Y') / 2(1 - Kr)`, quantized by
/// the range.
pub fn rgb_to_ycbcr_bits(rgb: [u8; 3], bits: u32, representation: Representation) -> [u16; 3] {
    let (kr, kb) = representation.coefficients.kr_kb();
    let [r, g, b] = rgb.map(|v| f64::from(v) / 255.0);
    let y = kr * r + (1.0 - kr - kb) * g + kb * b;
    let cb = (b - y) / (2.0 * (1.0 - kb));
    let cr = (r - y) / (2.0 * (1.0 - kr));
    representation.quantize([y, cb, cr], bits)
}

/// BT.601 limited range Y'CbCr at `bits` bits per sample -> R'G'B' (8 bit,
/// rounded, clamped): [`ycbcr_to_rgb_bits`] with [`Representation::BT601_LIMITED`],
/// the compositor's default for every Y'CbCr format.
pub fn bt601_limited_to_rgb_bits(ycbcr: [u16; 3], bits: u32) -> [u8; 3] {
    ycbcr_to_rgb_bits(ycbcr, bits, Representation::BT601_LIMITED)
}

/// BT.601 limited range Y'CbCr -> R'G'B' (8 bit, rounded, clamped): the
/// 8-bit case of [`bt601_limited_to_rgb_bits`].
pub fn bt601_limited_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    bt601_limited_to_rgb_bits([y, cb, cr].map(u16::from), 8)
}

/// R'G'B' (8 bit) -> BT.601 limited range Y'CbCr at `bits` bits per sample
/// (rounded once, at that precision): [`rgb_to_ycbcr_bits`] with
/// [`Representation::BT601_LIMITED`].
pub fn rgb_to_bt601_limited_bits(rgb: [u8; 3], bits: u32) -> [u16; 3] {
    rgb_to_ycbcr_bits(rgb, bits, Representation::BT601_LIMITED)
}

/// R'G'B' -> BT.601 limited range Y'CbCr (8 bit, rounded): the 8-bit case of
/// [`rgb_to_bt601_limited_bits`].
pub fn rgb_to_bt601_limited(rgb: [u8; 3]) -> [u8; 3] {
    rgb_to_bt601_limited_bits(rgb, 8).map(|v| v as u8)
}

impl Format {
    /// All 32 bpp RGB formats, for table-driven tests.
    pub const ALL: [Format; 4] = [Format::Argb8888, Format::Xrgb8888, Format::Abgr8888, Format::Xbgr8888];

    /// All Y'CbCr formats.
    pub const YUV: [Format; 4] = [Format::Nv12, Format::Nv16, Format::Yuv420, Format::P010];

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
            Format::Nv16 => DrmFourcc::Nv16,
            Format::Yuv420 => DrmFourcc::Yuv420,
            Format::P010 => DrmFourcc::P010,
        }
    }

    /// Whether the fourth byte carries alpha (true) or is ignored padding (false).
    pub fn has_alpha(self) -> bool {
        matches!(self, Format::Argb8888 | Format::Abgr8888)
    }

    /// Bytes per pixel of the 32 bpp RGB formats (not meaningful for the
    /// Y'CbCr formats: see [`Format::plane_row_bytes`]).
    pub const fn bpp(self) -> usize {
        4
    }

    /// Whether this is a Y'CbCr format.
    pub fn is_yuv(self) -> bool {
        matches!(self, Format::Nv12 | Format::Nv16 | Format::Yuv420 | Format::P010)
    }

    /// Bits per sample (8, or 10 for P010); RGB formats: 8 per channel.
    pub fn bits(self) -> u32 {
        match self {
            Format::P010 => 10,
            _ => 8,
        }
    }

    /// `(horizontal, vertical)` chroma subsampling factors: one chroma pair
    /// per block of that many pixels. `(1, 1)` for RGB.
    pub fn chroma_subsampling(self) -> (u32, u32) {
        match self {
            Format::Nv12 | Format::Yuv420 | Format::P010 => (2, 2),
            Format::Nv16 => (2, 1),
            Format::Argb8888 | Format::Xrgb8888 | Format::Abgr8888 | Format::Xbgr8888 => (1, 1),
        }
    }

    /// Number of planes (memory planes with LINEAR): 1 for RGB, 2 for the
    /// semi-planar NV12, NV16 and P010, 3 for YUV420.
    pub fn plane_count(self) -> usize {
        match self {
            Format::Argb8888 | Format::Xrgb8888 | Format::Abgr8888 | Format::Xbgr8888 => 1,
            Format::Nv12 | Format::Nv16 | Format::P010 => 2,
            Format::Yuv420 => 3,
        }
    }

    /// Bytes in one sample of a Y'CbCr plane (2 for P010); RGB: bytes per pixel.
    pub fn sample_bytes(self) -> u32 {
        match self {
            Format::P010 => 2,
            f if f.is_yuv() => 1,
            _ => 4,
        }
    }

    /// The bytes of one row of `plane` (no padding) for an image `width`
    /// pixels wide: the smallest stride that plane takes.
    pub fn plane_row_bytes(self, plane: usize, width: u32) -> u32 {
        let (sx, _) = self.chroma_subsampling();
        match (self, plane) {
            (_, 0) => width * self.sample_bytes(),
            // Interleaved CbCr: two samples per block.
            (Format::Nv12 | Format::Nv16 | Format::P010, 1) => width.div_ceil(sx) * 2 * self.sample_bytes(),
            (Format::Yuv420, 1 | 2) => width.div_ceil(sx) * self.sample_bytes(),
            _ => panic!("{self:?} has no plane {plane}"),
        }
    }

    /// The number of rows of `plane` for an image `height` pixels high.
    pub fn plane_rows(self, plane: usize, height: u32) -> u32 {
        assert!(plane < self.plane_count(), "{self:?} has no plane {plane}");
        let (_, sy) = self.chroma_subsampling();
        if plane == 0 {
            height
        } else {
            height.div_ceil(sy)
        }
    }

    /// Packs one pixel's Y'CbCr samples (at [`Format::bits`] bits) into the 4
    /// bytes a Y'CbCr pixel function returns: `[Y, Cb, Cr, 0]` at 8 bits, the
    /// little-endian `u32` `Y | Cb << 10 | Cr << 20` at 10 bits.
    pub fn pack_ycbcr(self, [y, cb, cr]: [u16; 3]) -> [u8; 4] {
        debug_assert!(self.is_yuv(), "{self:?} is not Y'CbCr");
        let max = (1u16 << self.bits()) - 1;
        let [y, cb, cr] = [y, cb, cr].map(|v| v.min(max));
        if self.bits() == 8 {
            [y as u8, cb as u8, cr as u8, 0]
        } else {
            (u32::from(y) | u32::from(cb) << 10 | u32::from(cr) << 20).to_le_bytes()
        }
    }

    /// Inverse of [`Format::pack_ycbcr`].
    pub fn unpack_ycbcr(self, bytes: [u8; 4]) -> [u16; 3] {
        debug_assert!(self.is_yuv(), "{self:?} is not Y'CbCr");
        if self.bits() == 8 {
            [bytes[0], bytes[1], bytes[2]].map(u16::from)
        } else {
            let w = u32::from_le_bytes(bytes);
            [w, w >> 10, w >> 20].map(|v| (v & 0x3ff) as u16)
        }
    }

    /// Encodes a premultiplied `[r, g, b, a]` colour into memory byte order.
    ///
    /// For `X` formats `a` is written into the padding byte unchanged; scenes use
    /// that to put junk there and prove the compositor ignores it. Y'CbCr
    /// formats (opaque) ignore `a` and return the packed samples
    /// ([`Format::pack_ycbcr`]), converted at the format's bit depth with the
    /// default [`Representation::BT601_LIMITED`] (see [`Format::encode_as`]).
    pub fn encode(self, rgba: [u8; 4]) -> [u8; 4] {
        self.encode_as(rgba, Representation::BT601_LIMITED)
    }

    /// [`Format::encode`], Y'CbCr formats encoded with `representation`
    /// (RGB formats ignore it).
    pub fn encode_as(self, rgba: [u8; 4], representation: Representation) -> [u8; 4] {
        let [r, g, b, a] = rgba;
        match self {
            Format::Argb8888 | Format::Xrgb8888 => [b, g, r, a],
            Format::Abgr8888 | Format::Xbgr8888 => [r, g, b, a],
            Format::Nv12 | Format::Nv16 | Format::Yuv420 | Format::P010 => {
                self.pack_ycbcr(rgb_to_ycbcr_bits([r, g, b], self.bits(), representation))
            }
        }
    }

    /// Decodes memory-order bytes into the premultiplied `[r, g, b, a]` colour
    /// the compositor must sample (alpha forced to 255 for `X` formats; Y'CbCr:
    /// packed samples, opaque, converted with the default
    /// [`Representation::BT601_LIMITED`]; see [`Format::decode_as`]).
    pub fn decode(self, bytes: [u8; 4]) -> [u8; 4] {
        self.decode_as(bytes, Representation::BT601_LIMITED)
    }

    /// [`Format::decode`], Y'CbCr formats converted with `representation`
    /// (RGB formats ignore it).
    pub fn decode_as(self, bytes: [u8; 4], representation: Representation) -> [u8; 4] {
        let [r, g, b, a] = match self {
            Format::Argb8888 | Format::Xrgb8888 => [bytes[2], bytes[1], bytes[0], bytes[3]],
            Format::Abgr8888 | Format::Xbgr8888 => [bytes[0], bytes[1], bytes[2], bytes[3]],
            Format::Nv12 | Format::Nv16 | Format::Yuv420 | Format::P010 => {
                let [r, g, b] = ycbcr_to_rgb_bits(self.unpack_ycbcr(bytes), self.bits(), representation);
                [r, g, b, 255]
            }
        };
        if self.has_alpha() {
            [r, g, b, a]
        } else {
            [r, g, b, 255]
        }
    }

    /// Parses a short lower-case name (`argb8888`, `nv12`, ...), for command lines.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .chain(Format::YUV)
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// Short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Argb8888 => "argb8888",
            Format::Xrgb8888 => "xrgb8888",
            Format::Abgr8888 => "abgr8888",
            Format::Xbgr8888 => "xbgr8888",
            Format::Nv12 => "nv12",
            Format::Nv16 => "nv16",
            Format::Yuv420 => "yuv420",
            Format::P010 => "p010",
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

    /// The formula the model had before it took coefficients and ranges,
    /// verbatim: BT.601 limited range must not move.
    fn previous_bt601_limited(ycbcr: [u16; 3], bits: u32) -> [u8; 3] {
        let k = f64::from(1u32 << (bits - 8));
        let [y, cb, cr] = ycbcr.map(|v| f64::from(v) / k);
        let (y, cb, cr) = (y - 16.0, cb - 128.0, cr - 128.0);
        let l = 1.164383 * y;
        [l + 1.596027 * cr, l - 0.391762 * cb - 0.812968 * cr, l + 2.017232 * cb]
            .map(|v| v.round().clamp(0.0, 255.0) as u8)
    }

    fn previous_rgb_to_bt601_limited(rgb: [u8; 3], bits: u32) -> [u16; 3] {
        let k = f64::from(1u32 << (bits - 8));
        let max = f64::from((1u32 << bits) - 1);
        let [r, g, b] = rgb.map(f64::from);
        let y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
        let cb = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
        let cr = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
        [y, cb, cr].map(|v| (v * k).round().clamp(0.0, max) as u16)
    }

    #[test]
    fn bt601_limited_is_unchanged() {
        // Every 8-bit triple on a grid of step 3 (endpoints included), and
        // 10-bit triples of step 11: at most one level apart (the previous
        // formula's six-digit constants), and the same almost everywhere.
        for (bits, step) in [(8u32, 3usize), (10, 11)] {
            let top = (1u16 << bits) - 1;
            let axis: Vec<u16> = (0..=top).step_by(step).chain([top]).collect();
            let (mut total, mut moved) = (0usize, 0usize);
            for &y in &axis {
                for &cb in &axis {
                    for &cr in &axis {
                        let (new, old) = (
                            bt601_limited_to_rgb_bits([y, cb, cr], bits),
                            previous_bt601_limited([y, cb, cr], bits),
                        );
                        total += 1;
                        if new != old {
                            moved += 1;
                            for c in 0..3 {
                                assert!(
                                    new[c].abs_diff(old[c]) <= 1,
                                    "{bits} bit {:?}: {new:?} vs {old:?}",
                                    [y, cb, cr]
                                );
                            }
                        }
                    }
                }
            }
            assert!(moved * 1000 <= total, "{bits} bit: {moved} of {total} triples moved");
        }
        // The encoder is the previous one exactly (the same products).
        let levels = [0u8, 1, 17, 64, 127, 128, 200, 254, 255];
        for r in levels {
            for g in levels {
                for b in levels {
                    for bits in [8, 10] {
                        assert_eq!(
                            rgb_to_bt601_limited_bits([r, g, b], bits),
                            previous_rgb_to_bt601_limited([r, g, b], bits),
                            "{bits} bit {:?}",
                            [r, g, b]
                        );
                    }
                }
            }
        }
        assert_eq!(Representation::default(), Representation::BT601_LIMITED);
        assert_eq!(
            Format::Nv12.decode([81, 90, 240, 0]),
            Format::Nv12.decode_as([81, 90, 240, 0], Representation::BT601_LIMITED)
        );
    }

    #[test]
    fn every_representation_round_trips() {
        // Rounding the samples once: within 2 at 8 bits, 1 at 10 bits.
        let levels = [0u8, 1, 17, 64, 100, 128, 200, 254, 255];
        for rep in Representation::ALL {
            for (bits, tolerance) in [(8, 2), (10, 1)] {
                for r in levels {
                    for g in levels {
                        for b in levels {
                            let samples = rep.from_rgb([r, g, b], bits);
                            let back = rep.to_rgb(samples, bits);
                            for c in 0..3 {
                                assert!(
                                    back[c].abs_diff([r, g, b][c]) <= tolerance,
                                    "{} {bits} bit {:?} -> {samples:?} -> {back:?}",
                                    rep.name(),
                                    [r, g, b]
                                );
                            }
                        }
                    }
                }
            }
        }
        // Through the formats, which pack the samples at their own depth.
        for f in Format::YUV {
            for rep in Representation::ALL {
                for rgba in [[0, 0, 0, 255], [255, 255, 255, 255], [255, 0, 0, 255], [0, 0, 255, 255]] {
                    let back = f.decode_as(f.encode_as(rgba, rep), rep);
                    assert!(
                        back.iter().zip(rgba).all(|(a, b)| a.abs_diff(b) <= 1),
                        "{f:?} {} {rgba:?} -> {back:?}",
                        rep.name()
                    );
                }
            }
        }
    }

    #[test]
    fn black_and_white_at_both_ranges() {
        for coefficients in Coefficients::ALL {
            let limited = Representation::new(coefficients, Range::Limited);
            let full = Representation::new(coefficients, Range::Full);
            // Achromatic colours have neutral chroma whatever the coefficients.
            assert_eq!(limited.from_rgb([0, 0, 0], 8), [16, 128, 128]);
            assert_eq!(limited.from_rgb([255, 255, 255], 8), [235, 128, 128]);
            assert_eq!(limited.from_rgb([0, 0, 0], 10), [64, 512, 512]);
            assert_eq!(limited.from_rgb([255, 255, 255], 10), [940, 512, 512]);
            assert_eq!(full.from_rgb([0, 0, 0], 8), [0, 128, 128]);
            assert_eq!(full.from_rgb([255, 255, 255], 8), [255, 128, 128]);
            assert_eq!(full.from_rgb([0, 0, 0], 10), [0, 512, 512]);
            assert_eq!(full.from_rgb([255, 255, 255], 10), [1023, 512, 512]);
            for (rep, bits, black, white) in [
                (limited, 8, 16, 235),
                (limited, 10, 64, 940),
                (full, 8, 0, 255),
                (full, 10, 0, 1023),
            ] {
                let mid = 1 << (bits - 1);
                assert_eq!(rep.to_rgb([black, mid, mid], bits), [0, 0, 0], "{}", rep.name());
                assert_eq!(rep.to_rgb([white, mid, mid], bits), [255; 3], "{}", rep.name());
            }
            // Limited-range black and white read as full range are greys;
            // full-range extremes read as limited range clip.
            assert_eq!(full.to_rgb([16, 128, 128], 8), [16; 3]);
            assert_eq!(full.to_rgb([235, 128, 128], 8), [235; 3]);
            assert_eq!(full.to_rgb([64, 512, 512], 10), [16; 3]);
            assert_eq!(limited.to_rgb([0, 128, 128], 8), [0; 3]);
            assert_eq!(limited.to_rgb([255, 128, 128], 8), [255; 3]);
            assert_eq!(limited.to_rgb([126, 128, 128], 8), [128; 3]);
            assert_eq!(full.to_rgb([128, 128, 128], 8), [128; 3]);
        }
    }

    #[test]
    fn coefficients_give_the_published_primaries() {
        // 8-bit limited-range red, green and blue as BT.601, BT.709 and
        // BT.2020 tabulate them (Y' from Kr and Kb; full-strength chroma 240).
        let limited = |c| Representation::new(c, Range::Limited);
        assert_eq!(limited(Coefficients::Bt601).from_rgb([255, 0, 0], 8), [81, 90, 240]);
        assert_eq!(limited(Coefficients::Bt601).from_rgb([0, 255, 0], 8), [145, 54, 34]);
        assert_eq!(limited(Coefficients::Bt601).from_rgb([0, 0, 255], 8), [41, 240, 110]);
        assert_eq!(limited(Coefficients::Bt709).from_rgb([255, 0, 0], 8), [63, 102, 240]);
        assert_eq!(limited(Coefficients::Bt709).from_rgb([0, 255, 0], 8), [173, 42, 26]);
        assert_eq!(limited(Coefficients::Bt709).from_rgb([0, 0, 255], 8), [32, 240, 118]);
        assert_eq!(limited(Coefficients::Bt2020).from_rgb([255, 0, 0], 8), [74, 97, 240]);
        assert_eq!(limited(Coefficients::Bt2020).from_rgb([0, 255, 0], 8), [164, 47, 25]);
        assert_eq!(limited(Coefficients::Bt2020).from_rgb([0, 0, 255], 8), [29, 240, 119]);
        // Full range: chroma reaches 2^n - 1 (rounded up to 2^n and clamped).
        let full709 = Representation::new(Coefficients::Bt709, Range::Full);
        assert_eq!(full709.from_rgb([255, 0, 0], 8), [54, 99, 255]);
        assert_eq!(full709.from_rgb([255, 0, 0], 10), [217, 395, 1023]);
        // The same samples are different colours under other coefficients
        // and ranges: what the representation scenes rely on.
        let red709 = limited(Coefficients::Bt709).from_rgb([255, 0, 0], 8);
        assert_eq!(limited(Coefficients::Bt601).to_rgb(red709, 8), [233, 0, 2]);
        let colours = [
            [255u8, 0, 0],
            [0, 0, 255],
            [255, 255, 0],
            [100, 150, 200],
            [210, 210, 210],
        ];
        for a in Representation::ALL {
            for b in Representation::ALL {
                if a != b {
                    let far = colours
                        .iter()
                        .flat_map(|&rgb| {
                            let moved = b.to_rgb(a.from_rgb(rgb, 8), 8);
                            (0..3).map(move |c| moved[c].abs_diff(rgb[c]))
                        })
                        .max();
                    assert!(
                        far >= Some(10),
                        "{} read as {}: at most {far:?} apart",
                        a.name(),
                        b.name()
                    );
                }
            }
        }
    }

    #[test]
    fn yuv_formats_round_trip_black_white_and_colours() {
        for f in Format::YUV {
            assert_eq!(f.decode(f.encode([0, 0, 0, 255])), [0, 0, 0, 255], "{f:?}");
            assert_eq!(f.decode(f.encode([255, 255, 255, 255])), [255, 255, 255, 255], "{f:?}");
            // Rounding the samples once: within 2 at 8 bits, 1 at 10 bits.
            let tolerance = if f.bits() == 10 { 1 } else { 2 };
            let levels = [0u8, 17, 64, 128, 200, 255];
            for r in levels {
                for g in levels {
                    for b in levels {
                        // Alpha is ignored: Y'CbCr is opaque.
                        let back = f.decode(f.encode([r, g, b, 7]));
                        assert_eq!(back[3], 255, "{f:?}");
                        for c in 0..3 {
                            assert!(
                                back[c].abs_diff([r, g, b][c]) <= tolerance,
                                "{f:?} {:?} -> {back:?}",
                                [r, g, b]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn ten_bit_limited_range_is_the_8_bit_range_times_4() {
        assert_eq!(rgb_to_bt601_limited_bits([0, 0, 0], 10), [64, 512, 512]);
        assert_eq!(rgb_to_bt601_limited_bits([255, 255, 255], 10), [940, 512, 512]);
        // Full-strength chroma reaches the top of the chroma range, 960.
        assert_eq!(rgb_to_bt601_limited_bits([255, 0, 0], 10)[2], 960);
        assert_eq!(rgb_to_bt601_limited_bits([0, 0, 255], 10)[1], 960);
        assert_eq!(bt601_limited_to_rgb_bits([64, 512, 512], 10), [0, 0, 0]);
        assert_eq!(bt601_limited_to_rgb_bits([940, 512, 512], 10), [255, 255, 255]);
        // One model: a 10-bit triple that is an 8-bit one times 4 gives the same colour.
        for t in [[16u16, 128, 128], [81, 90, 240], [235, 16, 200], [126, 200, 60]] {
            assert_eq!(
                bt601_limited_to_rgb_bits(t.map(|v| v * 4), 10),
                bt601_limited_to_rgb_bits(t, 8),
                "{t:?}"
            );
        }
        // The 10-bit encoding keeps precision the 8-bit one rounds away.
        let fine = rgb_to_bt601_limited_bits([101, 102, 103], 10);
        assert!(fine.iter().any(|v| v % 4 != 0), "{fine:?}");
        assert_eq!(
            Format::P010.unpack_ycbcr(Format::P010.encode([101, 102, 103, 255])),
            fine
        );
        assert_eq!(
            Format::Nv16.encode([101, 102, 103, 255]),
            Format::Nv12.encode([101, 102, 103, 255])
        );
    }

    #[test]
    fn ycbcr_packing_round_trips() {
        for s in [[0u16, 0, 0], [1023, 0, 512], [940, 64, 960], [65, 1022, 3]] {
            assert_eq!(Format::P010.unpack_ycbcr(Format::P010.pack_ycbcr(s)), s);
        }
        assert_eq!(
            Format::P010.pack_ycbcr([0x3ff, 0, 0x3ff]),
            (0x3ffu32 | 0x3ff << 20).to_le_bytes()
        );
        for f in [Format::Nv12, Format::Nv16, Format::Yuv420] {
            assert_eq!(f.pack_ycbcr([235, 16, 240]), [235, 16, 240, 0]);
            assert_eq!(f.unpack_ycbcr([235, 16, 240, 0]), [235, 16, 240]);
        }
    }

    #[test]
    fn yuv_plane_geometry() {
        let geometry = |f: Format, (w, h): (u32, u32)| -> Vec<(u32, u32)> {
            (0..f.plane_count())
                .map(|p| (f.plane_row_bytes(p, w), f.plane_rows(p, h)))
                .collect()
        };
        assert_eq!(geometry(Format::Nv12, (256, 128)), [(256, 128), (256, 64)]);
        assert_eq!(geometry(Format::Nv16, (256, 128)), [(256, 128), (256, 128)]);
        assert_eq!(geometry(Format::Yuv420, (256, 128)), [(256, 128), (128, 64), (128, 64)]);
        assert_eq!(geometry(Format::P010, (256, 128)), [(512, 128), (512, 64)]);
        // Odd sizes round the chroma up.
        assert_eq!(geometry(Format::Nv12, (97, 33)), [(97, 33), (98, 17)]);
        assert_eq!(geometry(Format::Nv16, (97, 33)), [(97, 33), (98, 33)]);
        assert_eq!(geometry(Format::Yuv420, (97, 33)), [(97, 33), (49, 17), (49, 17)]);
        assert_eq!(geometry(Format::P010, (97, 33)), [(194, 33), (196, 17)]);
        assert_eq!(geometry(Format::Xrgb8888, (97, 33)), [(388, 33)]);
        assert_eq!(Format::Nv16.chroma_subsampling(), (2, 1));
        assert!(Format::YUV.iter().all(|f| f.is_yuv()) && !Format::ALL.iter().any(|f| f.is_yuv()));
    }

    #[test]
    fn chroma_is_reconstructed_between_cosited_samples() {
        // Factor 2: even pixels sit on their sample, odd ones between two; the
        // last pixel of an even row has no sample to its right and keeps the last.
        let row: Vec<[u32; 2]> = (0..8).map(|x| chroma_samples(x, 2, 8)).collect();
        assert_eq!(row, [[0, 0], [0, 1], [1, 1], [1, 2], [2, 2], [2, 3], [3, 3], [3, 3]]);
        let odd: Vec<[u32; 2]> = (0..7).map(|x| chroma_samples(x, 2, 7)).collect();
        assert_eq!(odd, [[0, 0], [0, 1], [1, 1], [1, 2], [2, 2], [2, 3], [3, 3]]);
        // Not subsampled: every pixel its own sample.
        assert!((0..8).all(|y| chroma_samples(y, 1, 8) == [y, y]));
        // A fractional mean converts between its neighbours.
        let r = Representation::default();
        let [lo, hi] = [100.0, 102.0].map(|cr| ycbcr_to_rgb_f([120.0, 128.0, cr], 8, r)[0]);
        let mid = ycbcr_to_rgb_f([120.0, 128.0, 101.0], 8, r)[0];
        assert!(lo < mid && mid < hi, "{lo} {mid} {hi}");
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
        assert_eq!(Format::Nv12.fourcc(), u32::from_le_bytes(*b"NV12"));
        assert_eq!(Format::Nv16.fourcc(), u32::from_le_bytes(*b"NV16"));
        assert_eq!(Format::Yuv420.fourcc(), u32::from_le_bytes(*b"YU12"));
        assert_eq!(Format::P010.fourcc(), u32::from_le_bytes(*b"P010"));
        for f in Format::ALL.into_iter().chain(Format::YUV) {
            assert_eq!(Format::from_name(f.name()), Some(f));
        }
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
