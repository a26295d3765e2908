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
        compositor::{
            add_post_commit_hook, get_children, get_parent, is_sync_subsurface, with_states, CompositorClientState,
            CompositorHandler, CompositorState, SubsurfaceCachedState,
        },
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
        // First: charges commits queued behind a held one (buffer_sync::hold).
        crate::buffer_sync::hold::on_new_surface(surface);
        // Hold commits until their implicit fences signal (explicit acquire
        // points are handled by the syncobj surface).
        crate::buffer_sync::implicit::on_new_surface(surface);
        // Large CPU-fallback copies run on a worker; the commit waits for it.
        crate::cpu_copy::on_new_surface(surface);
        add_post_commit_hook::<State, _>(surface, apply_child_positions);
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
        let window = self
            .space
            .elements()
            .find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == &root))
            .cloned();
        if let Some(window) = window {
            // Refreshes the window's cached bbox/geometry for the damage tracker.
            let geometry_before = window.geometry().loc;
            window.on_commit();
            self.keep_main_surface_in_place(&window, geometry_before);
        }
        self.popups.commit(surface);
        crate::handlers::xdg_shell::handle_commit(self, &root);
        self.note_if_unmapped(&root);
        // A window that mapped, moved or resized under the pointer.
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

/// DOC: subsurface positions belong to the parent's state
///
/// `wl_subsurface.set_position`: "the scheduled coordinates take effect
/// whenever the state of the parent surface is applied". smithay 0.7 keeps
/// the position in the child's own double-buffered state instead, so a
/// child moved with its *own* commit and not with its parent's (WLCS
/// SubsurfaceTest). This post-commit hook runs whenever a surface's state is
/// applied: as a parent, it moves every direct child to its latest
/// requested position and records it ([`AppliedPosition`]); as a child, it
/// puts back the position its parent last applied, undoing smithay's.
fn apply_child_positions(_: &mut State, _: &smithay::reexports::wayland_server::DisplayHandle, surface: &WlSurface) {
    for child in get_children(surface) {
        with_states(&child, |states| {
            let mut cached = states.cached_state.get::<SubsurfaceCachedState>();
            let requested = cached.pending().location;
            cached.current().location = requested;
            states.data_map.insert_if_missing(AppliedPosition::default);
            if let Some(applied) = states.data_map.get::<AppliedPosition>() {
                *applied.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(requested);
            }
        });
    }
    with_states(surface, |states| {
        let applied = states
            .data_map
            .get::<AppliedPosition>()
            .and_then(|a| *a.0.lock().unwrap_or_else(|p| p.into_inner()));
        if let Some(location) = applied {
            states.cached_state.get::<SubsurfaceCachedState>().current().location = location;
        }
    });
}

/// The position a subsurface's parent last applied (`None`: not yet).
#[derive(Default)]
struct AppliedPosition(std::sync::Mutex<Option<smithay::utils::Point<i32, smithay::utils::Logical>>>);

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
        // The renderer's import of the buffer goes at the next frame tick
        // (`cleanup_texture_cache` sees its dma-buf gone); frames in flight
        // keep theirs until their fence signals. The per-buffer
        // explicit-sync state goes now.
        self.backend.releases_mut().forget(buffer);
    }
}

delegate_compositor!(State);
