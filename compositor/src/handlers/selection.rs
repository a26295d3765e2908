//! wl_data_device (copy/paste, drag and drop) and primary selection.
//!
//! smithay keeps the selection per seat; we only decide which client may
//! read it: the one with keyboard focus (see `SeatHandler::focus_changed`).
//! Drag and drop is the client-driven kind (`wl_data_device.start_drag`);
//! the compositor starts no drags of its own.

use smithay::{
    delegate_data_device, delegate_primary_selection,
    wayland::selection::{
        data_device::{ClientDndGrabHandler, DataDeviceHandler, DataDeviceState, ServerDndGrabHandler},
        primary_selection::{PrimarySelectionHandler, PrimarySelectionState},
        SelectionHandler,
    },
};

use crate::state::State;

impl SelectionHandler for State {
    type SelectionUserData = ();
}

impl DataDeviceHandler for State {
    fn data_device_state(&self) -> &DataDeviceState {
        &self.data_device_state
    }
}

impl ClientDndGrabHandler for State {}
// The compositor offers no drag sources of its own, so nothing to send.
impl ServerDndGrabHandler for State {}

impl PrimarySelectionHandler for State {
    fn primary_selection_state(&self) -> &PrimarySelectionState {
        &self.primary_selection_state
    }
}

delegate_data_device!(State);
delegate_primary_selection!(State);
