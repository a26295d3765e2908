//! Protocol handlers, one module per protocol area.
//!
//! Each module implements smithay's handler trait for [`State`](crate::state::State)
//! and invokes the matching `delegate_*!` macro, so wiring a protocol up is local
//! to its file.

pub mod color_representation;
pub mod compositor;
pub mod decoration;
pub mod dmabuf;
pub mod output;
pub mod presentation;
pub mod renderer_state;
pub mod seat;
pub mod selection;
pub mod shm;
pub mod subsurface_commits;
pub mod xdg_shell;
