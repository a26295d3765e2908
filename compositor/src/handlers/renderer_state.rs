//! DOC: whose renderer state a commit updates
//!
//! smithay's `on_commit_buffer_handler` moves a surface's newly applied
//! buffer, damage and view into its renderer state, which render elements,
//! bounding boxes and input hit tests read. Called for a surface that is
//! not synchronized, it updates that surface and every surface under it,
//! applied or not: a window with 64 subsurfaces pays 65 updates for a
//! commit that changed one of them.
//!
//! A commit request whose applied states are known in advance updates only
//! those ([`CommitPass`]):
//!
//! * The request commits a surface that is not synchronized, the pass's
//!   *root*. The synchronized children smithay takes with it that have no
//!   children of their own come, each with its `wl_subsurface`, from the
//!   subsurface commit records (`subsurface_commits`).
//! * If the states smithay applies are exactly those children's, each once,
//!   then the root's, the root's own update would change nothing (no
//!   buffer attached or removed, and the view its current viewport and
//!   position give is the one it has), and nothing else in its window waits
//!   for a walk ([`WalkNeeded`]), the root's commit skips smithay's walk:
//!   the pass is *deferred*.
//! * Once smithay has handled the request, each such child is updated on
//!   its own ([`finish`]): smithay is told it is desynchronized, so the
//!   update takes it alone, and then synchronized again.
//! * Anything else walks as before: another transaction applied within the
//!   same request, a commit held on a fence and applied later (outside any
//!   pass), a child with children or without a known `wl_subsurface`.
//!
//! A walk is owed to a window (*needed*, marked on its main surface) when a
//! synchronized surface's state was applied and nothing updated it (a
//! commit held on a fence applies later, outside any request, and a surface
//! may have become synchronized since), or when a parent's applied state
//! moved its children. The main surface's next walk pays it. A walk that
//! pays changes renderer states of surfaces whose state was not applied
//! since the last frame (children moved, or states applied before that
//! frame), which the scene cannot see per surface and counts as a change
//! of its shape; a synchronized child applied with the walking surface's
//! own commit is no such change.
//!
//! Nothing draws between the root's commit and the children's updates:
//! both happen within the one request. The root's commit handler places
//! the main surface and the pointer focus from the children's views before
//! their updates; the window's bounding box, the main surface's place and
//! the pointer focus are refreshed after them if one of their views
//! changed. When the root's state is the only one the request
//! applies and its window owes nothing, smithay's walk (which the root's
//! new buffer needs) changes the root's renderer state alone
//! ([`Update::WalkOwn`]): the bounding box is recomputed only if the root's
//! view changed.
//!
//! Everything here runs on the event loop: the pass and [`finish`] inside
//! a commit request's dispatch, the walk marks from the commit handler,
//! wherever smithay applies a state. Each function takes one surface's
//! state lock at a time.

use smithay::{
    backend::renderer::{
        buffer_dimensions,
        utils::{on_commit_buffer_handler, RendererSurfaceStateUserData, SurfaceView},
    },
    reexports::wayland_server::{
        protocol::{wl_subsurface::WlSubsurface, wl_surface::WlSurface},
        Resource,
    },
    utils::{Point, Rectangle},
    wayland::compositor::{get_children, with_states, SubsurfaceCachedState, SurfaceAttributes, SurfaceData},
    wayland::viewporter::ViewportCachedState,
};

use std::sync::atomic::{AtomicU64, Ordering};

use super::subsurface_commits::root_surface;
use crate::state::State;

/// One commit request's plan for renderer-state updates (module docs).
#[derive(Debug)]
pub struct CommitPass {
    root: WlSurface,
    /// The synchronized leaf children smithay takes with the root, with
    /// whether their state was applied yet.
    taken: Vec<Taken>,
    stage: Stage,
}

#[derive(Debug)]
struct Taken {
    surface: WlSurface,
    handle: WlSubsurface,
    applied: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Children's states are being applied; the root's is next.
    Applying,
    /// The root's commit skipped the walk; [`finish`] updates the children.
    Deferred,
    /// Updated the usual way.
    Walked,
}

/// What the commit handler does with a surface's renderer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// smithay's update, walking the surface's tree (nothing for a
    /// synchronized surface: an ancestor's walk takes it).
    Walk,
    /// The same, for the pass's root when its state is the only one the
    /// request applied and its window owes nothing: the walk changes the
    /// root's renderer state alone.
    WalkOwn,
    /// Nothing now: a child of the pass that [`finish`] updates.
    Later,
    /// Nothing now: the pass's root, whose children [`finish`] updates.
    Deferred,
}

/// On a main surface: what its window owes (module docs). [`NOTHING`];
/// [`MOVED`]: children moved; otherwise one more than the scene's frame
/// count when a state applied first waited.
#[derive(Debug, Default)]
pub struct WalkNeeded(AtomicU64);

const NOTHING: u64 = 0;
const MOVED: u64 = u64::MAX;

/// `parent`'s applied state moved its children: their views change at its
/// window's next walk. Takes the state locks of `parent` and its
/// ancestors, one at a time.
pub fn note_children_moved(parent: &WlSurface) {
    owe(&root_surface(parent), MOVED);
}

/// Marks what `root`'s window owes. Takes `root`'s state lock.
fn owe(root: &WlSurface, mark: u64) {
    with_walk_needed(root, |owed| {
        let before = owed.load(Ordering::Relaxed);
        if before == NOTHING || mark == MOVED {
            owed.store(mark, Ordering::Relaxed);
        }
    });
}

/// smithay's update for `surface`, whose state was just applied, in the
/// window whose main surface is `root`: for a surface that is not
/// synchronized, a walk of its tree, which pays what its window owes (all
/// of it when `surface` is the main surface); a synchronized one waits for
/// an ancestor's, which its window then owes. A walk that pays changes
/// renderer states of surfaces whose state was not applied, which the scene
/// counts as a change of shape. Takes `root`'s state lock, then smithay's
/// locks.
pub fn walk(surface: &WlSurface, root: &WlSurface, synchronized: bool) {
    if synchronized {
        owe(root, crate::backend::scene::frames_built() + 1);
        return;
    }
    let owed = with_walk_needed(root, |owed| {
        if root == surface {
            owed.swap(NOTHING, Ordering::Relaxed)
        } else {
            owed.load(Ordering::Relaxed)
        }
    });
    let this_frame = crate::backend::scene::frames_built() + 1;
    if owed != NOTHING && owed != this_frame {
        crate::backend::scene::note_shape_changed();
    }
    on_commit_buffer_handler::<State>(surface);
}

fn walk_needed(surface: &WlSurface) -> bool {
    with_walk_needed(&root_surface(surface), |owed| owed.load(Ordering::Relaxed)) != NOTHING
}

fn with_walk_needed<R>(root: &WlSurface, f: impl FnOnce(&AtomicU64) -> R) -> R {
    with_states(root, |states| {
        f(&states.data_map.get_or_insert_threadsafe(WalkNeeded::default).0)
    })
}

impl CommitPass {
    /// The pass for a commit request on `root`, which is not synchronized,
    /// taking `taken` (leaf children, each with its `wl_subsurface`), if
    /// one is worth it: updating a child alone costs about three times what
    /// the walk pays for a child it passes over (the two mode changes, and
    /// smithay checking its mode again), so a pass is planned for up to
    /// four children taken, and beyond that while at most a third of the
    /// root's children are. Takes the root's state lock to count its
    /// children when more than four are taken.
    pub fn plan(root: &WlSurface, taken: Vec<(WlSurface, WlSubsurface)>) -> Option<CommitPass> {
        const FEW: usize = 4;
        if taken.len() > FEW && taken.len() * 3 > get_children(root).len() {
            return None;
        }
        Some(CommitPass {
            root: root.clone(),
            taken: taken
                .into_iter()
                .map(|(surface, handle)| Taken {
                    surface,
                    handle,
                    applied: false,
                })
                .collect(),
            stage: Stage::Applying,
        })
    }

    /// A state was applied to `surface` during the request. Takes the
    /// state locks of the root and its ancestors, one at a time, if
    /// `surface` is the root.
    pub fn on_applied(&mut self, surface: &WlSurface) -> Update {
        match self.stage {
            Stage::Applying if surface == &self.root => {
                self.stage = Stage::Walked;
                let all_applied = self.taken.iter().all(|t| t.applied);
                if all_applied && !walk_needed(surface) {
                    if with_states(surface, update_changes_nothing) {
                        self.stage = Stage::Deferred;
                        return Update::Deferred;
                    }
                    if self.taken.is_empty() {
                        return Update::WalkOwn;
                    }
                }
            }
            Stage::Applying => match self.taken.iter_mut().find(|t| &t.surface == surface) {
                Some(taken) if !taken.applied => {
                    taken.applied = true;
                    return Update::Later;
                }
                _ => self.stage = Stage::Walked,
            },
            // The root again, in a later transaction: its walk takes the
            // children too.
            Stage::Deferred if surface == &self.root => self.stage = Stage::Walked,
            Stage::Deferred | Stage::Walked => {}
        }
        Update::Walk
    }
}

/// Whether smithay's update of a surface's renderer state would leave it
/// as it is: no buffer attached or removed since its last update, and the
/// view the surface's current viewport and position give is the one it has
/// (smithay's `SurfaceView::from_states`, at a client scale of 1). Without a
/// buffer there is nothing to update. Expects the surface's state lock held
/// (`states`).
fn update_changes_nothing(states: &SurfaceData) -> bool {
    let mut attributes = states.cached_state.get::<SurfaceAttributes>();
    if attributes.current().buffer.is_some() {
        return false;
    }
    drop(attributes);
    let Some(renderer_state) = states.data_map.get::<RendererSurfaceStateUserData>() else {
        return false;
    };
    let renderer_state = renderer_state.lock().unwrap_or_else(|p| p.into_inner());
    let Some(buffer) = renderer_state.buffer() else {
        return true;
    };
    // The buffer's size, as smithay's update computes it (the renderer
    // state's `surface_size` is the view's destination, a viewport's).
    let Some(dimensions) = buffer_dimensions(buffer) else {
        return false;
    };
    let size = dimensions.to_logical(renderer_state.buffer_scale(), renderer_state.buffer_transform());
    let viewport = *states.cached_state.get::<ViewportCachedState>().current();
    let offset = if states.role == Some("subsurface") {
        states.cached_state.get::<SubsurfaceCachedState>().current().location
    } else {
        Point::default()
    };
    let view = SurfaceView {
        src: viewport.src.unwrap_or_else(|| Rectangle::from_size(size.to_f64())),
        dst: viewport.size().unwrap_or(size),
        offset,
    };
    renderer_state.view() == Some(view)
}

/// After the request: updates a deferred pass's children one by one, then
/// refreshes what follows from their views if one changed. A child gone
/// (nothing destroys one within a commit request, but the check is cheap)
/// gets the root's whole walk instead.
pub fn finish(state: &mut State, pass: CommitPass, mut set_sync: impl FnMut(&mut State, &WlSubsurface, bool)) {
    if pass.stage != Stage::Deferred {
        return;
    }
    state.shell_stats.narrow_updates += 1;
    let mut views_changed = false;
    for taken in &pass.taken {
        let child = &taken.surface;
        if !child.is_alive() || !taken.handle.is_alive() {
            walk(&pass.root, &root_surface(&pass.root), false);
            views_changed = true;
            break;
        }
        let before = view(child);
        set_sync(state, &taken.handle, false);
        on_commit_buffer_handler::<State>(child);
        set_sync(state, &taken.handle, true);
        views_changed |= view(child) != before;
    }
    if views_changed {
        state.refresh_window_of(&pass.root);
    }
}

/// `surface`'s view in its renderer state. Takes its state lock.
pub fn view(surface: &WlSurface) -> Option<SurfaceView> {
    with_states(surface, |states| {
        states
            .data_map
            .get::<RendererSurfaceStateUserData>()
            .and_then(|s| s.lock().unwrap_or_else(|p| p.into_inner()).view())
    })
}
