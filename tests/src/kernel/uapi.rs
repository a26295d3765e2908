//! Linux uapi structs and ioctl numbers only the kernel tier's tests use
//! (x86-64/aarch64 generic `_IOC` encoding), written out from the kernel
//! headers: `linux/udmabuf.h`, `linux/dma-heap.h`, `drm/drm.h`,
//! `drm/drm_mode.h`, `drm/vgem_drm.h` (the last is not in libdrm) and
//! `linux/vt.h`. The dma-buf ioctls (`linux/dma-buf.h`) are the importer's
//! (`importer::sync::implicit`).

use importer::ioctl::{iow, iowr};

// ---- linux/udmabuf.h ----------------------------------------------------

/// `struct udmabuf_create`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct UdmabufCreate {
    pub memfd: u32,
    pub flags: u32,
    pub offset: u64,
    pub size: u64,
}
pub const UDMABUF_FLAGS_CLOEXEC: u32 = 0x01;
pub const UDMABUF_CREATE: u64 = iow::<UdmabufCreate>(b'u', 0x42);

// ---- linux/dma-heap.h ---------------------------------------------------

/// `struct dma_heap_allocation_data`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DmaHeapAllocationData {
    pub len: u64,
    pub fd: u32,
    pub fd_flags: u32,
    pub heap_flags: u64,
}
pub const DMA_HEAP_IOCTL_ALLOC: u64 = iowr::<DmaHeapAllocationData>(b'H', 0x0);

// ---- drm/drm.h, drm/drm_mode.h ------------------------------------------

pub const DRM_IOCTL_BASE: u8 = b'd';
pub const DRM_COMMAND_BASE: u8 = 0x40;

/// `struct drm_version`.
#[repr(C)]
#[derive(Debug)]
pub struct DrmVersion {
    pub version_major: libc::c_int,
    pub version_minor: libc::c_int,
    pub version_patchlevel: libc::c_int,
    pub name_len: libc::size_t,
    pub name: *mut libc::c_char,
    pub date_len: libc::size_t,
    pub date: *mut libc::c_char,
    pub desc_len: libc::size_t,
    pub desc: *mut libc::c_char,
}
pub const DRM_IOCTL_VERSION: u64 = iowr::<DrmVersion>(DRM_IOCTL_BASE, 0x00);

/// `struct drm_gem_close`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmGemClose {
    pub handle: u32,
    pub pad: u32,
}
pub const DRM_IOCTL_GEM_CLOSE: u64 = iow::<DrmGemClose>(DRM_IOCTL_BASE, 0x09);

/// `struct drm_prime_handle`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmPrimeHandle {
    pub handle: u32,
    pub flags: u32,
    pub fd: i32,
}
pub const DRM_IOCTL_PRIME_HANDLE_TO_FD: u64 = iowr::<DrmPrimeHandle>(DRM_IOCTL_BASE, 0x2d);
/// `DRM_IOCTL_SET_MASTER` / `DRM_IOCTL_DROP_MASTER`: `_IO('d', 0x1e/0x1f)`,
/// no argument.
pub const DRM_IOCTL_SET_MASTER: u64 = (DRM_IOCTL_BASE as u64) << 8 | 0x1e;
pub const DRM_IOCTL_DROP_MASTER: u64 = (DRM_IOCTL_BASE as u64) << 8 | 0x1f;
/// `DRM_CLOEXEC` / `DRM_RDWR` (= `O_CLOEXEC` / `O_RDWR`).
pub const DRM_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
pub const DRM_RDWR: u32 = libc::O_RDWR as u32;

/// `struct drm_mode_create_dumb`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmModeCreateDumb {
    pub height: u32,
    pub width: u32,
    pub bpp: u32,
    pub flags: u32,
    pub handle: u32,
    pub pitch: u32,
    pub size: u64,
}
pub const DRM_IOCTL_MODE_CREATE_DUMB: u64 = iowr::<DrmModeCreateDumb>(DRM_IOCTL_BASE, 0xB2);

/// `struct drm_mode_card_res`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmModeCardRes {
    pub fb_id_ptr: u64,
    pub crtc_id_ptr: u64,
    pub connector_id_ptr: u64,
    pub encoder_id_ptr: u64,
    pub count_fbs: u32,
    pub count_crtcs: u32,
    pub count_connectors: u32,
    pub count_encoders: u32,
    pub min_width: u32,
    pub max_width: u32,
    pub min_height: u32,
    pub max_height: u32,
}
pub const DRM_IOCTL_MODE_GETRESOURCES: u64 = iowr::<DrmModeCardRes>(DRM_IOCTL_BASE, 0xA0);

/// `struct drm_mode_modeinfo`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmModeModeinfo {
    pub clock: u32,
    pub hdisplay: u16,
    pub hsync_start: u16,
    pub hsync_end: u16,
    pub htotal: u16,
    pub hskew: u16,
    pub vdisplay: u16,
    pub vsync_start: u16,
    pub vsync_end: u16,
    pub vtotal: u16,
    pub vscan: u16,
    pub vrefresh: u32,
    pub flags: u32,
    pub type_: u32,
    pub name: [u8; 32],
}

/// `struct drm_mode_crtc`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmModeCrtc {
    pub set_connectors_ptr: u64,
    pub count_connectors: u32,
    pub crtc_id: u32,
    pub fb_id: u32,
    pub x: u32,
    pub y: u32,
    pub gamma_size: u32,
    pub mode_valid: u32,
    pub mode: DrmModeModeinfo,
}
pub const DRM_IOCTL_MODE_GETCRTC: u64 = iowr::<DrmModeCrtc>(DRM_IOCTL_BASE, 0xA1);

/// `struct drm_mode_fb_cmd2`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmModeFbCmd2 {
    pub fb_id: u32,
    pub width: u32,
    pub height: u32,
    pub pixel_format: u32,
    pub flags: u32,
    pub handles: [u32; 4],
    pub pitches: [u32; 4],
    pub offsets: [u32; 4],
    pub modifier: [u64; 4],
}
pub const DRM_IOCTL_MODE_GETFB2: u64 = iowr::<DrmModeFbCmd2>(DRM_IOCTL_BASE, 0xCE);

// ---- drm/vgem_drm.h -----------------------------------------------------

/// `struct drm_vgem_fence_attach`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVgemFenceAttach {
    pub handle: u32,
    pub flags: u32,
    pub out_fence: u32,
    pub pad: u32,
}
/// `struct drm_vgem_fence_signal`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVgemFenceSignal {
    pub fence: u32,
    pub flags: u32,
}
pub const VGEM_FENCE_WRITE: u32 = 0x1;
pub const DRM_IOCTL_VGEM_FENCE_ATTACH: u64 = iowr::<DrmVgemFenceAttach>(DRM_IOCTL_BASE, DRM_COMMAND_BASE + 0x1);
pub const DRM_IOCTL_VGEM_FENCE_SIGNAL: u64 = iow::<DrmVgemFenceSignal>(DRM_IOCTL_BASE, DRM_COMMAND_BASE + 0x2);

// ---- linux/vt.h ------------------------------------------------------------

/// `VT_ACTIVATE` / `VT_WAITACTIVE`: the argument is the VT number itself
/// (not a pointer); plain numbers, not `_IOC`-encoded.
pub const VT_ACTIVATE: u64 = 0x5606;
pub const VT_WAITACTIVE: u64 = 0x5607;

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers as the C macros expand them on x86-64 (checked against
    /// `printf("%#lx", UDMABUF_CREATE)` etc. with the kernel headers).
    #[test]
    fn ioctl_numbers_match_the_c_headers() {
        assert_eq!(UDMABUF_CREATE, 0x4018_7542);
        assert_eq!(DMA_HEAP_IOCTL_ALLOC, 0xc018_4800);
        assert_eq!(DRM_IOCTL_VERSION, 0xc040_6400);
        assert_eq!(DRM_IOCTL_GEM_CLOSE, 0x4008_6409);
        assert_eq!(DRM_IOCTL_PRIME_HANDLE_TO_FD, 0xc00c_642d);
        assert_eq!(DRM_IOCTL_SET_MASTER, 0x641e);
        assert_eq!(DRM_IOCTL_DROP_MASTER, 0x641f);
        assert_eq!(DRM_IOCTL_MODE_CREATE_DUMB, 0xc020_64b2);
        assert_eq!(DRM_IOCTL_MODE_GETRESOURCES, 0xc040_64a0);
        assert_eq!(DRM_IOCTL_MODE_GETCRTC, 0xc068_64a1);
        assert_eq!(DRM_IOCTL_MODE_GETFB2, 0xc068_64ce);
        assert_eq!(DRM_IOCTL_VGEM_FENCE_ATTACH, 0xc010_6441);
        assert_eq!(DRM_IOCTL_VGEM_FENCE_SIGNAL, 0x4008_6442);
    }
}
