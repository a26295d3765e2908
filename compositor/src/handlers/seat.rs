//! wl_seat with keyboard, pointer and touch capabilities, plus
//! zwp_relative_pointer_manager_v1.
//!
//! Input comes from [`crate::shell::input`] (WLCS's fake devices and tests on
//! the headless backend). Keyboard focus follows clicks and newly mapped
//! windows; the client with keyboard focus is the one that may read the
//! clipboard and primary selection.

use smithay::{
    delegate_relative_pointer, delegate_seat,
    input::{pointer::CursorImageStatus, Seat, SeatHandler, SeatState},
    reexports::wayland_server::{protocol::wl_surface::WlSurface, Resource},
    wayland::selection::{data_device::set_data_device_focus, primary_selection::set_primary_focus},
};

use crate::state::State;

impl SeatHandler for State {
    type KeyboardFocus = WlSurface;
    type PointerFocus = WlSurface;
    type TouchFocus = WlSurface;

    fn seat_state(&mut self) -> &mut SeatState<State> {
        &mut self.seat_state
    }

    fn focus_changed(&mut self, seat: &Seat<Self>, focused: Option<&WlSurface>) {
        tracing::trace!(?focused, "keyboard focus changed");
        let client = focused.and_then(|s| self.display_handle.get_client(s.id()).ok());
        set_data_device_focus(&self.display_handle, seat, client.clone());
        set_primary_focus(&self.display_handle, seat, client);
    }

    fn cursor_image(&mut self, _seat: &Seat<Self>, image: CursorImageStatus) {
        // No cursor plane headless: the image is remembered, not drawn.
        self.cursor_status = image;
    }
}

delegate_seat!(State);
delegate_relative_pointer!(State);
