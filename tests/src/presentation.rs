//! `wp_presentation_feedback`, client side: ask for the feedback of a
//! surface's next content update and wait for what became of it.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Connection, Dispatch, QueueHandle, WEnum};
use wayland_protocols::wp::presentation_time::client::wp_presentation_feedback::{self, Kind, WpPresentationFeedback};

use crate::client::{Client, State};

/// What the compositor said of one content update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Shown, with the feedback's flags.
    Presented(Kind),
    /// Never shown (superseded, or not on any output).
    Discarded,
}

type Slot = Arc<Mutex<Option<Outcome>>>;

/// One requested feedback.
#[derive(Debug)]
pub struct Feedback {
    slot: Slot,
}

impl Feedback {
    /// Asks for the feedback of `surface`'s next commit.
    pub fn request(client: &Client, surface: &WlSurface) -> Result<Feedback> {
        let presentation = client
            .globals
            .presentation
            .as_ref()
            .context("no wp_presentation global")?;
        let slot = Slot::default();
        presentation.feedback(surface, &client.qh, slot.clone());
        Ok(Feedback { slot })
    }

    /// Waits (bounded by the client's timeout) for the outcome.
    pub fn wait(&self, client: &mut Client) -> Result<Outcome> {
        let slot = self.slot.clone();
        client.dispatch_until("wp_presentation_feedback presented or discarded", move |_| {
            slot.lock().unwrap_or_else(|p| p.into_inner()).is_some()
        })?;
        Ok(self.outcome().expect("set before dispatch_until returned"))
    }

    /// The outcome, if it arrived.
    pub fn outcome(&self) -> Option<Outcome> {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Dispatch<WpPresentationFeedback, Slot> for State {
    fn event(
        _: &mut Self,
        _: &WpPresentationFeedback,
        event: wp_presentation_feedback::Event,
        slot: &Slot,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let outcome = match event {
            wp_presentation_feedback::Event::Presented { flags, .. } => Outcome::Presented(match flags {
                WEnum::Value(kind) => kind,
                WEnum::Unknown(bits) => Kind::from_bits_truncate(bits),
            }),
            wp_presentation_feedback::Event::Discarded => Outcome::Discarded,
            _ => return,
        };
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
    }
}
