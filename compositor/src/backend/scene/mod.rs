//! What one output shows: its render elements, and the `wl_surface.enter` /
//! `leave` that follow from them.
//!
//! DOC: at most one walk per frame
//!
//! A frame walks the space at most once (see frames without a walk,
//! below), front to back: each window's popups, then
//! its surface tree, as smithay's `Space::render_elements_for_region` does.
//! The same walk notes every surface whose view overlaps the output, in
//! order. That list decides which surfaces are on the output:
//!
//! * a surface is on the output while its view (position and size in the
//!   space, from the state last applied) overlaps it, whether or not its
//!   buffer could be imported; a surface without a buffer, under a parent
//!   without one, or in a window off the output is not;
//! * when the list equals the previous frame's, nothing is sent; otherwise
//!   surfaces new to it get `enter` and surfaces gone from it `leave`
//!   (smithay's `Output` remembers what it sent, so neither is sent twice).
//!
//! smithay's `Space::refresh` decided the same by walking every surface
//! tree a second time each frame; the frame no longer calls it
//! ([`drop_dead_windows`] keeps the part of it still needed). The frame
//! that shows a change is the one that reports it: the list is built from
//! the state that frame draws.
//!
//! DOC: elements kept between frames
//!
//! Building a surface's element (smithay's `from_surface`: texture lookup,
//! buffer and damage snapshots, opaque regions) is most of the walk. The
//! elements a frame drew are handed back ([`OutputScene::keep`]) and the
//! next frame reuses one while what it was built from is unchanged: the
//! same surface, no state applied to it since ([`AppliedStates`], counted
//! by the commit handler), the same buffer, damage counter and view in
//! smithay's renderer state (which an ancestor's commit can update after
//! the surface's own, see [`ElementKey`]), at the same place, at the same
//! scale. Anything else builds a new one.
//!
//! A kept element holds its buffer, so a buffer replaced by a commit is
//! let go at the next frame's walk rather than at the commit: within one
//! frame, and before the frame callbacks of that frame go out. While
//! rendering is stopped nothing walks, so the backends drop what is kept
//! then ([`OutputScene::forget`]).
//!
//! DOC: frames without a walk
//!
//! Most frames change a few surfaces of an unchanged scene. A frame skips
//! the walk and starts from the last frame's elements ([`reuse`]) when
//! nothing a per-surface check cannot see changed since that frame's
//! elements were built:
//!
//! * the same windows reach the output, in the same order, at the same
//!   places, none with popups (a popup moves with its window's geometry),
//!   on an output of the same size and scale;
//! * no surface joined or left a surface tree, no subsurface was restacked,
//!   and no walk updated the renderer state of a surface whose state was
//!   not applied since the last frame (`handlers::renderer_state`):
//!   counted by [`note_shape_changed`];
//! * every state applied since (remembered by [`note_applied`], up to a
//!   few hundred) was applied to a surface with an element in that frame.
//!
//! Then an element whose surface had no state applied since is reused as
//! it is, and the others are built again at the same place. A rebuilt
//! surface that lost its view (hiding its children), moved, changed whether
//! it is on the output, or could not be built sends the frame back to the
//! walk.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use smithay::{
    backend::renderer::{
        element::{surface::WaylandSurfaceRenderElement, Kind},
        utils::{CommitCounter, RendererSurfaceState, RendererSurfaceStateUserData, SurfaceView},
    },
    desktop::{PopupManager, Space, Window},
    output::Output,
    reexports::wayland_server::protocol::wl_surface::WlSurface,
    reexports::wayland_server::{backend::ObjectId, Resource},
    utils::{IsAlive, Physical, Point, Rectangle, Scale, Transform},
    wayland::compositor::{with_states, with_surface_tree_downward, SurfaceData, TraversalAction},
};
use tracing::warn;

use crate::render::VkRenderer;

mod element;
mod reuse;

pub use element::SceneElement;

type Element = SceneElement;

/// The surfaces one output showed in the last frame, front to back, and
/// the elements drawn for them.
#[derive(Default)]
pub struct OutputScene {
    shown: Vec<WlSurface>,
    /// What each element of the frame being drawn was built from, in order.
    built: Vec<Entry>,
    /// What the frame being drawn depended on besides its surfaces' states.
    basis: Option<Basis>,
    /// The last drawn frame's elements, for the next frame.
    kept: Kept,
    /// What the kept elements depended on besides their surfaces' states.
    kept_basis: Option<Basis>,
    /// The scale the kept elements were built at.
    scale: Option<Scale<f64>>,
    stats: SceneStats,
}

impl std::fmt::Debug for OutputScene {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputScene")
            .field("shown", &self.shown.len())
            .field("kept", &self.kept.entries.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Elements built and reused, over the compositor's life.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SceneStats {
    pub elements_built: u64,
    pub elements_reused: u64,
    /// Frames that started from the last frame's elements without a walk.
    pub walks_skipped: u64,
}

impl SceneStats {
    pub fn add(&mut self, other: SceneStats) {
        self.elements_built += other.elements_built;
        self.elements_reused += other.elements_reused;
        self.walks_skipped += other.walks_skipped;
    }
}

/// What an element was built from; equal keys build equal elements.
///
/// smithay's renderer state of a surface is not only updated by the
/// surface's own commit: a synchronized subsurface's new buffer is taken in
/// when an unsynchronized ancestor's commit walks its tree, which may come
/// later than the subsurface's own state (a commit held on a fence, then
/// `set_sync`). So the key holds what the element reads from that state
/// (buffer, damage counter, view, buffer scale and transform) besides the count of
/// applied states, which covers what it reads from the surface's cached
/// state (the alpha multiplier).
#[derive(Debug, Clone, PartialEq)]
struct ElementKey {
    surface: ObjectId,
    applied: u64,
    buffer: Option<ObjectId>,
    commit: CommitCounter,
    view: SurfaceView,
    buffer_scale: i32,
    buffer_transform: Transform,
    location: Point<f64, Physical>,
}

/// What one element was built from.
struct Entry {
    surface: WlSurface,
    /// `None`: never reused.
    key: Option<ElementKey>,
    /// Its place overlaps the output.
    on_output: bool,
}

/// The last drawn frame's elements and what each was built from, in the
/// order the frame walked them. Two lists rather than one of pairs: handing
/// a frame's elements back then moves each list whole.
#[derive(Default)]
struct Kept {
    entries: Vec<Entry>,
    /// `None` once taken by the next walk.
    elements: Vec<Option<Element>>,
}

impl Entry {
    /// What `surface`'s element at `location` is built from: its applied
    /// states (its state lock held: `states`) and its renderer state.
    fn read(
        surface: &WlSurface,
        states: &SurfaceData,
        renderer_state: &RendererSurfaceState,
        view: SurfaceView,
        location: Point<f64, Physical>,
        scale: Scale<f64>,
        output: Rectangle<i32, Physical>,
    ) -> Entry {
        let size = view.dst.to_f64().to_physical(scale);
        let placed = Rectangle::new(location, size).to_i32_round();
        Entry {
            surface: surface.clone(),
            key: applied_states(states).map(|applied| ElementKey {
                surface: surface.id(),
                applied,
                buffer: renderer_state.buffer().map(|buffer| buffer.id()),
                commit: renderer_state.current_commit(),
                view,
                buffer_scale: renderer_state.buffer_scale(),
                buffer_transform: renderer_state.buffer_transform(),
                location,
            }),
            on_output: placed.overlaps(output),
        }
    }
}

/// A new element for `surface` at `location`, its state lock held
/// (`states`) and not its renderer state's, which smithay takes; `None`
/// (logged) when its buffer cannot be imported.
fn build(
    renderer: &mut VkRenderer,
    surface: &WlSurface,
    states: &SurfaceData,
    location: Point<f64, Physical>,
) -> Option<Element> {
    match WaylandSurfaceRenderElement::from_surface(renderer, surface, states, location, 1.0, Kind::Unspecified) {
        Ok(element) => element.map(SceneElement::new),
        Err(err) => {
            warn!("failed to import a surface's buffer: {err}");
            None
        }
    }
}

impl Kept {
    fn clear(&mut self) {
        self.entries.clear();
        self.elements.clear();
    }
}

/// What a frame's elements depended on besides their surfaces' own states
/// (module docs, frames without a walk).
#[derive(Debug, Clone, PartialEq)]
struct Basis {
    /// The windows walked, front to back, with their origin on the output.
    windows: Vec<(Window, Point<i32, Physical>)>,
    output: Rectangle<i32, Physical>,
    popups: bool,
    /// [`SHAPE_CHANGES`] when the elements were built.
    shape: u64,
    /// [`STATES_APPLIED`] when the elements were built.
    applied: u64,
}

/// States applied to any surface ([`note_applied`]).
static STATES_APPLIED: AtomicU64 = AtomicU64::new(0);

/// The surfaces the last states were applied to, oldest first, at most
/// [`APPLIED_KEPT`]; the last one is state number [`STATES_APPLIED`].
static APPLIED_TO: Mutex<VecDeque<ObjectId>> = Mutex::new(VecDeque::new());

/// How many of the last applied states [`APPLIED_TO`] remembers: a frame
/// after more than this many walks.
const APPLIED_KEPT: usize = 256;

/// The surfaces of the states applied after state number `since`, oldest
/// first, to `f`; `false` if they are no longer all remembered.
fn applied_since(since: u64, f: impl FnMut(&ObjectId) -> bool) -> bool {
    let applied_to = APPLIED_TO.lock().unwrap_or_else(|p| p.into_inner());
    let Some(count) = STATES_APPLIED
        .load(Ordering::Relaxed)
        .checked_sub(since)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= applied_to.len())
    else {
        return false;
    };
    applied_to.iter().skip(applied_to.len() - count).all(f)
}

/// Changes to surface trees that the per-surface count of applied states
/// does not show ([`note_shape_changed`]).
static SHAPE_CHANGES: AtomicU64 = AtomicU64::new(0);

/// A surface joined or left a surface tree, a subsurface was restacked, or
/// a walk updated the renderer state of surfaces whose state was not
/// applied: frames walk again, and window bounds are computed again.
pub fn note_shape_changed() {
    SHAPE_CHANGES.fetch_add(1, Ordering::Relaxed);
}

/// How many times [`note_shape_changed`] was called.
pub fn shape_changes() -> u64 {
    SHAPE_CHANGES.load(Ordering::Relaxed)
}

/// Frames whose elements were built, on every output.
static FRAMES_BUILT: AtomicU64 = AtomicU64::new(0);

/// How many frames' elements were built so far, on every output: a state
/// applied and the renderer-state update that takes it with no frame
/// between them are one change to the scene.
pub fn frames_built() -> u64 {
    FRAMES_BUILT.load(Ordering::Relaxed)
}

/// How far past the expected position the walk looks for a surface's kept
/// element (surfaces added or removed since shift the order a little).
const LOOKAHEAD: usize = 8;

/// The number of states applied to a surface, counted by the commit
/// handler ([`note_applied`]).
#[derive(Debug, Default)]
pub struct AppliedStates(AtomicU64);

/// A state was applied to `surface`: its kept elements are stale.
/// Takes `surface`'s state lock.
pub fn note_applied(surface: &WlSurface) {
    {
        let mut applied_to = APPLIED_TO.lock().unwrap_or_else(|p| p.into_inner());
        if applied_to.len() == APPLIED_KEPT {
            applied_to.pop_front();
        }
        applied_to.push_back(surface.id());
        STATES_APPLIED.fetch_add(1, Ordering::Relaxed);
    }
    with_states(surface, |states| {
        states
            .data_map
            .get_or_insert_threadsafe(AppliedStates::default)
            .0
            .fetch_add(1, Ordering::Relaxed);
    });
}

fn applied_states(states: &SurfaceData) -> Option<u64> {
    states
        .data_map
        .get::<AppliedStates>()
        .map(|a| a.0.load(Ordering::Relaxed))
}

impl OutputScene {
    /// The elements of `space` on `output`, front to back, at the output's
    /// scale; updates which surfaces are on `output`. Hand them back with
    /// [`keep`](Self::keep) once drawn.
    pub fn elements(
        &mut self,
        renderer: &mut VkRenderer,
        space: &Space<Window>,
        output: &Output,
    ) -> anyhow::Result<Vec<Element>> {
        let region = space
            .output_geometry(output)
            .context("output is not mapped in the space")?;
        FRAMES_BUILT.fetch_add(1, Ordering::Relaxed);
        let scale = Scale::from(output.current_scale().fractional_scale());
        // Whatever happens below, the kept elements are taken.
        let mut kept_basis = self.kept_basis.take();
        if self.scale != Some(scale) {
            self.kept.clear();
            kept_basis = None;
            self.scale = Some(scale);
        }
        let mut windows = Vec::new();
        for window in space.elements().rev() {
            let Some(location) = space.element_location(window) else {
                continue;
            };
            // A window is walked when it or one of its popups reaches the output.
            let origin = location - window.geometry().loc;
            let mut bbox = window.bbox_with_popups();
            bbox.loc += origin;
            if region.overlaps(bbox) {
                windows.push((window.clone(), (origin - region.loc).to_physical_precise_round(scale)));
            }
        }
        let basis = Basis {
            windows,
            output: Rectangle::from_size(region.size.to_physical_precise_round(scale)),
            popups: false,
            shape: SHAPE_CHANGES.load(Ordering::Relaxed),
            applied: STATES_APPLIED.load(Ordering::Relaxed),
        };
        if let Some(elements) = kept_basis.and_then(|kept| reuse::frame(self, renderer, &kept, &basis, scale)) {
            self.basis = Some(basis);
            return Ok(elements);
        }
        let mut walk = Walk {
            renderer,
            scale,
            output: basis.output,
            elements: Vec::with_capacity(self.kept.entries.len()),
            built: Vec::with_capacity(self.kept.entries.len()),
            kept: std::mem::take(&mut self.kept),
            next_kept: 0,
            shown: Vec::with_capacity(self.shown.len()),
            popups: false,
            stats: SceneStats::default(),
        };
        for (window, origin) in &basis.windows {
            walk.window(window, *origin);
        }
        let Walk {
            elements,
            built,
            shown,
            popups,
            stats,
            ..
        } = walk;
        self.built = built;
        self.basis = Some(Basis { popups, ..basis });
        self.stats.add(stats);
        if shown != self.shown {
            update_outputs(output, &self.shown, &shown);
            self.shown = shown;
        }
        Ok(elements)
    }

    /// Keeps the elements [`elements`](Self::elements) returned, once drawn,
    /// for the next frame.
    pub fn keep(&mut self, elements: Vec<Element>) {
        let entries = std::mem::take(&mut self.built);
        let basis = self.basis.take();
        if entries.len() != elements.len() {
            return;
        }
        self.kept = Kept {
            entries,
            elements: elements.into_iter().map(Some).collect(),
        };
        self.kept_basis = basis;
    }

    /// Drops the kept elements and the buffers they hold (rendering stopped).
    pub fn forget(&mut self) {
        self.kept.clear();
        self.kept_basis = None;
        self.built.clear();
        self.basis = None;
    }

    pub fn stats(&self) -> SceneStats {
        self.stats
    }
}

/// Unmaps windows whose toplevel is gone. `toplevel_destroyed` normally
/// unmaps them first; smithay's `Space::refresh`, which the frame no longer
/// calls, did this too.
pub fn drop_dead_windows(space: &mut Space<Window>) {
    let dead: Vec<Window> = space.elements().filter(|w| !w.alive()).cloned().collect();
    for window in dead {
        space.unmap_elem(&window);
    }
}

/// Sends `enter` to the surfaces in `now` and `leave` to those only in `before`.
fn update_outputs(output: &Output, before: &[WlSurface], now: &[WlSurface]) {
    for surface in before.iter().filter(|s| !now.contains(s)) {
        output.leave(surface);
    }
    for surface in now {
        output.enter(surface);
    }
    output.cleanup();
}

/// One frame's walk of the space.
struct Walk<'r> {
    renderer: &'r mut VkRenderer,
    scale: Scale<f64>,
    /// The output in the walk's coordinates (physical, relative to the output).
    output: Rectangle<i32, Physical>,
    elements: Vec<Element>,
    /// What each of `elements` was built from.
    built: Vec<Entry>,
    /// The last frame's elements, in the order it walked them.
    kept: Kept,
    /// Where in `kept` the next surface's element is expected.
    next_kept: usize,
    shown: Vec<WlSurface>,
    /// A window walked had popups.
    popups: bool,
    stats: SceneStats,
}

impl Walk<'_> {
    /// A window at `origin` (its buffer's top left): popups in front, then its tree.
    fn window(&mut self, window: &Window, origin: Point<i32, Physical>) {
        let Some(toplevel) = window.toplevel() else { return };
        let surface = toplevel.wl_surface();
        for (popup, offset) in PopupManager::popups_for_surface(surface) {
            self.popups = true;
            let at = (window.geometry().loc + offset - popup.geometry().loc).to_physical_precise_round(self.scale);
            self.tree(popup.wl_surface(), origin + at);
        }
        self.tree(surface, origin);
    }

    /// A surface tree at `origin`, as smithay's
    /// `render_elements_from_surface_tree` walks it: a surface without a
    /// view (no buffer) hides its children.
    fn tree(&mut self, root: &WlSurface, origin: Point<i32, Physical>) {
        let scale = self.scale;
        with_surface_tree_downward(
            root,
            origin.to_f64(),
            |_, states, location| {
                let view = states
                    .data_map
                    .get::<RendererSurfaceStateUserData>()
                    .and_then(|d| d.lock().ok()?.view());
                match view {
                    Some(view) => TraversalAction::DoChildren(*location + view.offset.to_f64().to_physical(scale)),
                    None => TraversalAction::SkipChildren,
                }
            },
            |surface, states, location| {
                let Some(renderer_state) = states.data_map.get::<RendererSurfaceStateUserData>() else {
                    return;
                };
                let Ok(renderer_state) = renderer_state.lock() else {
                    return;
                };
                let Some(view) = renderer_state.view() else { return };
                let location = *location + view.offset.to_f64().to_physical(scale);
                let entry = Entry::read(surface, states, &renderer_state, view, location, scale, self.output);
                // build takes the renderer state's lock itself.
                drop(renderer_state);
                if entry.on_output {
                    self.shown.push(surface.clone());
                }
                let kept = entry.key.as_ref().and_then(|key| self.take_kept(key));
                if let Some(element) = kept {
                    self.push(element, entry);
                    self.stats.elements_reused += 1;
                    return;
                }
                self.stats.elements_built += 1;
                if let Some(element) = build(self.renderer, surface, states, location) {
                    self.push(element, entry);
                }
            },
            |_, _, _| true,
        );
    }

    /// The last frame's element for `key`'s surface if it was built from the
    /// same key.
    fn take_kept(&mut self, key: &ElementKey) -> Option<Element> {
        let entries = &self.kept.entries;
        let end = (self.next_kept + LOOKAHEAD).min(entries.len());
        let at = (self.next_kept..end).find(|&i| entries[i].key.as_ref().is_some_and(|k| k.surface == key.surface))?;
        self.next_kept = at + 1;
        if entries[at].key.as_ref() != Some(key) {
            return None;
        }
        self.kept.elements[at].take()
    }

    /// Adds an element; one without a key is never reused.
    fn push(&mut self, element: Element, entry: Entry) {
        self.elements.push(element);
        self.built.push(entry);
    }
}
