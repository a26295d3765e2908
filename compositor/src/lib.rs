//! The compositor as a library: the smithay glue and the Vulkan renderer
//! behind smithay's traits. The `compositor` binary (main.rs) wires these into
//! an event loop; the `bench` binary drives the renderer directly; the WLCS
//! integration embeds it.
//!
//! Layout (wlroots-like: a thing lives where its name says):
//! * [`render`]: `VkRenderer`, smithay's renderer traits over the importer
//!   (imports no other module of this crate).
//! * [`backend`]: outputs and their frame clocks (headless, DRM/KMS).
//! * [`handlers`]: one module per Wayland protocol smithay implements.
//! * [`protocols`]: protocols we dispatch ourselves (`wp_linux_drm_syncobj_v1`).
//! * [`buffer_sync`]: when a client buffer may be read (acquire) and when it
//!   goes back (release), implicit and explicit.
//! * [`cpu_copy`]: large CPU-fallback copies on a worker thread.
//! * [`shell`]: window management and input.
//! * [`state`]: the compositor state and the exit rules.
//! * [`app`]: start-up shared by the binary and embedders.
//! * [`cli`], [`spawn`], [`screenshot`], [`stats`]: the binary's edges.
//! * [`test_hooks`]: hooks only test builds have.

pub mod app;
pub mod backend;
pub mod buffer_sync;
pub mod cli;
pub mod cpu_copy;
pub mod display_error;
pub mod handlers;
pub mod limits;
pub mod protocols;
pub mod render;
pub mod screenshot;
pub mod shell;
pub mod spawn;
pub mod state;
pub mod stats;
pub mod test_hooks;
