//! vgem (virtual GEM): dumb buffers exported as dma-bufs, with fences the test
//! attaches and signals itself. This is the way to get a *controllable*,
//! unsignaled implicit write fence on a real dma-buf.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use super::uapi::*;
use super::{ioctl_retry, with_path};

/// An open vgem DRM node.
#[derive(Debug)]
pub struct Vgem {
    fd: OwnedFd,
    pub path: PathBuf,
}

/// A dumb buffer (vgem's, or a KMS card's): GEM handle plus its
/// PRIME-exported dma-buf.
#[derive(Debug)]
pub struct DumbBuffer {
    pub handle: u32,
    pub dmabuf: OwnedFd,
    pub pitch: u32,
    pub size: u64,
}

/// A fence attached to a vgem buffer (vgem signals it by itself after 10 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VgemFence(pub u32);

/// The driver name of an open DRM fd (`DRM_IOCTL_VERSION`).
pub fn driver_name(fd: impl AsFd) -> io::Result<String> {
    let mut name = vec![0u8; 64];
    let mut v = DrmVersion {
        version_major: 0,
        version_minor: 0,
        version_patchlevel: 0,
        name_len: name.len(),
        name: name.as_mut_ptr().cast(),
        date_len: 0,
        date: std::ptr::null_mut(),
        desc_len: 0,
        desc: std::ptr::null_mut(),
    };
    // SAFETY: DRM_IOCTL_VERSION takes a struct drm_version whose buffers
    // (name: 64 bytes; date/desc: none) stay alive for the call.
    unsafe { ioctl_retry(fd.as_fd(), DRM_IOCTL_VERSION, &mut v) }?;
    let len = v.name_len.min(name.len());
    Ok(String::from_utf8_lossy(&name[..len]).into_owned())
}

impl Vgem {
    /// Finds the DRM node whose driver is `vgem` among `/dev/dri/card*` and
    /// `/dev/dri/renderD*` (node numbers depend on probe order, e.g. when
    /// virtio-gpu is also present).
    pub fn open() -> io::Result<Vgem> {
        let dir = Path::new("/dev/dri");
        let mut nodes: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| with_path(e, "read /dev/dri (is the vgem module loaded?)"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("card") || n.starts_with("renderD"))
            })
            .collect();
        nodes.sort();
        let mut seen = Vec::new();
        for path in nodes {
            let Ok(fd) = rustix::fs::open(&path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) else {
                continue;
            };
            match driver_name(&fd) {
                Ok(name) if name == "vgem" => return Ok(Vgem { fd, path }),
                Ok(name) => seen.push(format!("{}={name}", path.display())),
                Err(e) => seen.push(format!("{}: {e}", path.display())),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no vgem DRM node in /dev/dri (found: {seen:?})"),
        ))
    }

    /// `DRM_IOCTL_MODE_CREATE_DUMB` + `DRM_IOCTL_PRIME_HANDLE_TO_FD`.
    pub fn create_dumb(&self, width: u32, height: u32, bpp: u32) -> io::Result<DumbBuffer> {
        create_dumb(self.fd.as_fd(), width, height, bpp)
    }

    /// `DRM_IOCTL_VGEM_FENCE_ATTACH`: adds an unsignaled fence to the
    /// buffer's reservation object (a write fence if `write`).
    pub fn attach_fence(&self, buffer: &DumbBuffer, write: bool) -> io::Result<VgemFence> {
        let mut arg = DrmVgemFenceAttach {
            handle: buffer.handle,
            flags: if write { VGEM_FENCE_WRITE } else { 0 },
            out_fence: 0,
            pad: 0,
        };
        // SAFETY: VGEM_FENCE_ATTACH takes a struct drm_vgem_fence_attach.
        unsafe { ioctl_retry(self.fd.as_fd(), DRM_IOCTL_VGEM_FENCE_ATTACH, &mut arg) }
            .map_err(|e| with_path(e, "DRM_IOCTL_VGEM_FENCE_ATTACH"))?;
        Ok(VgemFence(arg.out_fence))
    }

    /// `DRM_IOCTL_VGEM_FENCE_SIGNAL`.
    pub fn signal(&self, fence: VgemFence) -> io::Result<()> {
        let mut arg = DrmVgemFenceSignal {
            fence: fence.0,
            flags: 0,
        };
        // SAFETY: VGEM_FENCE_SIGNAL takes a struct drm_vgem_fence_signal.
        unsafe { ioctl_retry(self.fd.as_fd(), DRM_IOCTL_VGEM_FENCE_SIGNAL, &mut arg) }
            .map(drop)
            .map_err(|e| with_path(e, "DRM_IOCTL_VGEM_FENCE_SIGNAL"))
    }

    /// Releases the GEM handle (the dma-buf fd keeps the memory alive).
    pub fn close_handle(&self, handle: u32) {
        close_handle(self.fd.as_fd(), handle);
    }
}

impl DumbBuffer {
    /// Fills the top-left `width`×`height` pixels of 4 bytes each with
    /// `pixel`, from the CPU through the dma-buf's mapping, inside a
    /// `DMA_BUF_IOCTL_SYNC` write bracket.
    pub fn fill(&self, width: u32, height: u32, pixel: [u8; 4]) -> io::Result<()> {
        let fd = self.dmabuf.as_fd();
        let mut map = crate::mapping::Mapping::new(fd, self.size as usize)?;
        let cpu = crate::provider::cpu_write(fd)?;
        for row in map.as_mut_slice().chunks_mut(self.pitch as usize).take(height as usize) {
            for px in row[..(width * 4) as usize].chunks_exact_mut(4) {
                px.copy_from_slice(&pixel);
            }
        }
        cpu.end()
    }
}

/// `DRM_IOCTL_GEM_CLOSE` on `fd`.
pub fn close_handle(fd: BorrowedFd<'_>, handle: u32) {
    let mut arg = DrmGemClose { handle, pad: 0 };
    // SAFETY: GEM_CLOSE takes a struct drm_gem_close.
    let _ = unsafe { ioctl_retry(fd, DRM_IOCTL_GEM_CLOSE, &mut arg) };
}

/// `DRM_IOCTL_MODE_CREATE_DUMB` + `DRM_IOCTL_PRIME_HANDLE_TO_FD` on any DRM
/// node `fd` (vgem, or a KMS card such as virtio-gpu's).
pub fn create_dumb(fd: BorrowedFd<'_>, width: u32, height: u32, bpp: u32) -> io::Result<DumbBuffer> {
    let mut create = DrmModeCreateDumb {
        width,
        height,
        bpp,
        ..Default::default()
    };
    // SAFETY: MODE_CREATE_DUMB takes a struct drm_mode_create_dumb.
    unsafe { ioctl_retry(fd, DRM_IOCTL_MODE_CREATE_DUMB, &mut create) }
        .map_err(|e| with_path(e, "DRM_IOCTL_MODE_CREATE_DUMB"))?;
    let mut prime = DrmPrimeHandle {
        handle: create.handle,
        flags: DRM_CLOEXEC | DRM_RDWR,
        fd: -1,
    };
    // SAFETY: PRIME_HANDLE_TO_FD takes a struct drm_prime_handle.
    let r = unsafe { ioctl_retry(fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut prime) };
    if let Err(e) = r {
        close_handle(fd, create.handle);
        return Err(with_path(e, "DRM_IOCTL_PRIME_HANDLE_TO_FD"));
    }
    Ok(DumbBuffer {
        handle: create.handle,
        // SAFETY: the kernel returned a new dma-buf fd that we now own.
        dmabuf: unsafe { OwnedFd::from_raw_fd(prime.fd) },
        pitch: create.pitch,
        size: create.size,
    })
}
