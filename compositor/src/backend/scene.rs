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

use anyhow::Context;
use smithay::{
    backend::renderer::{
        element::{surface::WaylandSurfaceRenderElement, Kind},
        utils::RendererSurfaceStateUserData,
    },
    desktop::{PopupManager, Space, Window},
    output::Output,
    reexports::wayland_server::protocol::wl_surface::WlSurface,
    utils::{IsAlive, Physical, Point, Rectangle, Scale},
    wayland::compositor::{with_surface_tree_downward, TraversalAction},
};
use tracing::warn;

use crate::render::VkRenderer;

/// The surfaces one output showed in the last frame, front to back.
#[derive(Debug, Default)]
pub struct OutputScene {
    shown: Vec<WlSurface>,
    /// The last frame's element count, to size the next frame's list.
    elements: usize,
}

impl OutputScene {
    /// The elements of `space` on `output`, front to back, at the output's
    /// scale; updates which surfaces are on `output`.
    pub fn elements(
        &mut self,
        renderer: &mut VkRenderer,
        space: &Space<Window>,
        output: &Output,
    ) -> anyhow::Result<Vec<WaylandSurfaceRenderElement<VkRenderer>>> {
        let region = space
            .output_geometry(output)
            .context("output is not mapped in the space")?;
        let scale = Scale::from(output.current_scale().fractional_scale());
        let mut walk = Walk {
            renderer,
            scale,
            output: Rectangle::from_size(region.size.to_physical_precise_round(scale)),
            elements: Vec::with_capacity(self.elements),
            shown: Vec::with_capacity(self.shown.len()),
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
        let Walk { elements, shown, .. } = walk;
        self.elements = elements.len();
        if shown != self.shown {
            update_outputs(output, &self.shown, &shown);
            self.shown = shown;
        }
        Ok(elements)
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
    elements: Vec<WaylandSurfaceRenderElement<VkRenderer>>,
    shown: Vec<WlSurface>,
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
                let view = states
                    .data_map
                    .get::<RendererSurfaceStateUserData>()
                    .and_then(|d| d.lock().ok()?.view());
                let Some(view) = view else { return };
                let location = *location + view.offset.to_f64().to_physical(scale);
                let size = view.dst.to_f64().to_physical(scale);
                let placed = Rectangle::new(location, size).to_i32_round();
                if placed.overlaps(self.output) {
                    self.shown.push(surface.clone());
                }
                match WaylandSurfaceRenderElement::from_surface(
                    self.renderer,
                    surface,
                    states,
                    location,
                    1.0,
                    Kind::Unspecified,
                ) {
                    Ok(Some(element)) => self.elements.push(element),
                    Ok(None) => {}
                    Err(err) => warn!("failed to import a surface's buffer: {err}"),
                }
            },
            |_, _, _| true,
        );
    }
}
