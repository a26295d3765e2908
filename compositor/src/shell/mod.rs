//! Window management policy: hit testing, focus, stacking, maximize and
//! fullscreen, and the synthetic-input entry points ([`input`]).
//!
//! Policy (stated, since clients and WLCS observe it):
//! * Keyboard focus follows clicks (click-to-focus); a newly mapped toplevel
//!   gets focus. Pointer focus is the surface under the pointer (popups first,
//!   then toplevels in stacking order).
//! * A click raises the window it lands on. Super or Alt + left drag moves a
//!   window without the client seeing the click; `xdg_toplevel.move` starts
//!   the same move for client-side decorations.
//! * Maximize and fullscreen configure the window to the output's size at the
//!   output's origin; the previous position is restored when they end.
//! * Decorations are client-side: `xdg-decoration` always answers
//!   `client_side`, because the compositor draws no title bars.

pub mod grabs;
pub mod input;

use smithay::{
    desktop::{Window, WindowSurfaceType},
    reexports::{wayland_protocols::xdg::shell::server::xdg_toplevel, wayland_server::protocol::wl_surface::WlSurface},
    utils::{Logical, Point, Rectangle, Serial},
    wayland::{seat::WaylandFocus, shell::xdg::ToplevelSurface},
};

use crate::state::State;

/// Where a maximized or fullscreen window was before, to restore it.
pub struct RestoreGeometry(pub std::sync::Mutex<Option<Point<i32, Logical>>>);

impl State {
    /// The topmost surface (popup, subsurface or toplevel) under `pos`, and
    /// that surface's origin in global coordinates.
    pub fn surface_under(&self, pos: Point<f64, Logical>) -> Option<(WlSurface, Point<f64, Logical>)> {
        let (window, loc) = self.space.element_under(pos)?;
        let (surface, surface_loc) = window.surface_under(pos - loc.to_f64(), WindowSurfaceType::ALL)?;
        Some((surface, (surface_loc + loc).to_f64()))
    }

    /// The mapped window whose toplevel is `surface` (the root of a tree).
    pub fn window_for_surface(&self, surface: &WlSurface) -> Option<Window> {
        self.space
            .elements()
            .find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == surface))
            .cloned()
    }

    /// Raises `window`, marks it the only activated one and gives it keyboard focus.
    pub fn focus_window(&mut self, window: &Window, serial: Serial) {
        self.space.raise_element(window, true);
        for other in self.space.elements() {
            if other != window && other.set_activated(false) {
                if let Some(t) = other.toplevel() {
                    t.send_pending_configure();
                }
            }
        }
        window.set_activated(true);
        if let Some(toplevel) = window.toplevel() {
            toplevel.send_pending_configure();
        }
        if let Some(keyboard) = self.seat.get_keyboard() {
            let surface = window.wl_surface().map(|s| s.into_owned());
            keyboard.set_focus(self, surface, serial);
        }
    }

    /// Puts the toplevel whose surface is `surface` at `pos` (WLCS's
    /// `position_window_absolute`; see [`space_location_for`]). A toplevel
    /// not mapped yet goes there when it maps.
    pub fn position_window(&mut self, surface: &WlSurface, pos: Point<i32, Logical>) {
        match self.window_for_surface(surface) {
            Some(window) => {
                let loc = space_location_for(&window, pos);
                self.relocate_window(&window, loc);
                self.refresh_pointer_focus();
            }
            None => self.placement.request_position(surface, pos),
        }
    }

    /// The output's rectangle in the global (logical) space.
    pub fn output_geometry(&self) -> Rectangle<i32, Logical> {
        self.space
            .output_geometry(self.backend.output())
            .unwrap_or_else(|| Rectangle::from_size((1, 1).into()))
    }

    /// Maximizes or fullscreens `surface`: configure to the output size at
    /// the output origin, remembering where the window was.
    pub fn fill_output(&mut self, surface: &ToplevelSurface, state: xdg_toplevel::State) {
        let geometry = self.output_geometry();
        surface.with_pending_state(|s| {
            s.states.set(state);
            s.size = Some(geometry.size);
        });
        if let Some(window) = self.window_for_surface(surface.wl_surface()) {
            let restore = window.user_data().get_or_insert(|| RestoreGeometry(Default::default()));
            let mut slot = restore.0.lock().unwrap();
            if slot.is_none() {
                *slot = self.space.element_location(&window);
            }
            drop(slot);
            self.space.map_element(window, geometry.loc, true);
        }
        if surface.is_initial_configure_sent() {
            surface.send_pending_configure();
        }
    }

    /// Where a window mapped for the first time goes: `normal`, unless it
    /// was made fullscreen or maximized before it had a buffer; then the
    /// output origin (the size it was configured to fills the output), and
    /// `normal` is where it goes when that ends.
    pub fn map_location(&self, window: &Window, normal: Point<i32, Logical>) -> Point<i32, Logical> {
        let filled = window.toplevel().is_some_and(|t| {
            t.with_pending_state(|s| {
                s.states.contains(xdg_toplevel::State::Fullscreen) || s.states.contains(xdg_toplevel::State::Maximized)
            })
        });
        if !filled {
            return normal;
        }
        let restore = window.user_data().get_or_insert(|| RestoreGeometry(Default::default()));
        restore.0.lock().unwrap().get_or_insert(normal);
        self.output_geometry().loc
    }

    /// Ends maximize or fullscreen: the client picks its size again and the
    /// window goes back to where it was, once no filling state is left.
    pub fn unfill_output(&mut self, surface: &ToplevelSurface, state: xdg_toplevel::State) {
        let still_filled = surface.with_pending_state(|s| {
            s.states.unset(state);
            let filled =
                s.states.contains(xdg_toplevel::State::Maximized) || s.states.contains(xdg_toplevel::State::Fullscreen);
            if !filled {
                s.size = None;
            }
            filled
        });
        if !still_filled {
            if let Some(window) = self.window_for_surface(surface.wl_surface()) {
                let old = window
                    .user_data()
                    .get::<RestoreGeometry>()
                    .and_then(|r| r.0.lock().unwrap().take());
                if let Some(loc) = old {
                    self.space.map_element(window, loc, false);
                }
            }
        }
        if surface.is_initial_configure_sent() {
            surface.send_pending_configure();
        }
    }
}

/// The space location that puts `window` at `pos`: its window geometry's
/// top-left where the client set one (`xdg_surface.set_window_geometry`,
/// which WLCS's `pointer_respects_window_geom_offset` expects), else its
/// main surface's top-left (smithay's default geometry is the bounding box
/// of the whole tree, subsurfaces included, which would move the main
/// surface when a subsurface sticks out to the left or top).
pub fn space_location_for(window: &Window, pos: Point<i32, Logical>) -> Point<i32, Logical> {
    if has_client_geometry(window) {
        pos
    } else {
        pos + window.geometry().loc
    }
}

/// Whether the client set a window geometry (`xdg_surface.set_window_geometry`).
fn has_client_geometry(window: &Window) -> bool {
    use smithay::wayland::{compositor::with_states, shell::xdg::SurfaceCachedState};
    window.toplevel().is_some_and(|t| {
        with_states(t.wl_surface(), |states| {
            states
                .cached_state
                .get::<SurfaceCachedState>()
                .current()
                .geometry
                .is_some()
        })
    })
}

impl State {
    /// Moves a mapped window without changing the stacking order (smithay's
    /// `Space::map_element` raises it; the windows above are raised again).
    pub fn relocate_window(&mut self, window: &Window, loc: Point<i32, Logical>) {
        let above: Vec<Window> = self
            .space
            .elements()
            .skip_while(|w| *w != window)
            .skip(1)
            .cloned()
            .collect();
        self.space.map_element(window.clone(), loc, false);
        for w in &above {
            self.space.raise_element(w, false);
        }
    }

    /// A window without a client-set geometry has smithay's default one: the
    /// bounding box of its whole surface tree. When a subsurface grows that
    /// box to the left or top, `Space`, which places the geometry's top-left,
    /// would move the main surface; this moves it back, so only the
    /// subsurface moves (WLCS SubsurfaceTest, SurfaceInputRegions).
    pub fn keep_main_surface_in_place(&mut self, window: &Window, geometry_before: Point<i32, Logical>) {
        let after = window.geometry().loc;
        if after == geometry_before || has_client_geometry(window) {
            return;
        }
        if let Some(loc) = self.space.element_location(window) {
            self.relocate_window(window, loc - geometry_before + after);
        }
    }
}
