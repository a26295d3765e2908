//! The fuzzed client's side of `wp_color_representation_v1`: surface
//! objects for any wl_surface (twice for one, too), coefficients and ranges
//! (offered, not offered, not in the enum), chroma locations and alpha modes
//! likewise, and destroys of the objects, the manager and the wl_surfaces
//! in any order, around dma-buf commits of any format.

use crate::session::{Ids, Input, NewIds, ProtocolClient};
use crate::wire::{Arg, Wire};

/// Requests of this mix beyond the shared surface and buffer ones.
const OPS: u8 = 7;

/// The client's colour-representation objects.
#[derive(Default)]
pub struct ColorClient {
    /// The bound `wp_color_representation_manager_v1` (0 until bound or once destroyed).
    manager: u32,
    /// `wp_color_representation_surface_v1` objects.
    objects: Ids,
}

/// An enum value: mostly a valid one (`1..=max`), sometimes 0, one past the
/// end or anything.
fn value(input: &mut Input<'_>, max: u32) -> u32 {
    match input.u8() {
        0 => 0,
        1 => max + 1,
        2 => input.u32(),
        b => 1 + u32::from(b) % max,
    }
}

impl ProtocolClient for ColorClient {
    fn global(&self) -> (&'static str, u32) {
        ("wp_color_representation_manager_v1", 1)
    }

    fn manager(&mut self) -> &mut u32 {
        &mut self.manager
    }

    fn ops(&self) -> u8 {
        OPS
    }

    fn op(&mut self, op: u8, wire: &mut Wire, input: &mut Input<'_>, ids: &mut NewIds<'_>, surfaces: &mut Ids) {
        match op {
            0 => {
                let Some(surface) = surfaces.pick(input) else { return };
                if self.manager == 0 {
                    return;
                }
                let id = ids.next();
                wire.send(self.manager, 1, &[Arg::Object(id), Arg::Object(surface)]); // get_surface
                self.objects.0.push(id);
            }
            1 => {
                let Some(o) = self.objects.pick(input) else { return };
                // alpha_mode: 0..=2 valid
                let mode = value(input, 3).wrapping_sub(1);
                wire.send(o, 1, &[Arg::Uint(mode)]);
            }
            2 => {
                let Some(o) = self.objects.pick(input) else { return };
                let (coefficients, range) = (value(input, 8), value(input, 2));
                wire.send(o, 2, &[Arg::Uint(coefficients), Arg::Uint(range)]);
            }
            3 => {
                let Some(o) = self.objects.pick(input) else { return };
                wire.send(o, 3, &[Arg::Uint(value(input, 6))]); // set_chroma_location
            }
            4 => {
                if let Some(o) = self.objects.take(input) {
                    wire.send(o, 0, &[]);
                }
            }
            5 => {
                // wl_surface.destroy: its objects turn inert.
                if let Some(s) = surfaces.take(input) {
                    wire.send(s, 0, &[]);
                }
            }
            _ => {
                if self.manager != 0 && input.u8() % 4 == 0 {
                    wire.send(self.manager, 0, &[]);
                    self.manager = 0;
                }
            }
        }
    }
}
