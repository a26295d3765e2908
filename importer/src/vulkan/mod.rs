//! The Vulkan layer of the importer: the mechanisms the import decision
//! (`crate::import`) and the renderer core (`crate::renderer`) are built from.
//!
//! * [`context`], [`caps`], [`device_choice`]: instance, capabilities, which device.
//! * [`memory`]: dma-buf memory imports, host-visible buffers, owned allocations.
//! * [`modifiers`]: which (format, modifier) pairs are advertised, and why.
//! * [`dmabuf_image`]: VkImages and VkBuffers bound to a dma-buf's memory.
//! * [`texture`]: sampled images (client image, buffer-path copy, owned).
//! * [`upload`]: staged uploads and the copies queued on textures.
//! * [`barrier`]: layout transitions and foreign queue-family transfers.
//! * [`cpu_source`]: the CPU fallback's mapped source and its staged copies.
//! * [`client_buffer`]: an imported client buffer under its reservation.
//! * [`yuv`]: the NV12 → RGBA compute conversion.
//! * [`pipeline`]: the quad pipelines, blending or opaque (shaders from `shaders/`).
//! * [`target`]: render targets (offscreen, imported scan-out) and read-backs.
//! * [`ring`]: the command ring, frames in flight and their fences.
//! * [`recorder`]: recording a frame; locking and fencing what it samples.
//! * `copy_pass`: opaque 1:1 quads copied into the target instead of drawn.
//! * [`semaphore`]: sync_files ↔ `SYNC_FD` semaphores.

pub mod barrier;
pub mod caps;
pub mod census;
pub mod client_buffer;
pub mod context;
mod copy_pass;
pub mod cpu_source;
pub mod device_choice;
pub mod dmabuf_image;
mod host_frame;
pub mod memory;
pub mod modifiers;
pub mod pipeline;
pub mod recorder;
pub mod ring;
pub mod semaphore;
pub mod target;
pub mod texture;
pub mod upload;
pub mod ycbcr;
pub mod yuv;

pub use caps::DeviceCaps;
pub use context::VkContext;
pub use device_choice::DeviceSelection;

use ash::vk;
use thiserror::Error;

use crate::cpu::CpuMapping;
use crate::dmabuf::DmabufError;
use crate::reservation::{DeviceId, Graveyard, Reservation, ReservationGuard};
use texture::Texture;

/// The reservation of one imported client buffer: its GPU import is the
/// texture the renderer samples, its CPU mapping exists on the CPU fallback
/// (docs/locking-rules.md, part B).
pub type BufferReservation = Reservation<Texture, CpuMapping>;
/// Its guard: proof the buffer's reservation is held.
pub type BufferGuard<'a> = ReservationGuard<'a, Texture, CpuMapping>;
/// Reservations of destroyed buffers, waiting for their fences.
pub type BufferGraveyard = Graveyard<Texture, CpuMapping>;

/// The renderer's one device (the compositor has a single GPU so far).
pub const DEVICE: DeviceId = DeviceId(0);

/// Errors of the Vulkan layer.
#[derive(Debug, Error)]
pub enum VkError {
    #[error("cannot load the Vulkan loader: {0}")]
    Loading(#[from] ash::LoadingError),
    #[error("{call} failed: {result}")]
    Call { call: &'static str, result: vk::Result },
    #[error("no Vulkan device matches {0:?}")]
    NoDevice(String),
    #[error("the device has no graphics queue")]
    NoQueue,
    #[error("the device cannot import dma-bufs (VK_EXT_external_memory_dma_buf missing)")]
    NoDmabufImport,
    #[error("no memory type fits ({0})")]
    NoMemoryType(&'static str),
    #[error("invalid dma-buf: {0}")]
    Dmabuf(#[from] DmabufError),
    #[error("cannot import: {0}")]
    Unsupported(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Reservation(#[from] crate::reservation::ResvError),
}

impl VkError {
    /// Whether this is `VK_ERROR_DEVICE_LOST`: the device is gone and every
    /// object made from it is useless.
    pub fn is_device_lost(&self) -> bool {
        matches!(
            self,
            VkError::Call {
                result: vk::Result::ERROR_DEVICE_LOST,
                ..
            }
        )
    }
}

/// A rectangle in buffer pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Region {
    /// The whole of a `width`×`height` image.
    pub fn full(width: u32, height: u32) -> Region {
        Region {
            x: 0,
            y: 0,
            width,
            height,
        }
    }

    fn overlaps(&self, o: &Region) -> bool {
        self.x < o.x + o.width && o.x < self.x + self.width && self.y < o.y + o.height && o.y < self.y + self.height
    }

    fn union(&self, o: &Region) -> Region {
        let (x, y) = (self.x.min(o.x), self.y.min(o.y));
        let x1 = (self.x + self.width).max(o.x + o.width);
        let y1 = (self.y + self.height).max(o.y + o.height);
        Region {
            x,
            y,
            width: x1 - x,
            height: y1 - y,
        }
    }

    /// Regions covering at least `regions` with none overlapping another
    /// (overlapping ones are merged into their bounding box), so one copy
    /// command never writes a pixel twice.
    pub fn disjoint(regions: Vec<Region>) -> Vec<Region> {
        let mut out: Vec<Region> = Vec::with_capacity(regions.len());
        for mut r in regions {
            while let Some(i) = out.iter().position(|o| o.overlaps(&r)) {
                r = r.union(&out.swap_remove(i));
            }
            out.push(r);
        }
        out
    }

    /// Clamps to a `width`×`height` image; `None` if nothing is left.
    pub fn clamp(self, width: u32, height: u32) -> Option<Region> {
        let x1 = self.x.saturating_add(self.width).min(width);
        let y1 = self.y.saturating_add(self.height).min(height);
        (self.x < x1 && self.y < y1).then(|| Region {
            x: self.x,
            y: self.y,
            width: x1 - self.x,
            height: y1 - self.y,
        })
    }
}

/// Turns a `vk::Result` into a [`VkError`] naming the call.
pub(crate) trait VkResultExt<T> {
    fn call(self, call: &'static str) -> Result<T, VkError>;
}

impl<T> VkResultExt<T> for Result<T, vk::Result> {
    fn call(self, call: &'static str) -> Result<T, VkError> {
        self.map_err(|result| VkError::Call { call, result })
    }
}

#[cfg(test)]
mod tests {
    use super::Region;

    fn r(x: u32, y: u32, width: u32, height: u32) -> Region {
        Region { x, y, width, height }
    }

    #[test]
    fn overlapping_regions_merge_and_disjoint_ones_stay() {
        let out = Region::disjoint(vec![r(0, 0, 10, 10), r(20, 20, 5, 5), r(5, 5, 10, 10), r(14, 14, 7, 7)]);
        assert_eq!(out, vec![r(0, 0, 25, 25)], "a chain of overlaps becomes one box");
        let apart = Region::disjoint(vec![r(0, 0, 4, 4), r(4, 0, 4, 4), r(0, 4, 4, 4)]);
        assert_eq!(apart.len(), 3, "touching is not overlapping");
    }
}
