//! The CPU fallback's source: a client buffer the GPU cannot import, read
//! through its CPU mapping and uploaded into a compositor-owned image.
//!
//! DOC: when it is used
//!
//! `crate::import::Importer` decides: when the GPU import is impossible or
//! fails for a device reason (no dma-buf import, a modifier or layout the
//! device cannot bind, a buffer from another device), for YUV formats (their
//! planes are converted on the GPU from a staged copy), and for every buffer
//! when the policy says so (`--cpu-fallback`). Invalid descriptions never get
//! here: they are client errors.
//!
//! DOC: locking (docs/locking-rules.md, rules B1, B2, B6)
//!
//! A source shares its buffer's reservation
//! ([`super::BufferReservation`]) with the upload target, which
//! is that buffer's GPU import. The mapping is created under the reservation
//! ([`CpuSource::map`] takes the guard); every copy goes through
//! [`with_cpu_access`]: lock → pin → unlock → implicit fences →
//! `DMA_BUF_IOCTL_SYNC` START → row copy into a staging buffer → END →
//! lock → unpin. No reservation or device lock is held while client memory is
//! read, and only fds that cannot shrink are mapped (see `dmabuf::classify_fd`),
//! so the read cannot fault.
//!
//! DOC: where copies run
//!
//! [`CpuSource::stage`] needs no lock and touches no Vulkan queue (it only
//! allocates a host-visible staging buffer), so it may run on a worker thread;
//! the result ([`StagedUpload`]) is handed back to the event loop and queued on
//! the texture (`ClientBuffer::accept_staged`). A source whose copy is at
//! least the policy's worker threshold says so ([`CpuSource::on_worker`]); the
//! compositor then copies it on its worker while the commit is held.

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::memory::HostBuffer;
use super::texture::Texture;
use super::upload::StagedUpload;
use super::yuv::Nv12Params;
use super::{BufferGuard, BufferReservation, Region, VkContext, VkError};
use crate::cpu::{copy_plane_rows, map_planes, with_cpu_access, CpuError, CpuView, PlaneSource, PollReadable};
use crate::dmabuf::DmabufDesc;
use crate::format::FormatInfo;

/// The CPU side of a fallback import: the client's buffer, mapped.
pub struct CpuSource {
    resv: Arc<BufferReservation>,
    ctx: Arc<VkContext>,
    pub width: u32,
    pub height: u32,
    /// The client's format (RGB, or YUV converted on the GPU).
    pub format: FormatInfo,
    /// Copies belong on a worker thread (at least the worker threshold).
    on_worker: bool,
    /// A worker already staged the copy the next refresh would make.
    staged_ahead: AtomicBool,
    /// A full copy was made (until then a refresh copies everything, whatever
    /// the damage).
    copied: AtomicBool,
}

impl std::fmt::Debug for CpuSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuSource")
            .field("buffer", &self.resv.id())
            .field("size", &(self.width, self.height))
            .field("format", &self.format.fourcc)
            .field("on_worker", &self.on_worker)
            .finish()
    }
}

fn cpu_err(e: CpuError) -> VkError {
    VkError::Unsupported(format!("CPU fallback: {e}"))
}

impl CpuSource {
    /// Validates `desc` and maps its planes as the buffer's CPU mapping.
    /// `worker_threshold`: copies of at least this many bytes belong on a
    /// worker thread.
    ///
    /// Locks: this buffer's reservation (the guard; `resv` is the reservation
    /// it locks). Mapping work, rule B1; does not block.
    pub fn map(
        guard: &mut BufferGuard<'_>,
        resv: &Arc<BufferReservation>,
        ctx: &Arc<VkContext>,
        desc: &DmabufDesc,
        worker_threshold: u64,
    ) -> Result<CpuSource, VkError> {
        assert_eq!(guard.id(), resv.id(), "CpuSource::map: guard of another buffer");
        let format = desc.validate()?;
        // The CPU reads rows at offset + y * stride: only the LINEAR layout
        // means that. A tiled (or implicit, driver-private) layout read that
        // way would be garbage, so it is refused rather than shown wrong.
        if !desc.is_linear() {
            return Err(VkError::Unsupported(format!(
                "CPU fallback reads LINEAR buffers only, not modifier {:?}",
                desc.modifier
            )));
        }
        let planes: Vec<PlaneSource<'_>> = desc
            .planes
            .iter()
            .zip(format.planes)
            .map(|(p, layout)| PlaneSource {
                fd: p.fd.as_fd(),
                offset: u64::from(p.offset),
                stride: u64::from(p.stride),
                row_bytes: layout.row_bytes(desc.width),
                rows: u64::from(layout.extent(desc.width, desc.height).1),
            })
            .collect();
        map_planes(guard, &planes).map_err(cpu_err)?;
        let mut source = CpuSource {
            resv: resv.clone(),
            ctx: ctx.clone(),
            width: desc.width,
            height: desc.height,
            format,
            on_worker: false,
            staged_ahead: AtomicBool::new(false),
            copied: AtomicBool::new(false),
        };
        source.on_worker = source.copy_bytes() >= worker_threshold;
        Ok(source)
    }

    /// The buffer's reservation.
    pub fn reservation(&self) -> &Arc<BufferReservation> {
        &self.resv
    }

    /// Bytes one full copy moves: every plane's rows, tightly packed.
    pub fn copy_bytes(&self) -> u64 {
        self.format
            .planes
            .iter()
            .map(|p| p.row_bytes(self.width) * u64::from(p.extent(self.width, self.height).1))
            .sum()
    }

    /// Whether copies of this buffer belong on a worker thread.
    pub fn on_worker(&self) -> bool {
        self.on_worker
    }

    /// Marks the next refresh's copy as made already (a worker staged it).
    pub(crate) fn set_staged_ahead(&self) {
        self.staged_ahead.store(true, Ordering::Release);
        self.copied.store(true, Ordering::Release);
    }

    /// Whether a full copy has been made yet.
    pub(crate) fn copied(&self) -> bool {
        self.copied.load(Ordering::Acquire)
    }

    /// Whether a worker staged the copy this refresh would make (and clears it).
    pub(crate) fn take_staged_ahead(&self) -> bool {
        self.staged_ahead.swap(false, Ordering::AcqRel)
    }

    /// YUV: every plane, tightly packed, into a storage buffer the
    /// conversion shader reads (always the whole buffer). Runs inside the
    /// access bracket, unlocked.
    fn stage_yuv(&self, view: &CpuView<'_>) -> Result<StagedUpload, CpuError> {
        let (w, h) = (self.width, self.height);
        let sizes: Vec<(usize, usize)> = self
            .format
            .planes
            .iter()
            .map(|p| (p.row_bytes(w) as usize, p.extent(w, h).1 as usize))
            .collect();
        let total: usize = sizes.iter().map(|(row, rows)| row * rows).sum();
        let usage = ash::vk::BufferUsageFlags::STORAGE_BUFFER;
        let upload = |e: VkError| CpuError::Upload(e.to_string());
        let mut buf = HostBuffer::new(&self.ctx, total.next_multiple_of(4), usage).map_err(upload)?;
        let dst = buf.bytes_mut();
        let mut offsets = Vec::with_capacity(sizes.len());
        let mut at = 0;
        for (i, &(row, rows)) in sizes.iter().enumerate() {
            copy_plane_rows(view, i, row, rows, &mut dst[at..at + row * rows], row)?;
            offsets.push(at);
            at += row * rows;
        }
        let params = Nv12Params {
            width: w,
            height: h,
            y_offset: offsets[0] as u32,
            y_stride: sizes[0].0 as u32,
            uv_offset: offsets[1] as u32,
            uv_stride: sizes[1].0 as u32,
        };
        Ok(StagedUpload::nv12(buf, params))
    }

    /// Copies `region` (all if `None`) of an RGB buffer, or the whole of a
    /// YUV one, into a fresh staging buffer.
    ///
    /// Locks: none may be held (the access bracket takes this buffer's
    /// reservation twice, briefly; the copy runs unlocked). Safe on any
    /// thread. The implicit write fences must already be signaled (the commit
    /// was held until then), so the readiness poll does not wait.
    pub fn stage(&self, region: Option<Region>) -> Result<StagedUpload, VkError> {
        self.stage_waiting(region, Duration::ZERO)
    }

    /// [`CpuSource::stage`], first waiting up to `wait` for the implicit
    /// write fences (a poll with a timeout: blocking). For worker threads,
    /// which may block; never on the event loop with a non-zero `wait`.
    ///
    /// Locks: none may be held (`lockdep::might_block`).
    pub fn stage_waiting(&self, region: Option<Region>, wait: Duration) -> Result<StagedUpload, VkError> {
        let region = region.unwrap_or(Region::full(self.width, self.height));
        let ready = PollReadable { timeout: wait };
        let size = (self.width, self.height);
        with_cpu_access(&*self.resv, &ready, |view| {
            if self.format.yuv {
                return self.stage_yuv(view);
            }
            let (bytes, stride) = view.plane_bytes(0).ok_or(CpuError::NoPlane(0))?;
            StagedUpload::copy(&self.ctx, self.format, size, bytes, stride, region)
                .map_err(|e| CpuError::Upload(e.to_string()))
        })
        .map_err(cpu_err)?
        .map_err(cpu_err)
    }

    /// [`CpuSource::stage`] and queue the result on `tex` (on this thread).
    ///
    /// Locks: none may be held (see [`CpuSource::stage`]).
    pub fn copy_into(&self, tex: &Texture, region: Option<Region>) -> Result<(), VkError> {
        tex.queue_staged(self.stage(region)?);
        if region.is_none() {
            self.copied.store(true, Ordering::Release);
        }
        Ok(())
    }
}
