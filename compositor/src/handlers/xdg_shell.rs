//! xdg_wm_base: toplevels and popups, and the placement policy.
//!
//! Policy: clients choose their own size (initial configure is 0x0); the n-th
//! toplevel to get a buffer in this run is placed at logical
//! `(32 + 64n, 32 + 64n)`, and later-mapped windows stack on top. The cascade
//! is deterministic so screenshots taken by tests are reproducible.
//!
//! Focus, stacking, move, maximize and fullscreen are [`crate::shell`]'s;
//! this module answers the requests. Popups are placed by their positioner,
//! then slid or flipped (as the positioner allows) to stay on the output.

use smithay::desktop::PopupManager;
use smithay::reexports::wayland_server::Resource;
use smithay::{
    backend::renderer::utils::with_renderer_surface_state,
    delegate_xdg_shell,
    desktop::{
        find_popup_root_surface, get_popup_toplevel_coords, PopupKeyboardGrab, PopupKind, PopupPointerGrab,
        PopupUngrabStrategy, Window,
    },
    input::{pointer::Focus, Seat},
    reexports::{
        wayland_protocols::xdg::shell::server::xdg_toplevel,
        wayland_server::protocol::{wl_output::WlOutput, wl_seat::WlSeat, wl_surface::WlSurface},
    },
    utils::{Logical, Point, Rectangle, Serial, SERIAL_COUNTER},
    wayland::shell::xdg::{PopupSurface, PositionerState, ToplevelSurface, XdgShellHandler, XdgShellState},
};
use tracing::{debug, info, warn};

use crate::state::State;

/// Origin and step of the window cascade, in logical pixels.
const CASCADE_ORIGIN: i32 = 32;
const CASCADE_STEP: i32 = 64;

/// Toplevels waiting for their first buffer, and the cascade counter.
#[derive(Default)]
pub struct Placement {
    unmapped: Vec<Window>,
    mapped_count: usize,
    /// Surface origins asked for before the toplevel mapped (WLCS).
    requested: Vec<(WlSurface, Point<i32, Logical>)>,
}

/// Which cascade slot a window was given; kept across unmap/remap so a window
/// that re-attaches a buffer comes back where it was.
struct CascadeSlot(Point<i32, Logical>);

impl Placement {
    /// Remembers where an unmapped toplevel's surface must appear.
    pub fn request_position(&mut self, surface: &WlSurface, pos: Point<i32, Logical>) {
        self.requested.retain(|(s, _)| s != surface && s.is_alive());
        self.requested.push((surface.clone(), pos));
    }

    fn take_requested(&mut self, surface: &WlSurface) -> Option<Point<i32, Logical>> {
        let idx = self.requested.iter().position(|(s, _)| s == surface)?;
        Some(self.requested.swap_remove(idx).1)
    }

    /// Hands out the next cascade position on `output` (its logical
    /// rectangle): slot m is (`CASCADE_ORIGIN` + m·`CASCADE_STEP`) from the
    /// output's corner on both axes, and the slots wrap after the last one
    /// whose corner lies on the output, so a new window never opens off the
    /// output however many came before it.
    fn next_position(&mut self, output: Option<Rectangle<i32, Logical>>) -> Point<i32, Logical> {
        let (corner, slots) = match output {
            Some(area) => (area.loc, cascade_slots(area.size.w.min(area.size.h))),
            None => (Point::default(), usize::MAX),
        };
        let slot = i32::try_from(self.mapped_count % slots).unwrap_or(i32::MAX / CASCADE_STEP);
        self.mapped_count = self.mapped_count.wrapping_add(1);
        let offset = CASCADE_ORIGIN.saturating_add(CASCADE_STEP.saturating_mul(slot));
        corner + Point::from((offset, offset))
    }
}

/// How many cascade slots an output whose shorter side is `side` logical
/// pixels holds (slots whose corner lies on it): at least one.
fn cascade_slots(side: i32) -> usize {
    let on_output = (side - CASCADE_ORIGIN + CASCADE_STEP - 1) / CASCADE_STEP;
    usize::try_from(on_output).unwrap_or(0).max(1)
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

    fn new_popup(&mut self, surface: PopupSurface, positioner: PositionerState) {
        let geometry = self.unconstrained_popup_geometry(&surface, &positioner);
        surface.with_pending_state(|state| state.geometry = geometry);
        if let Err(err) = self.popups.track_popup(PopupKind::Xdg(surface)) {
            warn!("failed to track popup: {err:?}");
        }
    }

    fn reposition_request(&mut self, surface: PopupSurface, positioner: PositionerState, token: u32) {
        let geometry = self.unconstrained_popup_geometry(&surface, &positioner);
        surface.with_pending_state(|state| {
            state.geometry = geometry;
            state.positioner = positioner;
        });
        surface.send_repositioned(token);
    }

    /// An explicit popup grab: pointer and keyboard go to the popup chain
    /// until the user clicks outside it, which dismisses the popups.
    fn grab(&mut self, surface: PopupSurface, seat: WlSeat, serial: Serial) {
        let Some(seat) = Seat::<State>::from_resource(&seat) else {
            return;
        };
        let kind = PopupKind::Xdg(surface);
        let Ok(root) = find_popup_root_surface(&kind) else {
            return;
        };
        if self.window_for_surface(&root).is_none() {
            // Not mapped (or a popup of a popup whose root went away).
            let _ = PopupManager::dismiss_popup(&root, &kind);
            return;
        }
        let mut grab = match self.popups.grab_popup(root, kind, &seat, serial) {
            Ok(grab) => grab,
            Err(err) => {
                debug!("popup grab refused: {err:?}");
                return;
            }
        };
        if let Some(keyboard) = seat.get_keyboard() {
            if keyboard.is_grabbed()
                && !(keyboard.has_grab(serial) || keyboard.has_grab(grab.previous_serial().unwrap_or(serial)))
            {
                grab.ungrab(PopupUngrabStrategy::All);
                return;
            }
            keyboard.set_focus(self, grab.current_grab(), serial);
            keyboard.set_grab(self, PopupKeyboardGrab::new(&grab), serial);
        }
        if let Some(pointer) = seat.get_pointer() {
            if pointer.is_grabbed()
                && !(pointer.has_grab(serial)
                    || pointer.has_grab(grab.previous_serial().unwrap_or_else(|| grab.serial())))
            {
                grab.ungrab(PopupUngrabStrategy::All);
                return;
            }
            pointer.set_grab(self, PopupPointerGrab::new(&grab), serial, Focus::Keep);
        }
    }

    fn move_request(&mut self, surface: ToplevelSurface, seat: WlSeat, serial: Serial) {
        let Some(seat) = Seat::<State>::from_resource(&seat) else {
            return;
        };
        let Some(pointer) = seat.get_pointer() else { return };
        // Only a button press on this very surface may start a move.
        if !pointer.has_grab(serial) {
            return;
        }
        let Some(start_data) = pointer.grab_start_data() else {
            return;
        };
        let on_surface = start_data
            .focus
            .as_ref()
            .is_some_and(|(focus, _)| focus.id().same_client_as(&surface.wl_surface().id()));
        if !on_surface {
            return;
        }
        let Some(window) = self.window_for_surface(surface.wl_surface()) else {
            return;
        };
        let Some(initial_window_location) = self.space.element_location(&window) else {
            return;
        };
        let grab = crate::shell::grabs::MoveGrab {
            start_data,
            window,
            initial_window_location,
        };
        pointer.set_grab(self, grab, serial, Focus::Clear);
    }

    fn maximize_request(&mut self, surface: ToplevelSurface) {
        self.fill_output(&surface, xdg_toplevel::State::Maximized);
    }

    fn unmaximize_request(&mut self, surface: ToplevelSurface) {
        self.unfill_output(&surface, xdg_toplevel::State::Maximized);
    }

    /// There is one output, so the requested one (if any) is that one.
    fn fullscreen_request(&mut self, surface: ToplevelSurface, output: Option<WlOutput>) {
        let wl_output = output.or_else(|| {
            let client = surface.wl_surface().client()?;
            self.backend.output().client_outputs(&client).next()
        });
        surface.with_pending_state(|s| s.fullscreen_output = wl_output);
        self.fill_output(&surface, xdg_toplevel::State::Fullscreen);
    }

    fn unfullscreen_request(&mut self, surface: ToplevelSurface) {
        surface.with_pending_state(|s| s.fullscreen_output = None);
        self.unfill_output(&surface, xdg_toplevel::State::Fullscreen);
    }
}

impl State {
    /// The popup's geometry (relative to its parent) after sliding/flipping
    /// it, as its positioner allows, to stay on the output.
    fn unconstrained_popup_geometry(
        &self,
        popup: &PopupSurface,
        positioner: &PositionerState,
    ) -> Rectangle<i32, Logical> {
        let Ok(root) = find_popup_root_surface(&PopupKind::Xdg(popup.clone())) else {
            return positioner.get_geometry();
        };
        let Some(window) = self.window_for_surface(&root) else {
            return positioner.get_geometry();
        };
        let Some(window_loc) = self.space.element_location(&window) else {
            return positioner.get_geometry();
        };
        // The target rectangle in the coordinate space of the popup's parent.
        let mut target = self.output_geometry();
        target.loc -= window_loc + window.geometry().loc;
        target.loc -= get_popup_toplevel_coords(&PopupKind::Xdg(popup.clone()));
        positioner.get_unconstrained_geometry(target)
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
    window.on_commit();
    let requested = window
        .toplevel()
        .and_then(|t| state.placement.take_requested(t.wl_surface()));
    let slot = window.user_data().get::<CascadeSlot>().map(|slot| slot.0);
    let position = match (requested, slot) {
        (Some(requested), _) => crate::shell::space_location_for(&window, requested),
        (None, Some(slot)) => slot,
        (None, None) => {
            let output = state.space.output_geometry(state.backend.output());
            let position = state.placement.next_position(output);
            window.user_data().insert_if_missing(|| CascadeSlot(position));
            position
        }
    };
    let position = state.map_location(&window, position);
    info!(?position, "mapping toplevel");
    state.shell_stats.windows_mapped += 1;
    state.space.map_element(window.clone(), position, true);
    state.focus_window(&window, SERIAL_COUNTER.next_serial());
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
    let Some(PopupKind::Xdg(popup)) = state.popups.find_popup(surface) else {
        return;
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cascade_wraps_within_the_output() {
        let mut placement = Placement::default();
        let output = Some(Rectangle::from_size((320, 240).into()));
        let xs: Vec<i32> = (0..7).map(|_| placement.next_position(output).x).collect();
        assert_eq!(xs, [32, 96, 160, 224, 32, 96, 160]);
        assert_eq!(cascade_slots(1080), 17);
        assert_eq!(cascade_slots(416), 6);
        assert_eq!(cascade_slots(40), 1);
        let shifted = Some(Rectangle::new((1000, 0).into(), (320, 240).into()));
        assert_eq!(placement.next_position(shifted), Point::from((1224, 224)));
    }
}
