//! `wp_color_representation_v1`, client side: the manager with the
//! capabilities it announces on bind, and the per-surface object through
//! which a surface asks for a Y'CbCr [`Representation`].
//!
//! A client binds the manager only when it needs it
//! ([`Client::color_representation`]): a surface that asks for nothing
//! ([`crate::scenes::SurfaceSpec::representation`] `None`) never touches the
//! protocol.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Connection, Dispatch, QueueHandle};
pub use wayland_protocols::wp::color_representation::v1::client::wp_color_representation_manager_v1::{
    self, WpColorRepresentationManagerV1,
};
pub use wayland_protocols::wp::color_representation::v1::client::wp_color_representation_surface_v1::{
    self, WpColorRepresentationSurfaceV1,
};

use crate::client::{Client, State};
use crate::pixel::{Coefficients, Range, Representation};

/// The manager's interface name, as protocol errors report it.
pub const MANAGER_INTERFACE: &str = "wp_color_representation_manager_v1";
/// The surface object's interface name, as protocol errors report it.
pub const SURFACE_INTERFACE: &str = "wp_color_representation_surface_v1";

/// The wire `coefficients` enum.
pub type WireCoefficients = wp_color_representation_surface_v1::Coefficients;
/// The wire `range` enum.
pub type WireRange = wp_color_representation_surface_v1::Range;
/// The wire `alpha_mode` enum.
pub type AlphaMode = wp_color_representation_surface_v1::AlphaMode;
/// The wire `chroma_location` enum.
pub type ChromaLocation = wp_color_representation_surface_v1::ChromaLocation;

/// `coefficients` on the wire for the model's [`Coefficients`].
pub fn wire_coefficients(c: Coefficients) -> WireCoefficients {
    match c {
        Coefficients::Bt601 => WireCoefficients::Bt601,
        Coefficients::Bt709 => WireCoefficients::Bt709,
        Coefficients::Bt2020 => WireCoefficients::Bt2020,
    }
}

/// `range` on the wire for the model's [`Range`].
pub fn wire_range(r: Range) -> WireRange {
    match r {
        Range::Limited => WireRange::Limited,
        Range::Full => WireRange::Full,
    }
}

/// One event of the manager, raw values kept (an unknown enum value shows
/// as itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ManagerEvent {
    /// `supported_alpha_mode(alpha_mode)`.
    SupportedAlphaMode(u32),
    /// `supported_coefficients_and_ranges(coefficients, range)`.
    SupportedCoefficientsAndRange { coefficients: u32, range: u32 },
    /// `done`.
    Done,
}

impl ManagerEvent {
    /// The event announcing `(coefficients, range)`.
    pub fn pair(coefficients: WireCoefficients, range: WireRange) -> ManagerEvent {
        ManagerEvent::SupportedCoefficientsAndRange {
            coefficients: coefficients.into(),
            range: range.into(),
        }
    }
}

/// The events one manager object received, in order.
#[derive(Debug, Default)]
pub struct ManagerData {
    events: Mutex<Vec<ManagerEvent>>,
}

/// A bound `wp_color_representation_manager_v1` and what it announced.
#[derive(Clone, Debug)]
pub struct ColorRepresentationManager {
    pub manager: WpColorRepresentationManagerV1,
    data: Arc<ManagerData>,
}

impl ColorRepresentationManager {
    /// Binds a new manager object (version 1) and waits one roundtrip for
    /// the events the compositor sends on bind. Fails, naming the global,
    /// if the compositor does not offer it.
    pub fn bind(client: &mut Client) -> Result<ColorRepresentationManager> {
        let data = Arc::new(ManagerData::default());
        let manager = client
            .registry
            .bind::<WpColorRepresentationManagerV1, _, _>(&client.qh, 1..=1, data.clone())
            .with_context(|| format!("the compositor offers no {MANAGER_INTERFACE} (version 1)"))?;
        client
            .roundtrip()
            .with_context(|| format!("the events {MANAGER_INTERFACE} sends on bind"))?;
        Ok(ColorRepresentationManager { manager, data })
    }

    /// Every event received so far, in order.
    pub fn events(&self) -> Vec<ManagerEvent> {
        lock(&self.data.events).clone()
    }

    /// Whether `supported_coefficients_and_ranges` announced `representation`.
    pub fn supports(&self, representation: Representation) -> bool {
        let want = ManagerEvent::pair(
            wire_coefficients(representation.coefficients),
            wire_range(representation.range),
        );
        lock(&self.data.events).contains(&want)
    }

    /// `get_surface` for `surface` (no check: protocol tests send it twice).
    pub fn get_surface(&self, client: &Client, surface: &WlSurface) -> WpColorRepresentationSurfaceV1 {
        self.manager.get_surface(surface, &client.qh, ())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Poisoning only means another thread panicked; the data is still valid.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `wp_color_representation_surface_v1` of one wl_surface, got on first
/// use. [`crate::Window`] and [`crate::Subsurface`] own one each.
#[derive(Debug, Default)]
pub struct SurfaceRepresentation {
    object: Option<WpColorRepresentationSurfaceV1>,
}

impl SurfaceRepresentation {
    /// Asks for `representation` from `surface`'s next commit on
    /// (double-buffered: call it before the commit that attaches the
    /// buffer). `Some`: binds the manager ([`Client::color_representation`],
    /// failing if the compositor lacks it) and gets the surface object the
    /// first time, then sets coefficients and range. `None`: destroys the
    /// object if there is one (the next commit drops the representation);
    /// otherwise nothing, and the protocol is never bound.
    pub fn set(
        &mut self,
        client: &mut Client,
        surface: &WlSurface,
        representation: Option<Representation>,
    ) -> Result<()> {
        let Some(rep) = representation else {
            if let Some(object) = self.object.take() {
                object.destroy();
            }
            return Ok(());
        };
        let object = match &self.object {
            Some(object) => object,
            None => {
                let manager = client
                    .color_representation()
                    .with_context(|| format!("a surface asks for {}", rep.name()))?;
                self.object.insert(manager.get_surface(client, surface))
            }
        };
        object.set_coefficients_and_range(wire_coefficients(rep.coefficients), wire_range(rep.range));
        Ok(())
    }

    /// The surface object, once [`SurfaceRepresentation::set`] got one.
    pub fn object(&self) -> Option<&WpColorRepresentationSurfaceV1> {
        self.object.as_ref()
    }
}

impl Drop for SurfaceRepresentation {
    fn drop(&mut self) {
        if let Some(object) = self.object.take() {
            object.destroy();
        }
    }
}

impl Dispatch<WpColorRepresentationManagerV1, Arc<ManagerData>> for State {
    fn event(
        _: &mut Self,
        _: &WpColorRepresentationManagerV1,
        event: wp_color_representation_manager_v1::Event,
        data: &Arc<ManagerData>,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        use wp_color_representation_manager_v1::Event;
        let event = match event {
            Event::SupportedAlphaMode { alpha_mode } => ManagerEvent::SupportedAlphaMode(alpha_mode.into()),
            Event::SupportedCoefficientsAndRanges { coefficients, range } => {
                ManagerEvent::SupportedCoefficientsAndRange {
                    coefficients: coefficients.into(),
                    range: range.into(),
                }
            }
            Event::Done => ManagerEvent::Done,
            _ => return,
        };
        lock(&data.events).push(event);
    }
}

// The surface object has no events.
wayland_client::delegate_noop!(State: WpColorRepresentationSurfaceV1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values() {
        let raw = |r: Representation| -> (u32, u32) {
            (wire_coefficients(r.coefficients).into(), wire_range(r.range).into())
        };
        // The protocol's numbering: identity 1, bt709 2, fcc 3, bt601 4,
        // smpte240 5, bt2020 6; full 1, limited 2.
        let all: Vec<_> = Representation::ALL.into_iter().map(raw).collect();
        assert_eq!(all, [(4, 2), (4, 1), (2, 2), (2, 1), (6, 2), (6, 1)]);
        assert_eq!(
            ManagerEvent::pair(WireCoefficients::Identity, WireRange::Full),
            ManagerEvent::SupportedCoefficientsAndRange {
                coefficients: 1,
                range: 1
            }
        );
    }
}
