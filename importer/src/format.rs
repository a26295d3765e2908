//! DRM fourcc → Vulkan format mapping.
//!
//! DOC: byte order
//!
//! DRM fourccs name little-endian packed words: `ARGB8888` is `[B, G, R, A]` in
//! memory, which is `VK_FORMAT_B8G8R8A8_UNORM`; `ABGR8888` is `[R, G, B, A]`,
//! `VK_FORMAT_R8G8B8A8_UNORM`. The `X` variants use the same formats and an
//! image-view swizzle that reads alpha as 1, so an undefined X byte never leaks
//! into blending. Client alpha is premultiplied (the Wayland convention).

use ash::vk;
use drm_fourcc::DrmFourcc;

/// What the importer needs to know about one supported single-plane format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatInfo {
    pub fourcc: DrmFourcc,
    pub vk_format: vk::Format,
    pub bytes_per_pixel: u32,
    /// X formats: the padding byte is not alpha; sample alpha as 1.
    pub opaque: bool,
    /// Number of planes a buffer of this format carries.
    pub planes: usize,
}

impl FormatInfo {
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
}

const fn info(fourcc: DrmFourcc, vk_format: vk::Format, opaque: bool) -> FormatInfo {
    FormatInfo {
        fourcc,
        vk_format,
        bytes_per_pixel: 4,
        opaque,
        planes: 1,
    }
}

/// Every format the importer can sample, in preference order.
pub const SUPPORTED: [FormatInfo; 4] = [
    info(DrmFourcc::Argb8888, vk::Format::B8G8R8A8_UNORM, false),
    info(DrmFourcc::Xrgb8888, vk::Format::B8G8R8A8_UNORM, true),
    info(DrmFourcc::Abgr8888, vk::Format::R8G8B8A8_UNORM, false),
    info(DrmFourcc::Xbgr8888, vk::Format::R8G8B8A8_UNORM, true),
];

/// Looks a DRM fourcc up; `None` for formats the importer cannot sample.
pub fn format_info(fourcc: DrmFourcc) -> Option<FormatInfo> {
    SUPPORTED.iter().copied().find(|f| f.fourcc == fourcc)
}

/// Looks a raw fourcc code up (as it arrives from the protocol).
pub fn format_info_raw(code: u32) -> Option<FormatInfo> {
    DrmFourcc::try_from(code).ok().and_then(format_info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_formats_read_alpha_as_one() {
        let x = format_info(DrmFourcc::Xrgb8888).unwrap();
        assert_eq!(x.swizzle().a, vk::ComponentSwizzle::ONE);
        let a = format_info(DrmFourcc::Argb8888).unwrap();
        assert_eq!(a.swizzle().a, vk::ComponentSwizzle::IDENTITY);
    }

    #[test]
    fn byte_order_matches_vulkan() {
        assert_eq!(
            format_info(DrmFourcc::Argb8888).unwrap().vk_format,
            vk::Format::B8G8R8A8_UNORM
        );
        assert_eq!(
            format_info(DrmFourcc::Abgr8888).unwrap().vk_format,
            vk::Format::R8G8B8A8_UNORM
        );
        assert!(format_info_raw(0x3231_564e /* NV12 */).is_none());
    }
}
