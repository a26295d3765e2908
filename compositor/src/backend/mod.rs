//! Backends own the output and decide when frames are drawn.

pub mod headless;
