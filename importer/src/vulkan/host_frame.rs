//! Host frames: a frame the compositor thread writes into the target
//! itself, submitting nothing to the device.
//!
//! DOC: why
//!
//! A CPU device (lavapipe) hands every submission to its queue's
//! submission thread, which replays the command buffers and signals the
//! fence. Where a frame only copies a few client rectangles, that hand-over
//! costs more than the copies (docs/performance.md). Such a frame is
//! written on the host instead: the same rows, copied by the compositor
//! thread from the client's mapped dma-buf into the mapped target.
//!
//! DOC: when a frame is written on the host
//!
//! All of these hold, or the frame is submitted as recorded:
//!
//! * the target is mapped ([`TargetMapping`]: an offscreen target of a CPU
//!   device, LINEAR in host-visible coherent memory, resting in GENERAL)
//!   and a frame was rendered into it before (the first one defines its
//!   layout on the queue);
//! * the frame has no render pass: the copy pass took every quad (opaque,
//!   1:1, untransformed, the target's bytes) and nothing was cleared;
//! * every texture it used is a client buffer of one LINEAR plane, imported
//!   zero-copy or through the buffer path, and its rows are read straight
//!   from the client's memory. Textures are prepared only when a frame is
//!   submitted (`Recorder::finish`), so a frame written here changes no
//!   texture's tracked state: a buffer-path texture's queued copies stay
//!   queued (merged, `Texture::queue_client_copy`) for the next submitted
//!   frame that samples it. Uploads (shm, the CPU fallback) and YUV are
//!   not read from client memory here; those frames are submitted;
//! * no earlier submission is still running (`RenderCore` checks without
//!   waiting): frames and read-backs of the target have finished, so the
//!   host is its only user;
//! * every client buffer's implicit write fences have signaled (a poll with
//!   no timeout). A pending one sends the frame to the queue, which waits
//!   on the GPU or has had the commit held until it signaled.
//!
//! A failure part-way (a mapping refused, a fence still pending) submits
//! the frame as recorded. Its copies write the same rectangles with the
//! same pixels, so what the host wrote already is simply written again.
//!
//! DOC: locks (docs/locking-rules.md)
//!
//! [`HostFrame::write`] runs with no reservation held. A buffer's mapping
//! is made under its reservation (rule B1, `map_planes`); its rows are read
//! inside `with_cpu_access` (rule B2: pinned, fences polled, the
//! `DMA_BUF_IOCTL_SYNC` bracket, no lock held). The target's mapping has
//! its own leaf mutex, taken inside that bracket.
//!
//! DOC: ordering with the device
//!
//! Host writes to coherent memory made before a `vkQueueSubmit` are visible
//! to the work it submits, so the next submitted frame or read-back sees
//! them. Each submitted frame into a mapped target ends with a barrier that
//! makes its writes available to the host (`Recorder::finish`); its fence
//! has signaled before the host writes again (the idle check above).

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ash::vk;

use super::copy_pass::within;
use super::texture::{HostPlane, Texture};
use super::{BufferReservation, VkContext, VkError, VkResultExt};
use crate::cpu::{copy_plane_rect, map_planes, with_cpu_access, CpuError, PlaneSource, PollReadable};

/// A target's memory, mapped for the host for as long as the target lives.
/// Owns the memory: frees it on drop.
pub(crate) struct TargetMapping {
    ctx: Arc<VkContext>,
    memory: vk::DeviceMemory,
    ptr: *mut u8,
    /// The image's size in pixels and bytes per pixel.
    width: u32,
    height: u32,
    bpp: usize,
    /// The image's texels: `len` bytes from `offset`, rows `row_pitch` apart.
    offset: usize,
    len: usize,
    row_pitch: usize,
    /// Host writers, one at a time (a leaf lock).
    write: Mutex<()>,
}

// SAFETY: the mapping is memory owned by this value; it is written only
// through `with_rows`, under `write`.
unsafe impl Send for TargetMapping {}
unsafe impl Sync for TargetMapping {}

impl TargetMapping {
    /// Maps `memory` (host-visible, coherent, bound to a LINEAR image of
    /// one subresource laid out as `layout`) and takes ownership of it; on
    /// error it stays the caller's.
    pub(crate) fn new(
        ctx: &Arc<VkContext>,
        memory: vk::DeviceMemory,
        (width, height, bpp): (u32, u32, usize),
        layout: vk::SubresourceLayout,
    ) -> Result<TargetMapping, VkError> {
        let mapped = unsafe {
            ctx.device
                .map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
        };
        let ptr = mapped.call("vkMapMemory(target)")?.cast::<u8>();
        Ok(TargetMapping {
            ctx: ctx.clone(),
            memory,
            ptr,
            width,
            height,
            bpp,
            offset: layout.offset as usize,
            len: layout.size as usize,
            row_pitch: layout.row_pitch as usize,
            write: Mutex::new(()),
        })
    }

    /// Runs `f` on the image's bytes and row pitch.
    ///
    /// Locks: the mapping's own (leaf). The caller makes sure the device
    /// is not using the target ([`HostFrame`]'s rules).
    fn with_rows<R>(&self, f: impl FnOnce(&mut [u8], usize) -> R) -> R {
        let _one_writer = self.write.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: [offset, offset + len) is the image's subresource inside
        // the mapped allocation, alive as long as `self`; `write` makes this
        // the only slice of it.
        let bytes = unsafe { std::slice::from_raw_parts_mut(self.ptr.add(self.offset), self.len) };
        f(bytes, self.row_pitch)
    }

    /// Whether `copy`'s destination lies inside the image.
    fn holds(&self, copy: &vk::ImageCopy) -> bool {
        within(
            (copy.dst_offset.x, copy.dst_offset.y),
            (copy.extent.width, copy.extent.height),
            (self.width, self.height),
        )
    }
}

impl Drop for TargetMapping {
    fn drop(&mut self) {
        // Freeing the memory unmaps it.
        unsafe { self.ctx.device.free_memory(self.memory, None) };
    }
}

/// Why a frame could not be written on the host (it is submitted instead).
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostFrameError {
    #[error("mapping a client buffer: {0}")]
    Map(CpuError),
    #[error("reading a client buffer: {0}")]
    Read(#[from] CpuError),
}

/// One client buffer's rectangles in a host frame.
struct Source {
    resv: Arc<BufferReservation>,
    texture: Arc<Texture>,
    plane: HostPlane,
    copies: Vec<vk::ImageCopy>,
}

/// A frame that can be written on the host: its copies, by client buffer.
pub(crate) struct HostFrame {
    target: Arc<TargetMapping>,
    sources: Vec<Source>,
}

impl HostFrame {
    /// The host frame of a recorded frame's `copies`, if every one comes
    /// from a client buffer the host can read (`sampled`: the frame's client
    /// buffers and their textures). The caller checks the rest of the
    /// module's rules (no render pass, every texture a copy source, the
    /// target rendered before and idle).
    pub(crate) fn plan(
        target: &Arc<TargetMapping>,
        copies: &[(Arc<Texture>, vk::ImageCopy)],
        sampled: &[(Arc<BufferReservation>, Arc<Texture>)],
    ) -> Option<HostFrame> {
        let mut sources: Vec<Source> = Vec::new();
        for (tex, copy) in copies {
            if !target.holds(copy) || tex.format.bytes_per_pixel as usize != target.bpp {
                return None;
            }
            if let Some(source) = sources.iter_mut().find(|s| Arc::ptr_eq(&s.texture, tex)) {
                source.copies.push(*copy);
                continue;
            }
            let plane = tex
                .host_plane
                .filter(|_| !tex.host_unmappable.load(Ordering::Relaxed))?;
            let (resv, _) = sampled.iter().find(|(_, t)| Arc::ptr_eq(t, tex))?;
            sources.push(Source {
                resv: resv.clone(),
                texture: tex.clone(),
                plane,
                copies: vec![*copy],
            });
        }
        Some(HostFrame {
            target: target.clone(),
            sources,
        })
    }

    /// The client dma-bufs the frame reads.
    pub(crate) fn dmabufs(&self) -> usize {
        self.sources.iter().map(|s| s.texture.dmabuf_fds().len()).sum()
    }

    /// Copies every rectangle from the client's memory into the target.
    ///
    /// Locks: none may be a reservation (each source's is taken briefly to
    /// map it and to pin the mapping); the target mapping's leaf lock.
    /// Does not block: fences are polled with no timeout.
    pub(crate) fn write(&self) -> Result<(), HostFrameError> {
        for source in &self.sources {
            self.write_source(source)?;
        }
        Ok(())
    }

    fn write_source(&self, source: &Source) -> Result<(), HostFrameError> {
        let tex = &source.texture;
        let fd = tex
            .dmabuf_fds()
            .first()
            .ok_or(HostFrameError::Map(CpuError::NoPlane(0)))?;
        let bpp = u64::from(tex.format.bytes_per_pixel);
        let plane = PlaneSource {
            fd: fd.as_fd(),
            offset: source.plane.offset,
            stride: source.plane.stride,
            row_bytes: u64::from(tex.width) * bpp,
            rows: u64::from(tex.height),
        };
        if let Err(e) = map_planes(&mut source.resv.lock(), &[plane]) {
            tex.host_unmappable.store(true, Ordering::Relaxed);
            return Err(HostFrameError::Map(e));
        }
        let now = PollReadable {
            timeout: Duration::ZERO,
        };
        let bpp = self.target.bpp;
        with_cpu_access(&source.resv, &now, |view| {
            self.target.with_rows(|rows, pitch| {
                source.copies.iter().try_for_each(|c| {
                    let at = c.dst_offset.y as usize * pitch + c.dst_offset.x as usize * bpp;
                    let dst = rows.get_mut(at..).ok_or(CpuError::CopyBounds {
                        rows: c.extent.height as usize,
                        width: c.extent.width as usize * bpp,
                        what: "target",
                    })?;
                    let origin = (c.src_offset.x as usize * bpp, c.src_offset.y as usize);
                    let size = (c.extent.width as usize * bpp, c.extent.height as usize);
                    copy_plane_rect(view, 0, origin, size, dst, pitch)
                })
            })
        })??;
        Ok(())
    }
}
