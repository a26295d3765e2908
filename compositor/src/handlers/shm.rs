//! wl_shm: shared-memory buffers, uploaded by the renderer.

use smithay::{
    backend::renderer::ImportMemWl,
    delegate_shm,
    reexports::wayland_server::protocol::wl_shm,
    wayland::shm::{ShmHandler, ShmState},
};

use crate::{render::VkRenderer, state::State};

impl ShmHandler for State {
    fn shm_state(&self) -> &ShmState {
        &self.shm_state
    }
}

/// Formats to advertise beyond Argb8888/Xrgb8888, which smithay always lists.
pub fn extra_formats(renderer: &VkRenderer) -> Vec<wl_shm::Format> {
    renderer
        .shm_formats()
        .filter(|f| !matches!(f, wl_shm::Format::Argb8888 | wl_shm::Format::Xrgb8888))
        .collect()
}

delegate_shm!(State);
