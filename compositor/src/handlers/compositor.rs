//! wl_compositor / wl_subcompositor: surface commits drive buffer tracking and
//! window mapping.

use smithay::{
    backend::renderer::utils::on_commit_buffer_handler,
    delegate_compositor,
    reexports::wayland_server::{
        protocol::{wl_buffer::WlBuffer, wl_surface::WlSurface},
        Client,
    },
    wayland::{
        buffer::BufferHandler,
        compositor::{get_parent, is_sync_subsurface, CompositorClientState, CompositorHandler, CompositorState},
    },
};

use crate::state::{ClientState, State};

impl CompositorHandler for State {
    fn compositor_state(&mut self) -> &mut CompositorState {
        &mut self.compositor_state
    }

    fn client_compositor_state<'a>(&self, client: &'a Client) -> &'a CompositorClientState {
        // Every client is inserted with a ClientState by the socket accept path.
        &client
            .get_data::<ClientState>()
            .expect("client inserted without ClientState")
            .compositor_state
    }

    fn new_surface(&mut self, surface: &WlSurface) {
        // SYNC: hold commits until their implicit fences / acquire point signal.
        crate::sync::implicit::on_new_surface(surface);
        // Large CPU-fallback copies run on a worker; the commit waits for it.
        crate::sync::cpu_copy::on_new_surface(surface);
    }

    fn commit(&mut self, surface: &WlSurface) {
        self.shell_stats.commits += 1;
        // Record the new buffer/damage so render elements can import it lazily.
        on_commit_buffer_handler::<Self>(surface);
        // Synchronized subsurface state only applies with the parent's commit.
        if is_sync_subsurface(surface) {
            return;
        }
        let root = root_surface(surface);
        if let Some(window) = self
            .space
            .elements()
            .find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == &root))
        {
            // Refreshes the window's cached bbox/geometry for the damage tracker.
            window.on_commit();
        }
        self.popups.commit(surface);
        crate::handlers::xdg_shell::handle_commit(self, &root);
        self.note_if_unmapped(&root);
        // SHELL: a window that mapped, moved or resized under the pointer.
        self.refresh_pointer_focus();
    }
}

impl State {
    /// Remembers a committed root surface that is not a mapped toplevel, so
    /// the next frame still answers its frame callbacks.
    fn note_if_unmapped(&mut self, root: &WlSurface) {
        let mapped = self
            .space
            .elements()
            .any(|w| w.toplevel().is_some_and(|t| t.wl_surface() == root));
        if !mapped && !self.unmapped_committed.contains(root) {
            self.unmapped_committed.push(root.clone());
        }
    }
}

/// Walks up the subsurface tree to the surface that carries the role.
fn root_surface(surface: &WlSurface) -> WlSurface {
    let mut root = surface.clone();
    while let Some(parent) = get_parent(&root) {
        root = parent;
    }
    root
}

impl BufferHandler for State {
    fn buffer_destroyed(&mut self, buffer: &WlBuffer) {
        // Imported textures are owned by the surface state and dropped with
        // it; frames in flight keep theirs until their fence signals.
        // SYNC: per-buffer explicit-sync state goes with the buffer.
        self.backend.releases_mut().forget(buffer);
    }
}

delegate_compositor!(State);
