//! Wayland protocols dispatched by this crate rather than by smithay, each a
//! `*State` plus a handler trait, smithay style.

pub mod color_representation;
pub mod drm_syncobj;
pub mod linux_dmabuf;
pub mod timeline_point;
