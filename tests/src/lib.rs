//! Test-client library for the compositor: Wayland clients that show
//! dma-buf-backed windows, shared scene descriptions, an independent CPU
//! reference model, screenshot comparison, and a harness that runs the
//! compositor binary.

pub mod buffer;
pub mod client;
pub mod color_representation;
pub mod dmabuf_feedback;
pub mod explicit;
pub mod harness;
pub mod image;
pub mod image_compare;
pub mod kernel;
pub mod mapping;
pub mod pixel;
pub mod presentation;
pub mod process;
pub mod provider;
pub mod reference;
pub mod scenes;
pub mod slots;
pub mod sync;
pub mod validation;
pub mod window;
pub mod witness;

pub use buffer::{CreateOutcome, DmabufBuffer, ParamsBuilder, MOD_LINEAR};
pub use client::{Client, ProtocolError};
pub use image::RgbaImage;
pub use pixel::{Coefficients, Format, Range, Representation};
pub use provider::{provider_from_env, BufferProvider, DmaHeapProvider, MemfdProvider, UdmabufProvider};
pub use window::{Subsurface, Window};

use std::path::PathBuf;

/// The workspace root (parent of this package's manifest directory).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// `assets/reference/<scene>.png` in the workspace.
pub fn reference_path(scene: &str) -> PathBuf {
    workspace_root().join("assets/reference").join(format!("{scene}.png"))
}
