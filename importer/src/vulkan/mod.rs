//! Vulkan side of the importer.
//!
//! * [`context`]: instance, device choice and the import capabilities probe.
//! * [`memory`]: importing a dma-buf fd as `VkDeviceMemory`.
//! * [`texture`]: sampled images: imported dma-bufs (image or buffer path) and
//!   compositor-owned images filled by staging uploads.
//! * [`pipeline`]: the textured-quad pipeline (shaders from `shaders/`).
//! * [`target`]: offscreen render targets and their read-back.
//! * [`frame`]: command recording and submission; fences the loop can poll.
//! * [`client_buffer`]: every imported client buffer under its reservation.
//! * [`cpu_import`]: the CPU fallback (mapping + staged copies).

pub mod caps;
pub mod client_buffer;
pub mod context;
pub mod cpu_import;
pub mod frame;
pub mod memory;
pub mod pipeline;
pub mod render;
pub mod target;
pub mod texture;
pub mod yuv;

pub use caps::DeviceCaps;
pub use context::{DeviceSelection, VkContext};

use ash::vk;
use thiserror::Error;

use crate::dmabuf::DmabufError;

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

/// Turns a `vk::Result` into a [`VkError`] naming the call.
pub(crate) trait VkResultExt<T> {
    fn call(self, call: &'static str) -> Result<T, VkError>;
}

impl<T> VkResultExt<T> for Result<T, vk::Result> {
    fn call(self, call: &'static str) -> Result<T, VkError> {
        self.map_err(|result| VkError::Call { call, result })
    }
}
