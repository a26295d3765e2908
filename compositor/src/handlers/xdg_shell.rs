//! xdg_wm_base: toplevels and popups, and the placement policy.
//!
//! Policy: clients choose their own size (initial configure is 0x0); the n-th
//! toplevel to get a buffer in this run is placed at logical
//! `(32 + 64n, 32 + 64n)`, and later-mapped windows stack on top. The cascade
//! is deterministic so screenshots taken by tests are reproducible.

use smithay::{
    backend::renderer::utils::with_renderer_surface_state,
    delegate_xdg_shell,
    desktop::{find_popup_root_surface, PopupKind, Window},
    reexports::wayland_server::protocol::{wl_seat::WlSeat, wl_surface::WlSurface},
    utils::{Logical, Point, Serial, SERIAL_COUNTER},
    wayland::shell::xdg::{PopupSurface, PositionerState, ToplevelSurface, XdgShellHandler, XdgShellState},
};
use tracing::{debug, warn};

use crate::state::State;

/// Origin and step of the window cascade, in logical pixels.
const CASCADE_ORIGIN: i32 = 32;
const CASCADE_STEP: i32 = 64;

/// Toplevels waiting for their first buffer, and the cascade counter.
#[derive(Default)]
pub struct Placement {
    unmapped: Vec<Window>,
    mapped_count: usize,
}

/// Which cascade slot a window was given; kept across unmap/remap so a window
/// that re-attaches a buffer comes back where it was.
struct CascadeSlot(Point<i32, Logical>);

impl Placement {
    /// Hands out the next cascade position.
    fn next_position(&mut self) -> Point<i32, Logical> {
        let n = i32::try_from(self.mapped_count).unwrap_or(i32::MAX / CASCADE_STEP);
        self.mapped_count += 1;
        let offset = CASCADE_ORIGIN.saturating_add(CASCADE_STEP.saturating_mul(n));
        (offset, offset).into()
    }
}

impl XdgShellHandler for State {
    fn xdg_shell_state(&mut self) -> &mut XdgShellState {
        &mut self.xdg_shell_state
    }

    fn new_toplevel(&mut self, surface: ToplevelSurface) {
        // Mapped only once it has a buffer, see `handle_commit`.
        self.placement.unmapped.push(Window::new_wayland_window(surface));
    }

    fn toplevel_destroyed(&mut self, surface: ToplevelSurface) {
        self.placement.unmapped.retain(|w| w.toplevel() != Some(&surface));
        let mapped = self.space.elements().find(|w| w.toplevel() == Some(&surface)).cloned();
        if let Some(window) = mapped {
            self.space.unmap_elem(&window);
        }
    }

    fn new_popup(&mut self, surface: PopupSurface, _positioner: PositionerState) {
        // Geometry stays as the client's positioner computed it; no constraint
        // solving against the output in a headless compositor.
        if let Err(err) = self.popups.track_popup(PopupKind::Xdg(surface)) {
            warn!("failed to track popup: {err:?}");
        }
    }

    fn reposition_request(&mut self, surface: PopupSurface, positioner: PositionerState, token: u32) {
        surface.with_pending_state(|state| {
            state.geometry = positioner.get_geometry();
            state.positioner = positioner;
        });
        surface.send_repositioned(token);
    }

    fn grab(&mut self, _surface: PopupSurface, _seat: WlSeat, _serial: Serial) {
        // No input devices headless, so there is nothing to grab.
    }
}

/// Reacts to a commit on a role surface: initial configures and first maps.
pub fn handle_commit(state: &mut State, surface: &WlSurface) {
    configure_popup_if_needed(state, surface);

    let Some(idx) = state
        .placement
        .unmapped
        .iter()
        .position(|w| w.toplevel().is_some_and(|t| t.wl_surface() == surface))
    else {
        unmap_if_buffer_removed(state, surface);
        return;
    };
    let window = state.placement.unmapped[idx].clone();
    let Some(toplevel) = window.toplevel() else { return };

    if !toplevel.is_initial_configure_sent() {
        // Pending size stays None, i.e. 0x0: the client picks its size.
        toplevel.send_configure();
        return;
    }
    if !has_buffer(surface) {
        return;
    }
    state.placement.unmapped.swap_remove(idx);
    map_window(state, window);
}

/// Places a window that just got its first buffer and gives it focus.
fn map_window(state: &mut State, window: Window) {
    let position = match window.user_data().get::<CascadeSlot>() {
        Some(slot) => slot.0,
        None => {
            let position = state.placement.next_position();
            window.user_data().insert_if_missing(|| CascadeSlot(position));
            position
        }
    };
    debug!(?position, "mapping toplevel");
    window.on_commit();
    state.space.map_element(window.clone(), position, true);
    focus_window(state, &window);
}

/// Moves keyboard focus to `window` and marks it activated.
fn focus_window(state: &mut State, window: &Window) {
    let Some(toplevel) = window.toplevel() else { return };
    for other in state.space.elements() {
        if other != window {
            other.set_activated(false);
        }
    }
    window.set_activated(true);
    toplevel.send_pending_configure();
    if let Some(keyboard) = state.seat.get_keyboard() {
        let surface = toplevel.wl_surface().clone();
        keyboard.set_focus(state, Some(surface), SERIAL_COUNTER.next_serial());
    }
}

/// A mapped toplevel that commits a null buffer becomes unmapped again and
/// must be re-mapped (to its old slot) when it attaches a new one.
fn unmap_if_buffer_removed(state: &mut State, surface: &WlSurface) {
    if has_buffer(surface) {
        return;
    }
    let window = state
        .space
        .elements()
        .find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == surface))
        .cloned();
    if let Some(window) = window {
        debug!("toplevel committed a null buffer; unmapping");
        state.space.unmap_elem(&window);
        state.placement.unmapped.push(window);
    }
}

/// Popups need their initial configure on first commit, like toplevels.
fn configure_popup_if_needed(state: &mut State, surface: &WlSurface) {
    let Some(PopupKind::Xdg(popup)) = state.popups.find_popup(surface) else { return };
    if popup.is_initial_configure_sent() {
        return;
    }
    if find_popup_root_surface(&PopupKind::Xdg(popup.clone())).is_err() {
        return;
    }
    if let Err(err) = popup.send_configure() {
        warn!("popup initial configure failed: {err:?}");
    }
}

fn has_buffer(surface: &WlSurface) -> bool {
    with_renderer_surface_state(surface, |s| s.buffer().is_some()).unwrap_or(false)
}

delegate_xdg_shell!(State);
