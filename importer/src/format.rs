//! The formats the importer accepts: one table, used for validation, the
//! formats advertised to clients, texture creation and read-back conversion.
//!
//! DOC: byte order
//!
//! DRM fourccs name little-endian packed words: `ARGB8888` is `[B, G, R, A]` in
//! memory, which is `VK_FORMAT_B8G8R8A8_UNORM`; `ABGR8888` is `[R, G, B, A]`,
//! `VK_FORMAT_R8G8B8A8_UNORM`. The `X` variants use the same formats and an
//! image-view swizzle that reads alpha as 1, so an undefined X byte never leaks
//! into blending. Client alpha is premultiplied (the Wayland convention).
//!
//! DOC: planes and YUV
//!
//! Each format lists its planes: bytes per sample and the horizontal and
//! vertical subsampling. NV12 is a Y plane (one byte per pixel) and an
//! interleaved CbCr plane (one Cb,Cr pair per 2×2 pixels, rounded up); NV16
//! subsamples chroma horizontally only; YUV420 carries Cb and Cr in planes of
//! their own; P010 is NV12 with 16-bit samples holding 10 bits (the high
//! ones). Where the device has a sampler Y'CbCr conversion for the format
//! ([`FormatInfo::ycbcr`]), the client's planes are one multi-planar image
//! sampled as RGB (`vulkan::ycbcr`). Otherwise only NV12 is accepted, copied
//! through the CPU and converted into an RGB texture
//! ([`FormatInfo::texture_format`], ABGR8888, by `vulkan::yuv`). Either way,
//! everything that samples textures sees RGB.

use ash::vk;
use drm_fourcc::DrmFourcc;

/// One plane of a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneInfo {
    /// Bytes of one sample of this plane (a pixel, or a subsampled pair).
    pub bytes_per_sample: u32,
    /// Pixels per sample horizontally and vertically.
    pub hsub: u32,
    pub vsub: u32,
}

impl PlaneInfo {
    const fn new(bytes_per_sample: u32, hsub: u32, vsub: u32) -> PlaneInfo {
        PlaneInfo {
            bytes_per_sample,
            hsub,
            vsub,
        }
    }

    /// Samples per row and rows of this plane for a `width`×`height` image.
    pub fn extent(&self, width: u32, height: u32) -> (u32, u32) {
        (width.div_ceil(self.hsub), height.div_ceil(self.vsub))
    }

    /// Bytes of pixel data in one row of this plane (without padding).
    pub fn row_bytes(&self, width: u32) -> u64 {
        u64::from(width.div_ceil(self.hsub)) * u64::from(self.bytes_per_sample)
    }
}

const PACKED_32: &[PlaneInfo] = &[PlaneInfo::new(4, 1, 1)];
const NV12_PLANES: &[PlaneInfo] = &[PlaneInfo::new(1, 1, 1), PlaneInfo::new(2, 2, 2)];
const NV16_PLANES: &[PlaneInfo] = &[PlaneInfo::new(1, 1, 1), PlaneInfo::new(2, 2, 1)];
const YUV420_PLANES: &[PlaneInfo] = &[
    PlaneInfo::new(1, 1, 1),
    PlaneInfo::new(1, 2, 2),
    PlaneInfo::new(1, 2, 2),
];
const P010_PLANES: &[PlaneInfo] = &[PlaneInfo::new(2, 1, 1), PlaneInfo::new(4, 2, 2)];

/// What the importer knows about one format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatInfo {
    pub fourcc: DrmFourcc,
    /// The Vulkan format of a texture holding this format (for YUV, the
    /// format of its texture after conversion).
    pub vk_format: vk::Format,
    /// Bytes per pixel of the texture (4 for every format here).
    pub bytes_per_pixel: u32,
    /// X formats: the padding byte is not alpha; sample alpha as 1.
    pub opaque: bool,
    /// The planes a buffer of this format carries.
    pub planes: &'static [PlaneInfo],
    /// YUV: sampled through a Y'CbCr conversion, or (NV12) converted into
    /// [`FormatInfo::texture_format`] on import.
    pub yuv: bool,
    /// YUV: the multi-planar Vulkan format whose planes are the client's
    /// planes, for sampling through a `VkSamplerYcbcrConversion`.
    pub ycbcr: Option<vk::Format>,
}

const fn rgb(fourcc: DrmFourcc, vk_format: vk::Format, opaque: bool) -> FormatInfo {
    FormatInfo {
        fourcc,
        vk_format,
        bytes_per_pixel: 4,
        opaque,
        planes: PACKED_32,
        yuv: false,
        ycbcr: None,
    }
}

/// A YUV format: BT.601 limited range unless the client says otherwise.
/// `vk_format` is that of the texture the CPU path converts into.
const fn yuv(fourcc: DrmFourcc, planes: &'static [PlaneInfo], ycbcr: vk::Format) -> FormatInfo {
    FormatInfo {
        fourcc,
        vk_format: vk::Format::R8G8B8A8_UNORM,
        bytes_per_pixel: 4,
        opaque: true,
        planes,
        yuv: true,
        ycbcr: Some(ycbcr),
    }
}

/// Every format the importer accepts, in preference order.
pub const FORMATS: [FormatInfo; 8] = [
    rgb(DrmFourcc::Argb8888, vk::Format::B8G8R8A8_UNORM, false),
    rgb(DrmFourcc::Xrgb8888, vk::Format::B8G8R8A8_UNORM, true),
    rgb(DrmFourcc::Abgr8888, vk::Format::R8G8B8A8_UNORM, false),
    rgb(DrmFourcc::Xbgr8888, vk::Format::R8G8B8A8_UNORM, true),
    yuv(DrmFourcc::Nv12, NV12_PLANES, vk::Format::G8_B8R8_2PLANE_420_UNORM),
    yuv(DrmFourcc::Nv16, NV16_PLANES, vk::Format::G8_B8R8_2PLANE_422_UNORM),
    yuv(DrmFourcc::Yuv420, YUV420_PLANES, vk::Format::G8_B8_R8_3PLANE_420_UNORM),
    yuv(
        DrmFourcc::P010,
        P010_PLANES,
        vk::Format::G10X6_B10X6R10X6_2PLANE_420_UNORM_3PACK16,
    ),
];

/// Looks a DRM fourcc up; `None` for formats the importer does not accept.
pub fn format_info(fourcc: DrmFourcc) -> Option<FormatInfo> {
    FORMATS.iter().copied().find(|f| f.fourcc == fourcc)
}

/// Looks a raw fourcc code up (as it arrives from the protocol).
pub fn format_info_raw(code: u32) -> Option<FormatInfo> {
    DrmFourcc::try_from(code).ok().and_then(format_info)
}

/// The single-plane RGB formats: what shm buffers, memory uploads and render
/// targets may use, in preference order.
pub fn rgb_formats() -> impl Iterator<Item = FormatInfo> {
    FORMATS.into_iter().filter(|f| !f.yuv)
}

impl FormatInfo {
    /// Whether the CPU fallback can take this format: RGB, and NV12 (which
    /// `vulkan::yuv` converts). Other YUV formats need the Y'CbCr sampler.
    pub fn cpu_converts(&self) -> bool {
        !self.yuv || self.fourcc == DrmFourcc::Nv12
    }

    /// YUV: this format as the multi-planar image its planes form on the
    /// Y'CbCr path (`vk_format` is [`FormatInfo::ycbcr`]).
    pub fn planar(&self) -> Option<FormatInfo> {
        self.ycbcr.map(|vk_format| FormatInfo { vk_format, ..*self })
    }

    /// The format of a texture holding a buffer of this format: itself for
    /// RGB, ABGR8888 for YUV (what the conversion writes).
    pub fn texture_format(&self) -> FormatInfo {
        if self.yuv {
            format_info(DrmFourcc::Abgr8888).expect("ABGR8888 is in the table")
        } else {
            *self
        }
    }

    /// Component swizzle for an image view of this format.
    pub fn swizzle(&self) -> vk::ComponentMapping {
        let a = if self.opaque {
            vk::ComponentSwizzle::ONE
        } else {
            vk::ComponentSwizzle::IDENTITY
        };
        vk::ComponentMapping {
            r: vk::ComponentSwizzle::IDENTITY,
            g: vk::ComponentSwizzle::IDENTITY,
            b: vk::ComponentSwizzle::IDENTITY,
            a,
        }
    }

    /// Memory positions of R, G, B and A in one pixel of an RGB format.
    fn rgba_positions(&self) -> Option<[usize; 4]> {
        match (self.yuv, self.vk_format) {
            (false, vk::Format::B8G8R8A8_UNORM) => Some([2, 1, 0, 3]),
            (false, vk::Format::R8G8B8A8_UNORM) => Some([0, 1, 2, 3]),
            _ => None,
        }
    }
}

/// Whether [`convert_pixels`] handles this pair (RGB formats only).
pub fn can_convert(from: &FormatInfo, to: &FormatInfo) -> bool {
    from.rgba_positions().is_some() && to.rgba_positions().is_some()
}

/// Converts tightly packed pixels from `from` to `to` (read-backs requested
/// in another format than the image's). An X source reads as opaque (alpha
/// 255) in an A destination.
pub fn convert_pixels(bytes: &[u8], from: &FormatInfo, to: &FormatInfo) -> Option<Vec<u8>> {
    let src = from.rgba_positions()?;
    let dst = to.rgba_positions()?;
    let mut out = vec![0u8; bytes.len()];
    for (i, o) in bytes.chunks_exact(4).zip(out.chunks_exact_mut(4)) {
        for c in 0..3 {
            o[dst[c]] = i[src[c]];
        }
        o[dst[3]] = if from.opaque { 255 } else { i[src[3]] };
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(f: DrmFourcc) -> FormatInfo {
        format_info(f).unwrap()
    }

    #[test]
    fn x_formats_read_alpha_as_one() {
        assert_eq!(info(DrmFourcc::Xrgb8888).swizzle().a, vk::ComponentSwizzle::ONE);
        assert_eq!(info(DrmFourcc::Argb8888).swizzle().a, vk::ComponentSwizzle::IDENTITY);
    }

    #[test]
    fn byte_order_matches_vulkan() {
        assert_eq!(info(DrmFourcc::Argb8888).vk_format, vk::Format::B8G8R8A8_UNORM);
        assert_eq!(info(DrmFourcc::Abgr8888).vk_format, vk::Format::R8G8B8A8_UNORM);
        assert!(format_info_raw(0x3231_564e /* NV12 */).is_some_and(|f| f.yuv));
        assert!(format_info_raw(0x3631_5559 /* YU16 */).is_none());
        assert!(format_info_raw(0x3231_5559 /* YU12 */).is_some_and(|f| f.planes.len() == 3));
    }

    #[test]
    fn nv12_planes_round_odd_sizes_up() {
        let nv12 = info(DrmFourcc::Nv12);
        assert_eq!(nv12.planes.len(), 2);
        assert_eq!(nv12.planes[0].row_bytes(5), 5);
        assert_eq!(nv12.planes[1].row_bytes(5), 6);
        assert_eq!(nv12.planes[1].extent(5, 3), (3, 2));
        assert_eq!(nv12.texture_format().fourcc, DrmFourcc::Abgr8888);
        assert!(rgb_formats().all(|f| !f.yuv && f.planes.len() == 1));
        assert_eq!(rgb_formats().count(), 4);
    }

    #[test]
    fn yuv_planes_match_their_subsampling() {
        let nv16 = info(DrmFourcc::Nv16);
        assert_eq!(nv16.planes[1].extent(5, 3), (3, 3));
        let yuv420 = info(DrmFourcc::Yuv420);
        assert_eq!(yuv420.planes[2].row_bytes(5), 3);
        let p010 = info(DrmFourcc::P010);
        assert_eq!((p010.planes[0].row_bytes(4), p010.planes[1].row_bytes(4)), (8, 8));
        assert!(FORMATS.iter().all(|f| f.yuv == f.ycbcr.is_some()));
        assert!(info(DrmFourcc::Nv12).cpu_converts() && !p010.cpu_converts());
    }

    #[test]
    fn xrgb_to_abgr_swaps_and_makes_opaque() {
        let out = convert_pixels(&[1, 2, 3, 9], &info(DrmFourcc::Xrgb8888), &info(DrmFourcc::Abgr8888)).unwrap();
        assert_eq!(out, vec![3, 2, 1, 255]);
    }

    #[test]
    fn argb_to_abgr_keeps_alpha() {
        let out = convert_pixels(&[1, 2, 3, 128], &info(DrmFourcc::Argb8888), &info(DrmFourcc::Abgr8888)).unwrap();
        assert_eq!(out, vec![3, 2, 1, 128]);
        assert!(!can_convert(&info(DrmFourcc::Nv12), &info(DrmFourcc::Abgr8888)));
    }
}
