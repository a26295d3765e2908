//! Input entry points: every input source (WLCS's fake devices, tests, and
//! later libinput on the DRM backend) goes through these, so focus, grabs and
//! bindings behave the same whatever produced the event.
//!
//! Coordinates are in the global logical space; button codes are evdev
//! (`BTN_LEFT` = 0x110) and key codes are evdev scancodes (`KEY_A` = 30).

use smithay::{
    backend::input::{ButtonState, KeyState, TouchSlot},
    input::{
        keyboard::FilterResult,
        pointer::{ButtonEvent, Focus, MotionEvent, PointerHandle, RelativeMotionEvent},
        touch::{DownEvent, MotionEvent as TouchMotionEvent, UpEvent},
    },
    reexports::wayland_server::protocol::wl_surface::WlSurface,
    utils::{Logical, Point, SERIAL_COUNTER},
};

use super::grabs::MoveGrab;
use crate::state::State;

/// `BTN_LEFT` from linux/input-event-codes.h.
pub const BTN_LEFT: u32 = 0x110;

impl State {
    /// Milliseconds on the compositor's monotonic clock, for input event times.
    pub fn input_time_ms(&self) -> u32 {
        let now = std::time::Instant::now().duration_since(self.input_epoch);
        (now.as_millis() & u128::from(u32::MAX)) as u32
    }

    /// Current pointer position in the global space.
    pub fn pointer_location(&self) -> Point<f64, Logical> {
        self.pointer.current_location()
    }

    /// Moves the pointer to `pos` (clamped to the output), updating pointer focus.
    pub fn pointer_motion_absolute(&mut self, pos: Point<f64, Logical>) {
        let pointer = self.pointer.clone();
        let pos = self.clamp_to_output(pos);
        let under = self.surface_under(pos);
        self.send_pointer_motion(&pointer, under, pos);
    }

    /// Sends one motion event (with `under` as the new focus) and its frame.
    fn send_pointer_motion(
        &mut self,
        pointer: &PointerHandle<State>,
        under: Option<(WlSurface, Point<f64, Logical>)>,
        pos: Point<f64, Logical>,
    ) {
        let time = self.input_time_ms();
        let event = MotionEvent {
            location: pos,
            serial: SERIAL_COUNTER.next_serial(),
            time,
        };
        self.pointer_target = under.clone();
        pointer.motion(self, under, &event);
        pointer.frame(self);
    }

    /// Re-evaluates what is under a stationary pointer after windows or
    /// subsurfaces moved, resized or (un)mapped: enter/leave if the surface
    /// under it changed, a motion if that surface moved under it.
    ///
    /// Runs on every commit of a root surface, so it reads the pointer
    /// through [`State::pointer`] and clones the handle (whose tracing span
    /// clones too) only when it has an event to send.
    pub fn refresh_pointer_focus(&mut self) {
        if self.pointer.is_grabbed() {
            return;
        }
        let pos = self.pointer.current_location();
        let under = self.surface_under(pos);
        // After a grab, smithay's focus may differ from what we last sent.
        let focus = self.pointer.current_focus();
        if under == self.pointer_target && focus.as_ref() == under.as_ref().map(|(s, _)| s) {
            return;
        }
        let pointer = self.pointer.clone();
        self.send_pointer_motion(&pointer, under, pos);
    }

    /// Moves the pointer by `delta`; relative-pointer clients see the delta.
    pub fn pointer_motion_relative(&mut self, delta: Point<f64, Logical>) {
        let pointer = self.pointer.clone();
        let pos = self.clamp_to_output(pointer.current_location() + delta);
        let under = self.surface_under(pos);
        let time = self.input_time_ms();
        self.pointer_target = under.clone();
        pointer.motion(
            self,
            under.clone(),
            &MotionEvent {
                location: pos,
                serial: SERIAL_COUNTER.next_serial(),
                time,
            },
        );
        let utime = u64::from(time) * 1000;
        pointer.relative_motion(
            self,
            under,
            &RelativeMotionEvent {
                delta,
                delta_unaccel: delta,
                utime,
            },
        );
        pointer.frame(self);
    }

    /// Presses or releases `button`. A press outside any grab focuses and
    /// raises the window under the pointer; with Super or Alt held, a left
    /// press starts moving that window instead of reaching the client.
    pub fn pointer_button(&mut self, button: u32, pressed: bool) {
        let pointer = self.pointer.clone();
        let serial = SERIAL_COUNTER.next_serial();
        let state = if pressed {
            ButtonState::Pressed
        } else {
            ButtonState::Released
        };
        if pressed && !pointer.is_grabbed() {
            let pos = pointer.current_location();
            if let Some(window) = self.space.element_under(pos).map(|(w, _)| w.clone()) {
                self.focus_window(&window, serial);
                let mods = self.seat.get_keyboard().map(|k| k.modifier_state()).unwrap_or_default();
                let loc = self.space.element_location(&window);
                if let (true, Some(loc)) = (button == BTN_LEFT && (mods.logo || mods.alt), loc) {
                    let start_data = smithay::input::pointer::GrabStartData {
                        focus: None,
                        button,
                        location: pos,
                    };
                    let grab = MoveGrab {
                        start_data,
                        window,
                        initial_window_location: loc,
                    };
                    pointer.set_grab(self, grab, serial, Focus::Clear);
                    return;
                }
            }
        }
        let time = self.input_time_ms();
        pointer.button(
            self,
            &ButtonEvent {
                button,
                state,
                serial,
                time,
            },
        );
        pointer.frame(self);
    }

    /// Presses or releases evdev key `code`; delivered to the keyboard focus.
    pub fn keyboard_key(&mut self, code: u32, pressed: bool) {
        let Some(keyboard) = self.seat.get_keyboard() else {
            return;
        };
        let state = if pressed { KeyState::Pressed } else { KeyState::Released };
        let time = self.input_time_ms();
        keyboard.input::<(), _>(
            self,
            (code + 8).into(),
            state,
            SERIAL_COUNTER.next_serial(),
            time,
            |_, _, _| FilterResult::Forward,
        );
    }

    /// A touch point `slot` goes down at `pos`; the surface under it gets it.
    pub fn touch_down(&mut self, slot: u32, pos: Point<f64, Logical>) {
        let Some(touch) = self.seat.get_touch() else { return };
        let under = self.surface_under(pos);
        // Touching a window focuses and raises it, like a click.
        if let Some(window) = self.space.element_under(pos).map(|(w, _)| w.clone()) {
            self.focus_window(&window, SERIAL_COUNTER.next_serial());
        }
        let time = self.input_time_ms();
        let event = DownEvent {
            slot: TouchSlot::from(Some(slot)),
            location: pos,
            serial: SERIAL_COUNTER.next_serial(),
            time,
        };
        touch.down(self, under, &event);
        touch.frame(self);
    }

    /// Touch point `slot` moves to `pos`.
    pub fn touch_motion(&mut self, slot: u32, pos: Point<f64, Logical>) {
        let Some(touch) = self.seat.get_touch() else { return };
        let under = self.surface_under(pos);
        let time = self.input_time_ms();
        touch.motion(
            self,
            under,
            &TouchMotionEvent {
                slot: TouchSlot::from(Some(slot)),
                location: pos,
                time,
            },
        );
        touch.frame(self);
    }

    /// Touch point `slot` is lifted.
    pub fn touch_up(&mut self, slot: u32) {
        let Some(touch) = self.seat.get_touch() else { return };
        let time = self.input_time_ms();
        touch.up(
            self,
            &UpEvent {
                slot: TouchSlot::from(Some(slot)),
                serial: SERIAL_COUNTER.next_serial(),
                time,
            },
        );
        touch.frame(self);
    }

    fn clamp_to_output(&self, pos: Point<f64, Logical>) -> Point<f64, Logical> {
        let g = self.output_geometry().to_f64();
        let max_x = g.loc.x + g.size.w - 1.0;
        let max_y = g.loc.y + g.size.h - 1.0;
        (
            pos.x.clamp(g.loc.x, max_x.max(g.loc.x)),
            pos.y.clamp(g.loc.y, max_y.max(g.loc.y)),
        )
            .into()
    }
}
