//! What one output shows: its render elements, and the `wl_surface.enter` /
//! `leave` that follow from them.
//!
//! DOC: one walk per frame
//!
//! A frame walks the space once, front to back: each window's popups, then
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

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use smithay::{
    backend::renderer::{
        element::{surface::WaylandSurfaceRenderElement, Kind},
        utils::{CommitCounter, RendererSurfaceStateUserData, SurfaceView},
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

pub use element::SceneElement;

type Element = SceneElement;

/// The surfaces one output showed in the last frame, front to back, and
/// the elements drawn for them.
#[derive(Default)]
pub struct OutputScene {
    shown: Vec<WlSurface>,
    /// What each element of the frame being drawn was built from, in order
    /// (`None`: never reused).
    keys: Vec<Option<ElementKey>>,
    /// The last drawn frame's elements, for the next walk.
    kept: Kept,
    /// The scale the kept elements were built at.
    scale: Option<Scale<f64>>,
    stats: SceneStats,
}

impl std::fmt::Debug for OutputScene {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputScene")
            .field("shown", &self.shown.len())
            .field("kept", &self.kept.keys.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Elements built and reused, over the compositor's life.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SceneStats {
    pub elements_built: u64,
    pub elements_reused: u64,
}

impl SceneStats {
    pub fn add(&mut self, other: SceneStats) {
        self.elements_built += other.elements_built;
        self.elements_reused += other.elements_reused;
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

/// The last drawn frame's elements and what each was built from, in the
/// order the frame walked them. Two lists rather than one of pairs: handing
/// a frame's elements back then moves each list whole.
#[derive(Default)]
struct Kept {
    keys: Vec<Option<ElementKey>>,
    /// `None` once taken by the next walk.
    elements: Vec<Option<Element>>,
}

impl Kept {
    fn clear(&mut self) {
        self.keys.clear();
        self.elements.clear();
    }
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
        let scale = Scale::from(output.current_scale().fractional_scale());
        if self.scale != Some(scale) {
            self.kept.clear();
            self.scale = Some(scale);
        }
        let mut walk = Walk {
            renderer,
            scale,
            output: Rectangle::from_size(region.size.to_physical_precise_round(scale)),
            elements: Vec::with_capacity(self.kept.keys.len()),
            keys: Vec::with_capacity(self.kept.keys.len()),
            kept: std::mem::take(&mut self.kept),
            next_kept: 0,
            shown: Vec::with_capacity(self.shown.len()),
            stats: SceneStats::default(),
        };
        let windows: Vec<&Window> = space.elements().collect();
        for window in windows.into_iter().rev() {
            let Some(location) = space.element_location(window) else {
                continue;
            };
            // A window is walked when it or one of its popups reaches the output.
            let origin = location - window.geometry().loc;
            let mut bbox = window.bbox_with_popups();
            bbox.loc += origin;
            if region.overlaps(bbox) {
                walk.window(window, (origin - region.loc).to_physical_precise_round(scale));
            }
        }
        let Walk {
            elements,
            keys,
            shown,
            stats,
            ..
        } = walk;
        self.keys = keys;
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
        let keys = std::mem::take(&mut self.keys);
        if keys.len() != elements.len() {
            return;
        }
        self.kept = Kept {
            keys,
            elements: elements.into_iter().map(Some).collect(),
        };
    }

    /// Drops the kept elements and the buffers they hold (rendering stopped).
    pub fn forget(&mut self) {
        self.kept.clear();
        self.keys.clear();
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
    keys: Vec<Option<ElementKey>>,
    /// The last frame's elements, in the order it walked them.
    kept: Kept,
    /// Where in `kept` the next surface's element is expected.
    next_kept: usize,
    shown: Vec<WlSurface>,
    stats: SceneStats,
}

impl Walk<'_> {
    /// A window at `origin` (its buffer's top left): popups in front, then its tree.
    fn window(&mut self, window: &Window, origin: Point<i32, Physical>) {
        let Some(toplevel) = window.toplevel() else { return };
        let surface = toplevel.wl_surface();
        for (popup, offset) in PopupManager::popups_for_surface(surface) {
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
                let size = view.dst.to_f64().to_physical(scale);
                let placed = Rectangle::new(location, size).to_i32_round();
                if placed.overlaps(self.output) {
                    self.shown.push(surface.clone());
                }
                let key = applied_states(states).map(|applied| ElementKey {
                    surface: surface.id(),
                    applied,
                    buffer: renderer_state.buffer().map(|buffer| buffer.id()),
                    commit: renderer_state.current_commit(),
                    view,
                    buffer_scale: renderer_state.buffer_scale(),
                    buffer_transform: renderer_state.buffer_transform(),
                    location,
                });
                let kept = key.as_ref().and_then(|key| self.take_kept(key));
                // from_surface takes the renderer state's lock itself.
                drop(renderer_state);
                if let Some(element) = kept {
                    self.push(element, key);
                    self.stats.elements_reused += 1;
                    return;
                }
                self.stats.elements_built += 1;
                match WaylandSurfaceRenderElement::from_surface(
                    self.renderer,
                    surface,
                    states,
                    location,
                    1.0,
                    Kind::Unspecified,
                ) {
                    Ok(Some(element)) => self.push(SceneElement::new(element), key),
                    Ok(None) => {}
                    Err(err) => warn!("failed to import a surface's buffer: {err}"),
                }
            },
            |_, _, _| true,
        );
    }

    /// The last frame's element for `key`'s surface if it was built from the
    /// same key.
    fn take_kept(&mut self, key: &ElementKey) -> Option<Element> {
        let keys = &self.kept.keys;
        let end = (self.next_kept + LOOKAHEAD).min(keys.len());
        let at = (self.next_kept..end).find(|&i| keys[i].as_ref().is_some_and(|k| k.surface == key.surface))?;
        self.next_kept = at + 1;
        if keys[at].as_ref() != Some(key) {
            return None;
        }
        self.kept.elements[at].take()
    }

    /// Adds an element; one without a key is never reused.
    fn push(&mut self, element: Element, key: Option<ElementKey>) {
        self.elements.push(element);
        self.keys.push(key);
    }
}
