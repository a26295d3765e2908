//! Reads what a KMS CRTC is scanning out, from outside the compositor:
//! `DRM_IOCTL_MODE_GETRESOURCES` → the CRTCs, `DRM_IOCTL_MODE_GETCRTC` → the
//! active one's framebuffer id, `DRM_IOCTL_MODE_GETFB2` → its GEM handle,
//! pitch and format, `DRM_IOCTL_PRIME_HANDLE_TO_FD` → a dma-buf, mmap inside
//! a `DMA_BUF_IOCTL_SYNC` read bracket. GETFB2 hands out handles only to the
//! DRM master or `CAP_SYS_ADMIN`: the VM tier runs as root while the
//! compositor is master.

use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use importer::sync::SyncDir;
use rustix::fs::{Mode, OFlags};

use super::dmabuf::CpuAccess;
use super::uapi::*;
use super::vgem::driver_name;
use super::{ioctl_retry, with_path};
use crate::image::RgbaImage;
use crate::mapping::Mapping;

/// DRM fourcc `XR24` (XRGB8888) and `AR24` (ARGB8888).
const XRGB8888: u32 = u32::from_le_bytes(*b"XR24");
const ARGB8888: u32 = u32::from_le_bytes(*b"AR24");

/// The card node (`/dev/dri/cardN`) whose driver is `driver`.
pub fn find_card(driver: &str) -> io::Result<PathBuf> {
    let mut seen = Vec::new();
    let mut cards: Vec<PathBuf> = std::fs::read_dir("/dev/dri")
        .map_err(|e| with_path(e, "read /dev/dri"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("card"))
        })
        .collect();
    cards.sort();
    for path in cards {
        let fd = open(&path)?;
        match driver_name(&fd) {
            Ok(name) if name == driver => return Ok(path),
            Ok(name) => seen.push(format!("{}={name}", path.display())),
            Err(e) => seen.push(format!("{}: {e}", path.display())),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no {driver} card node in /dev/dri (found: {seen:?})"),
    ))
}

fn open(path: &Path) -> io::Result<OwnedFd> {
    rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| with_path(e.into(), &format!("open {}", path.display())))
}

/// One active CRTC and the framebuffer it scans out.
#[derive(Debug, Clone, Copy)]
pub struct ScanoutInfo {
    pub crtc_id: u32,
    pub fb_id: u32,
    pub width: u32,
    pub height: u32,
    pub pitch: u32,
    pub offset: u32,
    pub fourcc: u32,
    pub modifier: u64,
    /// The mode's size (what the CRTC shows).
    pub mode: (u16, u16),
}

/// The active CRTCs (mode set and a framebuffer attached) of a card.
pub fn active_crtcs(card: &Path) -> io::Result<Vec<(u32, u32, (u16, u16))>> {
    let fd = open(card)?;
    let mut res = DrmModeCardRes::default();
    // SAFETY: GETRESOURCES with all pointers null only fills in the counts.
    unsafe { ioctl_retry(fd.as_fd(), DRM_IOCTL_MODE_GETRESOURCES, &mut res) }
        .map_err(|e| with_path(e, "DRM_IOCTL_MODE_GETRESOURCES"))?;
    let mut crtcs = vec![0u32; res.count_crtcs as usize];
    let mut res2 = DrmModeCardRes {
        crtc_id_ptr: crtcs.as_mut_ptr() as u64,
        count_crtcs: res.count_crtcs,
        ..Default::default()
    };
    // SAFETY: the CRTC array holds count_crtcs entries; every other count is 0.
    unsafe { ioctl_retry(fd.as_fd(), DRM_IOCTL_MODE_GETRESOURCES, &mut res2) }
        .map_err(|e| with_path(e, "DRM_IOCTL_MODE_GETRESOURCES (ids)"))?;
    crtcs.truncate(res2.count_crtcs.min(res.count_crtcs) as usize);
    let mut active = Vec::new();
    for id in crtcs {
        let mut crtc = DrmModeCrtc {
            crtc_id: id,
            ..Default::default()
        };
        // SAFETY: GETCRTC takes a struct drm_mode_crtc; no connector pointer.
        unsafe { ioctl_retry(fd.as_fd(), DRM_IOCTL_MODE_GETCRTC, &mut crtc) }
            .map_err(|e| with_path(e, "DRM_IOCTL_MODE_GETCRTC"))?;
        if crtc.mode_valid != 0 && crtc.fb_id != 0 {
            active.push((id, crtc.fb_id, (crtc.mode.hdisplay, crtc.mode.vdisplay)));
        }
    }
    Ok(active)
}

/// The only active CRTC of `card` (its id and mode) and its framebuffer
/// as GETFB2 describes it, with a GEM handle on the returned fd (the
/// caller closes it). GETFB2 hands out handles only to the DRM master or
/// `CAP_SYS_ADMIN`.
fn scanned_out_fb(card: &Path) -> io::Result<(OwnedFd, u32, (u16, u16), DrmModeFbCmd2)> {
    let active = active_crtcs(card)?;
    let [(crtc_id, fb_id, mode)] = active[..] else {
        return Err(io::Error::other(format!(
            "expected exactly one active CRTC on {}, found {active:?}",
            card.display()
        )));
    };
    let fd = open(card)?;
    let mut fb = DrmModeFbCmd2 {
        fb_id,
        ..Default::default()
    };
    // SAFETY: GETFB2 takes a struct drm_mode_fb_cmd2.
    unsafe { ioctl_retry(fd.as_fd(), DRM_IOCTL_MODE_GETFB2, &mut fb) }
        .map_err(|e| with_path(e, "DRM_IOCTL_MODE_GETFB2"))?;
    if fb.handles[0] == 0 {
        return Err(io::Error::other(
            "GETFB2 returned no GEM handle (needs DRM master or CAP_SYS_ADMIN)",
        ));
    }
    Ok((fd, crtc_id, mode, fb))
}

/// Reads the framebuffer the only active CRTC of `card` scans out, as RGBA8
/// (alpha forced opaque for XRGB, as the display engine ignores it).
pub fn read_scanout(card: &Path) -> io::Result<(ScanoutInfo, RgbaImage)> {
    let (fd, crtc_id, mode, fb) = scanned_out_fb(card)?;
    let (fb_id, handle) = (fb.fb_id, fb.handles[0]);
    let info = ScanoutInfo {
        crtc_id,
        fb_id,
        width: fb.width,
        height: fb.height,
        pitch: fb.pitches[0],
        offset: fb.offsets[0],
        fourcc: fb.pixel_format,
        modifier: fb.modifier[0],
        mode,
    };
    let result = read_handle(&fd, handle, &info);
    let mut close = DrmGemClose { handle, pad: 0 };
    // SAFETY: GEM_CLOSE takes a struct drm_gem_close; the handle is ours (GETFB2).
    let _ = unsafe { ioctl_retry(fd.as_fd(), DRM_IOCTL_GEM_CLOSE, &mut close) };
    Ok((info, result?))
}

fn read_handle(card: &OwnedFd, handle: u32, info: &ScanoutInfo) -> io::Result<RgbaImage> {
    if info.fourcc != XRGB8888 && info.fourcc != ARGB8888 {
        return Err(io::Error::other(format!(
            "scan-out format {:#x} is not XR24/AR24",
            info.fourcc
        )));
    }
    if info.modifier != 0 {
        return Err(io::Error::other(format!(
            "scan-out modifier {:#x} is not LINEAR; cannot read it linearly",
            info.modifier
        )));
    }
    let mut prime = DrmPrimeHandle {
        handle,
        // RDWR: the mapping helper maps read/write (a read-only dma-buf
        // refuses PROT_WRITE); nothing is written.
        flags: DRM_CLOEXEC | DRM_RDWR,
        fd: -1,
    };
    // SAFETY: PRIME_HANDLE_TO_FD takes a struct drm_prime_handle.
    unsafe { ioctl_retry(card.as_fd(), DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut prime) }
        .map_err(|e| with_path(e, "DRM_IOCTL_PRIME_HANDLE_TO_FD"))?;
    // SAFETY: the kernel just returned this new fd.
    let dmabuf = unsafe { OwnedFd::from_raw_fd(prime.fd) };
    let len = super::dmabuf::size(dmabuf.as_fd())? as usize;
    let need = info.offset as usize + info.pitch as usize * info.height as usize;
    if need > len {
        return Err(io::Error::other(format!(
            "framebuffer needs {need} bytes, dma-buf has {len}"
        )));
    }
    let map = Mapping::new(&dmabuf, len)?;
    let access = CpuAccess::begin(dmabuf.as_fd(), SyncDir::Read)?;
    let bytes = map.as_slice();
    let mut img = RgbaImage::filled(info.width, info.height, [0, 0, 0, 255]);
    for y in 0..info.height {
        let row = info.offset as usize + y as usize * info.pitch as usize;
        for x in 0..info.width {
            let p = &bytes[row + x as usize * 4..row + x as usize * 4 + 4];
            // XRGB8888 / ARGB8888 little-endian: bytes B, G, R, X/A.
            img.put(x, y, [p[2], p[1], p[0], 255]);
        }
    }
    access.end()?;
    Ok(img)
}

/// A dumb buffer allocated on a KMS card node (as a client without DRM
/// master may), exported with PRIME: a dma-buf the card can scan out.
#[derive(Debug)]
pub struct CardDumb {
    pub buffer: super::vgem::DumbBuffer,
    card: OwnedFd,
}

impl CardDumb {
    /// `width`×`height` at 32 bits per pixel on `card`.
    pub fn create(card: &Path, width: u32, height: u32) -> io::Result<CardDumb> {
        let fd = open(card)?;
        let buffer = super::vgem::create_dumb(fd.as_fd(), width, height, 32)?;
        Ok(CardDumb { buffer, card: fd })
    }
}

impl Drop for CardDumb {
    fn drop(&mut self) {
        super::vgem::close_handle(self.card.as_fd(), self.buffer.handle);
    }
}

/// The inode of the dma-buf behind the framebuffer the only active CRTC of
/// `card` scans out (GETFB2 → PRIME). PRIME hands out the buffer's one
/// dma-buf, so this equals a client's dma-buf inode exactly when the CRTC
/// scans out the client's buffer itself.
pub fn scanout_dmabuf_inode(card: &Path) -> io::Result<u64> {
    let (fd, _, _, fb) = scanned_out_fb(card)?;
    let handle = fb.handles[0];
    let mut prime = DrmPrimeHandle {
        handle,
        flags: DRM_CLOEXEC,
        fd: -1,
    };
    // SAFETY: PRIME_HANDLE_TO_FD takes a struct drm_prime_handle.
    let exported = unsafe { ioctl_retry(fd.as_fd(), DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut prime) };
    super::vgem::close_handle(fd.as_fd(), handle);
    exported.map_err(|e| with_path(e, "DRM_IOCTL_PRIME_HANDLE_TO_FD"))?;
    // SAFETY: the kernel just returned this new fd.
    let dmabuf = unsafe { OwnedFd::from_raw_fd(prime.fd) };
    Ok(rustix::fs::fstat(&dmabuf)?.st_ino)
}

/// Whether framebuffer `fb_id` still exists on `card` (`GETFB2` succeeds).
pub fn framebuffer_exists(card: &Path, fb_id: u32) -> io::Result<bool> {
    let fd = open(card)?;
    let mut fb = DrmModeFbCmd2 {
        fb_id,
        ..Default::default()
    };
    // SAFETY: GETFB2 takes a struct drm_mode_fb_cmd2.
    match unsafe { ioctl_retry(fd.as_fd(), DRM_IOCTL_MODE_GETFB2, &mut fb) } {
        Ok(_) => {
            for &handle in fb.handles.iter().filter(|&&h| h != 0) {
                let mut close = DrmGemClose { handle, pad: 0 };
                // SAFETY: GEM_CLOSE takes a struct drm_gem_close; the handle is ours.
                let _ = unsafe { ioctl_retry(fd.as_fd(), DRM_IOCTL_GEM_CLOSE, &mut close) };
            }
            Ok(true)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(with_path(e, "DRM_IOCTL_MODE_GETFB2")),
    }
}

/// Whether another open file holds DRM master on `card`. Opens the card and
/// asks for master (`DRM_IOCTL_SET_MASTER`, allowed to root): `EBUSY` means
/// someone else holds it. Otherwise nobody did (a card node opened while
/// there is no master makes its opener master anyway), and master is given
/// back at once (`DRM_IOCTL_DROP_MASTER`, then close).
pub fn master_held_elsewhere(card: &Path) -> io::Result<bool> {
    let fd = open(card)?;
    // SAFETY: SET_MASTER and DROP_MASTER take no argument.
    match unsafe { ioctl_retry(fd.as_fd(), DRM_IOCTL_SET_MASTER, std::ptr::null_mut::<libc::c_void>()) } {
        Ok(_) => {
            // SAFETY: as above.
            unsafe { ioctl_retry(fd.as_fd(), DRM_IOCTL_DROP_MASTER, std::ptr::null_mut::<libc::c_void>()) }
                .map_err(|e| with_path(e, "DRM_IOCTL_DROP_MASTER"))?;
            Ok(false)
        }
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(true),
        Err(e) => Err(with_path(e, "DRM_IOCTL_SET_MASTER")),
    }
}
