//! wl_seat with keyboard and pointer capabilities.
//!
//! Headless runs have no input devices; the seat exists so toolkits that
//! require one start up, and keyboard focus follows the newest window.

use smithay::{
    delegate_seat,
    input::{Seat, SeatHandler, SeatState},
    reexports::wayland_server::protocol::wl_surface::WlSurface,
};

use crate::state::State;

impl SeatHandler for State {
    type KeyboardFocus = WlSurface;
    type PointerFocus = WlSurface;
    type TouchFocus = WlSurface;

    fn seat_state(&mut self) -> &mut SeatState<State> {
        &mut self.seat_state
    }

    fn focus_changed(&mut self, _seat: &Seat<Self>, focused: Option<&WlSurface>) {
        tracing::trace!(?focused, "keyboard focus changed");
    }
}

delegate_seat!(State);
