//! The compositor as a library: the smithay glue and the Vulkan renderer
//! behind smithay's traits. The `compositor` binary (main.rs) wires these into
//! an event loop; the `bench` binary drives the renderer directly.
//!
//! Layout (wlroots-like: a thing lives where its name says):
//! * [`render`]: `VkRenderer`, smithay's renderer traits over the importer.
//! * [`backend`]: outputs and their frame clocks (headless).
//! * [`handlers`]: one module per Wayland protocol smithay implements.
//! * [`protocols`]: protocols we implement ourselves (`wp_linux_drm_syncobj_v1`).
//! * [`state`]: the compositor state and the exit rules.
//! * [`cli`], [`spawn`], [`screenshot`], [`stats`]: the binary's edges.

/// Headless start-up shared by the binary and embedders (issue 6).
pub mod app;
pub mod backend;
pub mod cli;
pub mod handlers;
/// Protocols we dispatch ourselves (not through smithay).
pub mod protocols;
pub mod render;
pub mod screenshot;
/// Window management and input (issue 6).
pub mod shell;
pub mod spawn;
pub mod state;
pub mod stats;
/// Implicit/explicit sync glue (issue 4).
pub mod sync;
