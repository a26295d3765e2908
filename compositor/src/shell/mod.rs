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

    /// Puts the toplevel whose surface is `surface` so that the surface's
    /// top-left is at `pos` (WLCS's `position_window_absolute`). A toplevel
    /// not mapped yet goes there when it maps.
    pub fn position_window(&mut self, surface: &WlSurface, pos: Point<i32, Logical>) {
        match self.window_for_surface(surface) {
            Some(window) => {
                let loc = pos + window.geometry().loc;
                self.space.map_element(window, loc, false);
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
