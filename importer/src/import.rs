//! The import decision: the one entry point that turns a client buffer
//! description into something the renderer can sample, picks the path, and
//! counts and logs it.
//!
//! DOC: which path a client dma-buf takes
//!
//! 0. A format and modifier pair the negotiation did not advertise
//!    (`vulkan::modifiers::FormatTable`) is refused before any Vulkan call
//!    and counted as `refused`.
//! 1. An invalid description (`DmabufDesc::validate_layout`, with the
//!    modifier's memory plane count) is the client's fault: refused,
//!    whatever the policy.
//! 2. [`ImportPath::CpuFallback`] when the policy says so for every buffer
//!    (`--cpu-fallback`), or when the format is YUV and its entry is not
//!    zero-copy (NV12 without a Y'CbCr sampler): its planes are copied
//!    through the CPU mapping and converted into an RGB texture on the GPU
//!    (`vulkan::yuv`).
//! 3. Otherwise the GPU import: [`ImportPath::ZeroCopyImage`] when the
//!    negotiated entry is zero-copy, the size is within its limits and the
//!    device binds the client's memory to an image with the client's layout
//!    (YUV: a multi-planar image sampled through its format's Y'CbCr
//!    conversion, `vulkan::ycbcr`), else [`ImportPath::GpuBufferCopy`]
//!    (RGB and LINEAR only: the memory imported as a buffer and copied on
//!    the GPU; `force_buffer_path` takes it always for RGB).
//! 4. A GPU import that fails for a reason of the device (not of the client:
//!    `falls_back`) takes [`ImportPath::CpuFallback`] instead, where the
//!    format has one (RGB, NV12); a YUV buffer whose plane layout the device
//!    cannot sample as it is, in another format, fails (`failed`).
//!
//! Nothing is copied here: a CPU-fallback buffer's first copy is made at its
//! first use (`ClientBuffer::refresh`, a full copy), after the commit that
//! attached it was held until its write fences or acquire point signaled.
//! So a buffer whose fence is still pending when it is created is never
//! refused for it. Copies of at least the policy's worker threshold belong on
//! a worker thread (`ClientBuffer::worker_copy`), which the compositor runs
//! while the commit is held.
//!
//! DOC: lifetime (docs/locking-rules.md, rule B3)
//!
//! [`Importer::destroy`] invalidates a buffer the client is done with under
//! its reservation and buries it; [`Importer::poll_graveyard`] (the frame
//! tick; try-locks only, never blocks) frees dead imports once the fences of
//! the frames that sampled them signaled. The counters go to `--stats`.

use std::sync::Arc;

use ash::vk;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::{info, warn};

use crate::dmabuf::{DmabufDesc, DmabufError};
use crate::format::FormatInfo;
use crate::vulkan::client_buffer::{self, ClientBuffer};
use crate::vulkan::modifiers::FormatTable;
use crate::vulkan::texture::{Backing, Texture};
use crate::vulkan::ycbcr::YcbcrSamplers;
use crate::vulkan::yuv::Nv12Pipeline;
use crate::vulkan::{BufferGraveyard, BufferReservation, Region, VkContext, VkError};

/// The path a client buffer took to the GPU. [`ImportPath::as_str`] is the
/// name in logs and the key in `--stats` (`"imports"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportPath {
    /// The client's dma-buf memory bound to a sampled VkImage: no copy at all.
    ZeroCopyImage,
    /// The client's dma-buf memory imported as a VkBuffer and copied into a
    /// compositor image on the GPU. No CPU copy.
    GpuBufferCopy,
    /// wl_shm (or other CPU memory) uploaded through a staging buffer.
    ShmUpload,
    /// A client dma-buf read through its CPU mapping and uploaded through a
    /// staging buffer (YUV: converted on the GPU after the upload).
    CpuFallback,
}

impl ImportPath {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportPath::ZeroCopyImage => "zero_copy_image",
            ImportPath::GpuBufferCopy => "gpu_buffer_copy",
            ImportPath::ShmUpload => "shm_upload",
            ImportPath::CpuFallback => "cpu_fallback",
        }
    }
}

/// Imports by path: `"imports"` in `--stats`. `refused` counts buffers whose
/// format and modifier were not advertised (no Vulkan call was made);
/// `failed` those no path could import.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportStats {
    pub zero_copy_image: u64,
    pub gpu_buffer_copy: u64,
    pub shm_upload: u64,
    pub cpu_fallback: u64,
    pub refused: u64,
    pub failed: u64,
    /// Of `cpu_fallback`: GPU imports that failed for a device reason first.
    pub fell_back: u64,
}

/// What happened to one import, for the counters.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Imported(ImportPath),
    Refused,
    Failed,
}

#[derive(Debug, Default)]
struct ImportCounters {
    by_outcome: [AtomicU64; 6],
    fell_back: AtomicU64,
}

impl ImportCounters {
    fn record(&self, outcome: Outcome) {
        let i = match outcome {
            Outcome::Imported(ImportPath::ZeroCopyImage) => 0,
            Outcome::Imported(ImportPath::GpuBufferCopy) => 1,
            Outcome::Imported(ImportPath::ShmUpload) => 2,
            Outcome::Imported(ImportPath::CpuFallback) => 3,
            Outcome::Refused => 4,
            Outcome::Failed => 5,
        };
        self.by_outcome[i].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ImportStats {
        let n = |i: usize| self.by_outcome[i].load(Ordering::Relaxed);
        ImportStats {
            zero_copy_image: n(0),
            gpu_buffer_copy: n(1),
            shm_upload: n(2),
            cpu_fallback: n(3),
            refused: n(4),
            failed: n(5),
            fell_back: self.fell_back.load(Ordering::Relaxed),
        }
    }
}

/// Client-buffer reservations: `"reservations"` in `--stats`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationStats {
    /// Client buffers imported under a reservation.
    pub created: u64,
    /// Of those, destroyed (invalidated and buried), in all.
    pub destroyed: u64,
    /// Destroyed while running because the client's buffer went away, not at
    /// exit.
    pub destroyed_gone: u64,
    /// Dead imports and mappings freed by the graveyard, in all.
    pub freed: u64,
    /// Of those, freed by the frame tick's poll while running (not at exit).
    pub freed_running: u64,
    /// Reservations still buried (waiting for fences) when sampled.
    pub buried: u64,
}

/// How client buffers are imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportPolicy {
    /// GPU imports take the buffer path (tests the GPU copy).
    pub force_buffer_path: bool,
    /// Every dma-buf takes the CPU fallback (tests that path).
    pub cpu_fallback: bool,
    /// CPU-fallback copies of at least this many bytes belong on a worker.
    pub worker_threshold: u64,
}

impl ImportPolicy {
    /// Default worker threshold: 1 MiB.
    pub const DEFAULT_WORKER_THRESHOLD: u64 = 1 << 20;
}

impl Default for ImportPolicy {
    fn default() -> Self {
        ImportPolicy {
            force_buffer_path: false,
            cpu_fallback: false,
            worker_threshold: Self::DEFAULT_WORKER_THRESHOLD,
        }
    }
}

/// Whether a GPU import error is the device's limit (take the CPU fallback)
/// rather than the client's fault (an invalid buffer stays an error).
fn falls_back(e: &VkError) -> bool {
    !matches!(e, VkError::Dmabuf(_) | VkError::Io(_))
}

/// Imports client buffers, counts the paths, and frees destroyed ones after
/// their fences.
pub struct Importer {
    ctx: Arc<VkContext>,
    texture_layout: vk::DescriptorSetLayout,
    nv12: Arc<Nv12Pipeline>,
    /// Y'CbCr conversions, where the device has `samplerYcbcrConversion`.
    ycbcr: Option<Arc<YcbcrSamplers>>,
    policy: ImportPolicy,
    formats: FormatTable,
    counters: ImportCounters,
    graveyard: BufferGraveyard,
    reservations: ReservationStats,
}

impl std::fmt::Debug for Importer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer")
            .field("policy", &self.policy)
            .field("imports", &self.counters.snapshot())
            .finish_non_exhaustive()
    }
}

impl Importer {
    pub(crate) fn new(
        ctx: &Arc<VkContext>,
        texture_layout: vk::DescriptorSetLayout,
        policy: ImportPolicy,
    ) -> Result<Self, VkError> {
        let negotiated = FormatTable::negotiate(&**ctx);
        // A policy that copies every buffer can take LINEAR only.
        let formats = if policy.cpu_fallback || policy.force_buffer_path {
            negotiated.linear_only(policy.cpu_fallback)
        } else {
            negotiated
        };
        info!("dma-buf formats: {}", formats.summary());
        Ok(Importer {
            ctx: ctx.clone(),
            texture_layout,
            nv12: Arc::new(Nv12Pipeline::new(ctx)?),
            ycbcr: match ctx.caps.sampler_ycbcr_conversion {
                true => Some(Arc::new(YcbcrSamplers::new(ctx)?)),
                false => None,
            },
            policy,
            formats,
            counters: ImportCounters::default(),
            graveyard: BufferGraveyard::new(),
            reservations: ReservationStats::default(),
        })
    }

    pub fn policy(&self) -> ImportPolicy {
        self.policy
    }

    /// Whether YUV is sampled through Y'CbCr conversions (so a client's
    /// colour representation can be honoured).
    pub fn samples_ycbcr(&self) -> bool {
        self.ycbcr.is_some()
    }

    /// The negotiated formats: exactly what may be advertised.
    pub fn formats(&self) -> &FormatTable {
        &self.formats
    }

    /// Imports a client dma-buf along the path the module doc describes,
    /// under a new reservation. Counted and logged.
    ///
    /// Locks: none may be a reservation (creates one, "attach", and takes it
    /// for the import). Never waits for a fence and never reads the pixels.
    pub fn import(&mut self, desc: &DmabufDesc) -> Result<ClientBuffer, VkError> {
        let result = self.import_uncounted(desc);
        match &result {
            Ok((buf, path)) => {
                self.counters.record(Outcome::Imported(*path));
                self.reservations.created += 1;
                info!(
                    width = desc.width,
                    height = desc.height,
                    format = ?desc.fourcc,
                    stride = desc.planes.first().map(|p| p.stride),
                    path = path.as_str(),
                    buffer = buf.id(),
                    "imported dma-buf"
                );
            }
            Err(e @ VkError::Dmabuf(DmabufError::NotAdvertised { .. })) => {
                self.counters.record(Outcome::Refused);
                warn!("dma-buf refused before import: {e}");
            }
            Err(e) => {
                self.counters.record(Outcome::Failed);
                warn!(format = ?desc.fourcc, width = desc.width, height = desc.height, "dma-buf import failed: {e}");
            }
        }
        result.map(|(buf, _)| buf)
    }

    fn import_uncounted(&self, desc: &DmabufDesc) -> Result<(ClientBuffer, ImportPath), VkError> {
        let modifier = u64::from(desc.modifier);
        let entry = *self
            .formats
            .entry(desc.fourcc, modifier)
            .ok_or(DmabufError::NotAdvertised {
                format: desc.fourcc,
                modifier,
            })?;
        let format = desc.validate_layout(entry.planes as usize)?;
        if !self.policy.cpu_fallback && (!format.yuv || entry.zero_copy) {
            let (max_w, max_h) = entry.max_extent;
            let forced_copy = self.policy.force_buffer_path && !format.yuv;
            let try_image = entry.zero_copy && !forced_copy && desc.width <= max_w && desc.height <= max_h;
            match self.import_gpu(desc, (format, entry.explicit_layout), try_image) {
                Ok(imported) => return Ok(imported),
                // The CPU fallback reads LINEAR rows of the formats it converts only.
                Err(e) if !falls_back(&e) || !desc.is_linear() || !format.cpu_converts() => return Err(e),
                Err(e) => {
                    self.counters.fell_back.fetch_add(1, Ordering::Relaxed);
                    info!(format = ?desc.fourcc, "GPU import impossible ({e}); taking the CPU fallback")
                }
            }
        }
        Ok((self.import_cpu(desc)?, ImportPath::CpuFallback))
    }

    fn import_gpu(
        &self,
        desc: &DmabufDesc,
        (format, explicit_layout): (FormatInfo, bool),
        try_image: bool,
    ) -> Result<(ClientBuffer, ImportPath), VkError> {
        let ycbcr = match (format.ycbcr, &self.ycbcr) {
            (Some(_), Some(samplers)) => Some(samplers.clone()),
            _ => None,
        };
        let resv = Arc::new(BufferReservation::new());
        let texture = {
            let mut guard = resv.lock();
            let layout = self.texture_layout;
            let how = (format, ycbcr, explicit_layout);
            client_buffer::import_gpu(&mut guard, &self.ctx, layout, desc, how, try_image)?
        };
        let buf = ClientBuffer::new(resv, texture, None);
        Ok((buf.clone(), Importer::path_of(&buf)))
    }

    /// The path `buf` took.
    pub fn path_of(buf: &ClientBuffer) -> ImportPath {
        match (buf.cpu_source(), buf.texture().backing()) {
            (Some(_), _) => ImportPath::CpuFallback,
            (None, Backing::ClientImage) => ImportPath::ZeroCopyImage,
            (None, _) => ImportPath::GpuBufferCopy,
        }
    }

    /// Maps the buffer and creates its upload target; copies nothing yet.
    fn import_cpu(&self, desc: &DmabufDesc) -> Result<ClientBuffer, VkError> {
        let resv = Arc::new(BufferReservation::new());
        let (texture, source) = {
            let mut guard = resv.lock();
            let (ctx, layout, nv12) = (&self.ctx, self.texture_layout, &self.nv12);
            let threshold = self.policy.worker_threshold;
            client_buffer::import_cpu(&mut guard, &resv, ctx, layout, nv12, desc, threshold)?
        };
        Ok(ClientBuffer::new(resv, texture, Some(source)))
    }

    /// A texture filled from CPU memory (`data` rows of `stride` bytes):
    /// shm buffers and memory uploads. Counted as [`ImportPath::ShmUpload`].
    ///
    /// Locks: none may be a reservation or a device lock when `data` is
    /// client memory (rule B6); the texture has no reservation of its own.
    pub fn upload(
        &self,
        data: &[u8],
        format: FormatInfo,
        width: u32,
        height: u32,
        stride: usize,
    ) -> Result<Arc<Texture>, VkError> {
        let tex = Texture::new_owned(&self.ctx, self.texture_layout, format, width, height)?;
        tex.queue_upload(data, stride, Region::full(width, height))?;
        self.counters.record(Outcome::Imported(ImportPath::ShmUpload));
        Ok(Arc::new(tex))
    }

    /// The client is done with `buf` (`running`), or the compositor is
    /// stopping: invalidate under its lock and bury it (rule B3).
    ///
    /// Locks: none may be a reservation (takes this one).
    pub fn destroy(&mut self, buf: &ClientBuffer, running: bool) {
        buf.reservation().destroy(&mut self.graveyard);
        self.reservations.destroyed += 1;
        self.reservations.destroyed_gone += u64::from(running);
    }

    /// Frees dead imports whose fences signaled. Never blocks (try-locks
    /// only). Returns the entries freed.
    pub fn poll_graveyard(&mut self, running: bool) -> usize {
        let freed = self.graveyard.poll();
        self.reservations.freed += freed as u64;
        if running {
            self.reservations.freed_running += freed as u64;
        }
        freed
    }

    /// Import counters by path.
    pub fn stats(&self) -> ImportStats {
        self.counters.snapshot()
    }

    /// Reservation counters.
    pub fn reservation_stats(&self) -> ReservationStats {
        ReservationStats {
            buried: self.graveyard.len() as u64,
            ..self.reservations
        }
    }
}
