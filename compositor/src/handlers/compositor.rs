//! wl_compositor / wl_subcompositor: surface commits drive buffer tracking and
//! window mapping. Before smithay sees them, rectangles with a negative size
//! are dropped ([`negative_rect`]) and coordinates are clamped
//! ([`COORD_LIMIT`]); a subsurface placed relative to itself is an error.

use smithay::{
    backend::renderer::utils::RendererSurfaceStateUserData,
    reexports::wayland_server::{
        backend::ClientId,
        protocol::{
            wl_buffer::WlBuffer,
            wl_callback::WlCallback,
            wl_compositor::WlCompositor,
            wl_region::{self, WlRegion},
            wl_subcompositor::{self, WlSubcompositor},
            wl_subsurface::{self, WlSubsurface},
            wl_surface::{self, WlSurface},
        },
        Client, DataInit, Dispatch, DisplayHandle, Resource,
    },
    utils::Size,
    wayland::{
        buffer::BufferHandler,
        compositor::{
            add_destruction_hook, add_post_commit_hook, get_children, get_parent, is_sync_subsurface, with_states,
            CompositorClientState, CompositorHandler, CompositorState, RegionUserData, SubsurfaceCachedState,
            SubsurfaceUserData, SurfaceAttributes, SurfaceUserData,
        },
        drm_syncobj::DrmSyncobjCachedState,
        viewporter::{self, ViewportCachedState},
    },
};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tracing::debug;

use super::renderer_state::{self, CommitPass, Update};
use super::subsurface_commits::{self, root_surface, ModeChanges};
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
        on_surface_destroyed(surface);
        // First: charges commits queued behind a held one (buffer_sync::hold).
        crate::buffer_sync::hold::on_new_surface(surface);
        // Hold commits until their implicit fences signal (explicit acquire
        // points are handled by the syncobj surface).
        crate::buffer_sync::implicit::on_new_surface(surface);
        // Large CPU-fallback copies run on a worker; the commit waits for it.
        crate::cpu_copy::on_new_surface(surface);
        add_post_commit_hook::<State, _>(surface, apply_child_positions);
    }

    fn new_subsurface(&mut self, surface: &WlSurface, parent: &WlSurface) {
        hot_data_first(surface);
        // A surface made a subsurface again brings its views along.
        crate::backend::scene::note_shape_changed();
        subsurface_commits::note_new_subsurface(surface, parent);
        forget_applied_position(surface);
        note_child_moved(parent);
    }

    fn commit(&mut self, surface: &WlSurface) {
        self.shell_stats.commits += 1;
        // Elements kept from the last frame are stale for this surface.
        crate::backend::scene::note_applied(surface);
        // Record the new buffer/damage so render elements can import it
        // lazily; for the surfaces whose update this request defers, after
        // the request (`renderer_state`).
        let update = self
            .commit_pass
            .as_mut()
            .map_or(Update::Walk, |p| p.on_applied(surface));
        let synchronized = is_sync_subsurface(surface);
        let root = root_surface(surface);
        let view_before = (update == Update::WalkOwn).then(|| renderer_state::view(surface));
        if let Update::Walk | Update::WalkOwn = update {
            renderer_state::walk(surface, &root, synchronized);
        }
        self.awaiting_frame.note(surface);
        // Synchronized subsurface state only applies with the parent's commit.
        if synchronized {
            return;
        }
        let views_changed = match update {
            Update::Walk => true,
            Update::WalkOwn => view_before != Some(renderer_state::view(surface)),
            Update::Later | Update::Deferred => false,
        };
        self.refresh_window_bounds(&root, views_changed);
        self.popups.commit(surface);
        crate::handlers::xdg_shell::handle_commit(self, &root);
        // A window that mapped, moved or resized under the pointer.
        self.refresh_pointer_focus();
    }
}

impl State {
    /// After a view in `surface`'s tree changed: its window's bounding box,
    /// the main surface's place and the pointer focus.
    pub fn refresh_window_of(&mut self, surface: &WlSurface) {
        self.refresh_window_bounds(&root_surface(surface), true);
        self.refresh_pointer_focus();
    }

    /// Refreshes the bounding box and geometry of the window whose main
    /// surface is `root` (the damage tracker and input read them), keeping
    /// the main surface in place. The box follows from the views in the
    /// window's tree and the tree's shape: with `views_changed` false (no
    /// view changed since the last refresh) it is recomputed only if the
    /// shape changed since (`backend::scene::note_shape_changed`).
    fn refresh_window_bounds(&mut self, root: &WlSurface, views_changed: bool) {
        let Some(window) = self
            .space
            .elements()
            .find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == root))
            .cloned()
        else {
            return;
        };
        let shape = crate::backend::scene::shape_changes();
        let bounds_at = window.user_data().get_or_insert(BoundsAt::default);
        if !views_changed && bounds_at.0.get() == Some(shape) {
            return;
        }
        bounds_at.0.set(Some(shape));
        let geometry_before = window.geometry().loc;
        window.on_commit();
        self.keep_main_surface_in_place(&window, geometry_before);
    }
}

/// On a window: `backend::scene::shape_changes` when its bounds were last
/// computed.
#[derive(Default)]
struct BoundsAt(std::cell::Cell<Option<u64>>);

/// DOC: the surface data looked up every frame comes first
///
/// smithay's per-surface data map is a list searched front to back, one
/// type comparison per entry. The entries every frame and every commit
/// read, for every surface of a window, come first:
///
/// * smithay's subsurface record, which its commit of a parent reads for
///   every child (is it synchronized?), comes first of all. smithay inserts
///   it when the surface gets its `wl_subsurface`, so nothing of ours is
///   inserted before that (the [`SurfaceHeld`] marker lives in a hook).
/// * Then, inserted right after it, smithay's renderer state, the count of
///   applied states, smithay's viewport record (which its renderer state
///   looks up twice per surface), the subsurface commit record and the
///   owed-walk mark. Other surfaces (a window's main surface, one of many)
///   get these in the order they first use them.
///
/// The same goes for the double-buffered caches, another such list: the
/// ones smithay's renderer state reads for every surface on every commit of
/// its window are created here, in the order of how often they are read
/// (each is created at the surface's first commit anyway). smithay inserts
/// its renderer state at the surface's first commit and only then registers
/// a destruction hook that empties it; inserted here, the hook of
/// [`on_surface_destroyed`] empties it.
fn hot_data_first(surface: &WlSurface) {
    with_states(surface, |states| {
        states
            .data_map
            .insert_if_missing_threadsafe(RendererSurfaceStateUserData::default);
        states
            .data_map
            .insert_if_missing_threadsafe(crate::backend::scene::AppliedStates::default);
        // smithay's viewport record, whose type is private: checking a
        // viewport inserts it (none is set yet, so there is nothing to check).
        // We offer no wp_viewporter. smithay's get_viewport registers its
        // pre-commit check (the bad_size error) only when it inserts this
        // record itself, so offering one means dropping this line.
        viewporter::ensure_viewport_valid(states, Size::default());
        states
            .data_map
            .insert_if_missing_threadsafe(subsurface_commits::SubsurfaceCommits::default);
        states
            .data_map
            .insert_if_missing_threadsafe(renderer_state::WalkNeeded::default);
        let caches = &states.cached_state;
        drop(caches.get::<ViewportCachedState>());
        drop(caches.get::<SubsurfaceCachedState>());
        drop(caches.get::<SurfaceAttributes>());
        drop(caches.get::<DrmSyncobjCachedState>());
    });
}

/// Registers, at the surface's creation, what its destruction does: the
/// scene's trees changed shape, and the renderer state is emptied (dropping
/// the buffer sends its release while the surface is still whole; smithay
/// does the same only where it inserted the renderer state itself).
///
/// The hook also holds the surface's [`SurfaceHeld`] marker: smithay keeps
/// a surface's hooks in its data until that data is dropped, so the marker
/// counts surface data held without an entry in the data map.
fn on_surface_destroyed(surface: &WlSurface) {
    let held = SurfaceHeld::new();
    add_destruction_hook(surface, move |_: &mut State, surface| {
        let _ = &held;
        crate::backend::scene::note_shape_changed();
        with_states(surface, |states| {
            if let Some(renderer_state) = states.data_map.get::<RendererSurfaceStateUserData>() {
                let old = std::mem::take(&mut *renderer_state.lock().unwrap_or_else(|p| p.into_inner()));
                drop(old);
            }
        });
    });
}

/// DOC: subsurface positions belong to the parent's state
///
/// `wl_subsurface.set_position`: "the scheduled coordinates take effect
/// whenever the state of the parent surface is applied". smithay 0.7 keeps
/// the position in the child's own double-buffered state instead, so a
/// child moved with its *own* commit and not with its parent's (WLCS
/// SubsurfaceTest). This post-commit hook runs whenever a surface's state is
/// applied: as a child, it puts back the position its parent last applied,
/// undoing smithay's; as a parent with a child moved or added since
/// ([`ChildMoved`]), it moves every direct child to its latest requested
/// position and records it ([`AppliedPosition`]).
fn apply_child_positions(_: &mut State, _: &smithay::reexports::wayland_server::DisplayHandle, surface: &WlSurface) {
    let children_moved = with_states(surface, |states| {
        let applied = states
            .data_map
            .get::<AppliedPosition>()
            .and_then(|a| *a.0.lock().unwrap_or_else(|p| p.into_inner()));
        if let Some(location) = applied {
            states.cached_state.get::<SubsurfaceCachedState>().current().location = location;
        }
        states
            .data_map
            .get::<ChildMoved>()
            .is_some_and(|moved| moved.0.swap(false, Ordering::AcqRel))
    });
    if !children_moved {
        // Every child's requested position is the one last applied.
        return;
    }
    // The children's views move with them.
    renderer_state::note_children_moved(surface);
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
}

/// The position a subsurface's parent last applied (`None`: not yet).
#[derive(Default)]
struct AppliedPosition(std::sync::Mutex<Option<smithay::utils::Point<i32, smithay::utils::Logical>>>);

/// On a parent: a child asked to move, or was added, since the parent's
/// state was last applied.
#[derive(Default)]
struct ChildMoved(AtomicBool);

/// `parent` has a child to move (or place) when its state is next applied.
fn note_child_moved(parent: &WlSurface) {
    subsurface_commits::note_child_moved(parent);
    with_states(parent, |states| {
        states
            .data_map
            .get_or_insert_threadsafe(ChildMoved::default)
            .0
            .store(true, Ordering::Release);
    });
}

/// A surface that becomes a subsurface (again) has no applied position yet.
fn forget_applied_position(surface: &WlSurface) {
    with_states(surface, |states| {
        if let Some(applied) = states.data_map.get::<AppliedPosition>() {
            *applied.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    });
}

impl BufferHandler for State {
    fn buffer_destroyed(&mut self, buffer: &WlBuffer) {
        // The renderer's import of the buffer goes at the first frame tick
        // after its dma-buf is gone (`VkRenderer::forget_buffer`); frames in
        // flight keep theirs until their fence signals. The per-buffer
        // explicit-sync state goes now.
        self.backend.renderer_mut().forget_buffer(buffer);
        self.backend.releases_mut().forget(buffer);
    }
}

// smithay's handlers for every wl_compositor interface, except that
// wl_surface, wl_region and wl_subsurface requests pass through the checks
// below first.
smithay::reexports::wayland_server::delegate_global_dispatch!(State: [WlCompositor: ()] => CompositorState);
smithay::reexports::wayland_server::delegate_global_dispatch!(State: [WlSubcompositor: ()] => CompositorState);
smithay::reexports::wayland_server::delegate_dispatch!(State: [WlCompositor: ()] => CompositorState);
smithay::reexports::wayland_server::delegate_dispatch!(State: [WlCallback: ()] => CompositorState);

/// A rectangle a client sent with a negative width or height. smithay 0.7
/// builds a `Size` from `wl_surface.damage` and `wl_region.add`/`subtract`
/// without checking (a debug assertion, so a debug build panics and takes
/// every client down; `damage_buffer` is checked). Such a rectangle covers
/// nothing, so the request is dropped, as smithay does for `damage_buffer`.
fn negative_rect(width: i32, height: i32) -> bool {
    width < 0 || height < 0
}

/// The largest coordinate or size taken from a client: far beyond any
/// output or buffer, far enough from `i32`'s limits that smithay's geometry
/// (transforms, scales, offsets) cannot overflow, which with overflow
/// checks (debug builds) is a panic and otherwise a wrapped rectangle.
const COORD_LIMIT: i32 = 1 << 24;

fn clamp_coord(v: i32) -> i32 {
    v.clamp(-COORD_LIMIT, COORD_LIMIT)
}

/// A rectangle's position and size clamped to [`COORD_LIMIT`].
fn clamp_rect(x: i32, y: i32, width: i32, height: i32) -> (i32, i32, i32, i32) {
    let size = |v: i32| v.min(2 * COORD_LIMIT);
    (clamp_coord(x), clamp_coord(y), size(width), size(height))
}

/// Clamps the coordinates of the requests that carry them; damage still
/// covers all of any real buffer.
fn clamp_surface_request(request: wl_surface::Request) -> wl_surface::Request {
    use wl_surface::Request;
    match request {
        Request::Damage { x, y, width, height } => {
            let (x, y, width, height) = clamp_rect(x, y, width, height);
            Request::Damage { x, y, width, height }
        }
        Request::DamageBuffer { x, y, width, height } => {
            let (x, y, width, height) = clamp_rect(x, y, width, height);
            Request::DamageBuffer { x, y, width, height }
        }
        Request::Attach { buffer, x, y } => Request::Attach {
            buffer,
            x: clamp_coord(x),
            y: clamp_coord(y),
        },
        Request::Offset { x, y } => Request::Offset {
            x: clamp_coord(x),
            y: clamp_coord(y),
        },
        other => other,
    }
}

impl Dispatch<WlSurface, SurfaceUserData> for State {
    fn request(
        state: &mut State,
        client: &Client,
        surface: &WlSurface,
        request: wl_surface::Request,
        data: &SurfaceUserData,
        dh: &DisplayHandle,
        init: &mut DataInit<'_, State>,
    ) {
        if let wl_surface::Request::Damage { width, height, .. } = &request {
            if negative_rect(*width, *height) {
                debug!(surface = ?surface.id(), width, height, "wl_surface.damage with a negative size dropped");
                return;
            }
        }
        let request = clamp_surface_request(request);
        let mut modes = match request {
            wl_surface::Request::Commit => subsurface_commits::before_commit(surface),
            _ => ModeChanges::default(),
        };
        set_sync_modes(state, client, &modes.before, dh, init);
        // The view check behind a deferred update assumes smithay's client
        // scale of 1 (we never set another).
        if modes.unsynchronized && state.client_compositor_state(client).client_scale() == 1.0 {
            state.commit_pass = CommitPass::plan(surface, std::mem::take(&mut modes.taken_leaves));
        }
        <CompositorState as Dispatch<WlSurface, SurfaceUserData, State>>::request(
            state, client, surface, request, data, dh, init,
        );
        for child in &modes.after {
            set_sync_mode(state, client, child, true, dh, init);
        }
        if let Some(pass) = state.commit_pass.take() {
            renderer_state::finish(state, pass, |state, subsurface, sync| {
                set_sync_mode(state, client, subsurface, sync, dh, init)
            });
        }
    }

    fn destroyed(state: &mut State, client: ClientId, surface: &WlSurface, data: &SurfaceUserData) {
        <CompositorState as Dispatch<WlSurface, SurfaceUserData, State>>::destroyed(state, client, surface, data);
    }
}

/// Tells smithay's own `wl_subsurface` handler, and not the client's record
/// of the mode, that `subsurface` is synchronized (`SetSync`) or not
/// (`SetDesync`); see [`subsurface_commits`].
fn set_sync_mode(
    state: &mut State,
    client: &Client,
    subsurface: &WlSubsurface,
    sync: bool,
    dh: &DisplayHandle,
    init: &mut DataInit<'_, State>,
) {
    let Some(data) = subsurface.data::<SubsurfaceUserData>() else {
        return;
    };
    let mode = if sync {
        wl_subsurface::Request::SetSync
    } else {
        wl_subsurface::Request::SetDesync
    };
    <CompositorState as Dispatch<WlSubsurface, SubsurfaceUserData, State>>::request(
        state, client, subsurface, mode, data, dh, init,
    );
}

/// [`set_sync_mode`] for each of `modes`, in order.
fn set_sync_modes(
    state: &mut State,
    client: &Client,
    modes: &[(WlSubsurface, bool)],
    dh: &DisplayHandle,
    init: &mut DataInit<'_, State>,
) {
    for (subsurface, sync) in modes {
        set_sync_mode(state, client, subsurface, *sync, dh, init);
    }
}

/// `wl_subcompositor.get_subsurface`: a parent smithay was told is
/// desynchronized goes back to the mode its client asked for first
/// ([`subsurface_commits`]).
impl Dispatch<WlSubcompositor, ()> for State {
    fn request(
        state: &mut State,
        client: &Client,
        subcompositor: &WlSubcompositor,
        request: wl_subcompositor::Request,
        data: &(),
        dh: &DisplayHandle,
        init: &mut DataInit<'_, State>,
    ) {
        if let wl_subcompositor::Request::GetSubsurface { parent, .. } = &request {
            let modes = subsurface_commits::before_new_child(parent);
            set_sync_modes(state, client, &modes.before, dh, init);
        }
        <CompositorState as Dispatch<WlSubcompositor, (), State>>::request(
            state,
            client,
            subcompositor,
            request,
            data,
            dh,
            init,
        );
    }
}

/// `wl_subsurface.place_above`/`place_below` relative to the subsurface
/// itself is a protocol error (`bad_surface`); smithay 0.7 does not check it
/// and its reorder then inserts past the end of the children list, a panic
/// that takes every client down.
impl Dispatch<WlSubsurface, SubsurfaceUserData> for State {
    fn request(
        state: &mut State,
        client: &Client,
        subsurface: &WlSubsurface,
        request: wl_subsurface::Request,
        data: &SubsurfaceUserData,
        dh: &DisplayHandle,
        init: &mut DataInit<'_, State>,
    ) {
        if let wl_subsurface::Request::PlaceAbove { sibling } | wl_subsurface::Request::PlaceBelow { sibling } =
            &request
        {
            if sibling == data.surface() {
                subsurface.post_error(
                    wl_subsurface::Error::BadSurface,
                    "a sub-surface cannot be placed relative to itself",
                );
                return;
            }
        }
        let request = match request {
            wl_subsurface::Request::SetPosition { x, y } => wl_subsurface::Request::SetPosition {
                x: clamp_coord(x),
                y: clamp_coord(y),
            },
            other => other,
        };
        subsurface_commits::note_subsurface_request(subsurface, data, &request);
        match request {
            wl_subsurface::Request::SetPosition { .. } => {
                if let Some(parent) = get_parent(data.surface()) {
                    note_child_moved(&parent);
                }
            }
            // smithay restacks right away.
            wl_subsurface::Request::PlaceAbove { .. } | wl_subsurface::Request::PlaceBelow { .. } => {
                crate::backend::scene::note_shape_changed();
            }
            _ => {}
        }
        <CompositorState as Dispatch<WlSubsurface, SubsurfaceUserData, State>>::request(
            state, client, subsurface, request, data, dh, init,
        );
    }

    fn destroyed(state: &mut State, client: ClientId, subsurface: &WlSubsurface, data: &SubsurfaceUserData) {
        crate::backend::scene::note_shape_changed();
        subsurface_commits::note_subsurface_destroyed(data);
        <CompositorState as Dispatch<WlSubsurface, SubsurfaceUserData, State>>::destroyed(
            state, client, subsurface, data,
        );
    }
}

impl Dispatch<WlRegion, RegionUserData> for State {
    fn request(
        state: &mut State,
        client: &Client,
        region: &WlRegion,
        request: wl_region::Request,
        data: &RegionUserData,
        dh: &DisplayHandle,
        init: &mut DataInit<'_, State>,
    ) {
        if let wl_region::Request::Add { width, height, .. } | wl_region::Request::Subtract { width, height, .. } =
            &request
        {
            if negative_rect(*width, *height) {
                debug!(region = ?region.id(), width, height, "wl_region rectangle with a negative size dropped");
                return;
            }
        }
        let request = match request {
            wl_region::Request::Add { x, y, width, height } => {
                let (x, y, width, height) = clamp_rect(x, y, width, height);
                wl_region::Request::Add { x, y, width, height }
            }
            wl_region::Request::Subtract { x, y, width, height } => {
                let (x, y, width, height) = clamp_rect(x, y, width, height);
                wl_region::Request::Subtract { x, y, width, height }
            }
            other => other,
        };
        <CompositorState as Dispatch<WlRegion, RegionUserData, State>>::request(
            state, client, region, request, data, dh, init,
        );
    }

    fn destroyed(state: &mut State, client: ClientId, region: &WlRegion, data: &RegionUserData) {
        <CompositorState as Dispatch<WlRegion, RegionUserData, State>>::destroyed(state, client, region, data);
    }
}

/// Surfaces whose data smithay still holds: counted up when a surface is
/// created and down when its data is dropped, which happens once the
/// surface is destroyed and nothing holds a handle to it. With every client
/// gone it is 0; more means something (a handle kept in a surface's own
/// data, a cycle) keeps surface data alive.
static SURFACES_HELD: AtomicU64 = AtomicU64::new(0);

/// The marker, held by each surface's destruction hook (in its data), that
/// [`SURFACES_HELD`] counts.
struct SurfaceHeld;

impl SurfaceHeld {
    fn new() -> SurfaceHeld {
        SURFACES_HELD.fetch_add(1, Ordering::Relaxed);
        SurfaceHeld
    }
}

impl Drop for SurfaceHeld {
    fn drop(&mut self) {
        SURFACES_HELD.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many surfaces' data is held now ([`SURFACES_HELD`]).
pub fn surfaces_held() -> u64 {
    SURFACES_HELD.load(Ordering::Relaxed)
}
