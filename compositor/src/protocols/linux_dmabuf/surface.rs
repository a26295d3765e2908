//! Per-surface feedback: which [`Feedback`] a surface's feedback objects
//! were sent, and sending a new one when the compositor changes its mind.
//!
//! DOC: surface feedback
//!
//! A surface's feedback objects start with the default feedback. The
//! compositor may give the surface another (the scan-out variant, while it
//! could be scanned out directly: `set_surface_feedback`); every live
//! feedback object of the surface is then sent the new parameters, once.
//! Setting the feedback it already has sends nothing, as the protocol asks.

use std::sync::{Arc, Mutex};

use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1;
use smithay::reexports::wayland_server::{protocol::wl_surface::WlSurface, Resource, Weak};
use smithay::wayland::compositor::with_states;

use super::Feedback;

/// The feedback a surface's objects were sent, and those objects.
#[derive(Debug, Default)]
struct SurfaceFeedback {
    current: Option<Arc<Feedback>>,
    objects: Vec<ZwpLinuxDmabufFeedbackV1>,
}

type Slot = Mutex<SurfaceFeedback>;

/// Data of a feedback object: its surface, for `get_surface_feedback`.
#[derive(Debug, Default)]
pub struct FeedbackData {
    surface: Option<Weak<WlSurface>>,
}

impl FeedbackData {
    pub(super) fn for_surface(surface: &WlSurface) -> FeedbackData {
        FeedbackData {
            surface: Some(surface.downgrade()),
        }
    }
}

/// Sends a new surface feedback object the surface's current feedback
/// (`default` until another was set) and remembers it.
pub(super) fn add_object(surface: &WlSurface, object: ZwpLinuxDmabufFeedbackV1, default: &Arc<Feedback>) {
    with_slot(surface, |slot| {
        slot.current.get_or_insert_with(|| default.clone()).send(&object);
        slot.objects.push(object);
    });
}

/// Runs `f` on `surface`'s feedback slot, made on first use.
fn with_slot<T>(surface: &WlSurface, f: impl FnOnce(&mut SurfaceFeedback) -> T) -> T {
    with_states(surface, |states| {
        states.data_map.insert_if_missing_threadsafe(Slot::default);
        let slot = states.data_map.get::<Slot>().expect("inserted above");
        f(&mut slot.lock().unwrap())
    })
}

/// Forgets a destroyed feedback object.
pub(super) fn remove_object(data: &FeedbackData, object: &ZwpLinuxDmabufFeedbackV1) {
    let Some(surface) = data.surface.as_ref().and_then(|s| s.upgrade().ok()) else {
        return;
    };
    with_states(&surface, |states| {
        if let Some(slot) = states.data_map.get::<Slot>() {
            slot.lock().unwrap().objects.retain(|o| o != object);
        }
    });
}

/// Gives `surface` `feedback`: sent to each of its feedback objects unless
/// they already have it. Returns whether anything was sent.
pub fn set_surface_feedback(surface: &WlSurface, feedback: &Arc<Feedback>) -> bool {
    with_slot(surface, |slot| {
        if slot.current.as_ref().is_some_and(|c| Arc::ptr_eq(c, feedback)) {
            return false;
        }
        slot.current = Some(feedback.clone());
        slot.objects.retain(|o| o.is_alive());
        for object in &slot.objects {
            feedback.send(object);
        }
        !slot.objects.is_empty()
    })
}
