//! The seat: a libseat session (seatd, logind, or the `noop` backend for
//! root without either), udev discovery and hotplug, and libinput input
//! feeding the shell's input entry points (`shell/input.rs`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use smithay::{
    backend::{
        input::{
            AbsolutePositionEvent, ButtonState, InputEvent, KeyState, KeyboardKeyEvent, PointerButtonEvent,
            PointerMotionEvent,
        },
        libinput::{LibinputInputBackend, LibinputSessionInterface},
        session::{libseat::LibSeatSession, Session},
        udev::{self, UdevBackend, UdevEvent},
    },
    reexports::{calloop::LoopHandle, input::Libinput},
};
use tracing::{info, warn};

use crate::state::State;

/// Opens the libseat session. libseat picks its backend itself: the one
/// `LIBSEAT_BACKEND` names, else seatd, then logind. It does not say which
/// (its own log is not hooked up), so [`backend_name`] infers it; the log
/// line and `drm.session` in `--stats` carry the result.
pub fn open_session() -> anyhow::Result<(
    LibSeatSession,
    smithay::backend::session::libseat::LibSeatSessionNotifier,
)> {
    let requested = std::env::var("LIBSEAT_BACKEND").ok();
    let (session, notifier) = LibSeatSession::new().with_context(|| {
        format!(
            "opening a libseat session (LIBSEAT_BACKEND={}); without seatd or logind, run as root with \
             LIBSEAT_BACKEND=noop",
            requested.as_deref().unwrap_or("unset")
        )
    })?;
    info!(
        session = "libseat",
        backend = backend_name(requested.as_deref(), &session.seat(), Path::new("/run/seatd.sock").exists()),
        requested = requested.as_deref().unwrap_or("auto"),
        seat = %session.seat(),
        active = session.is_active(),
        "session opened"
    );
    Ok((session, notifier))
}

/// Which libseat backend opened the seat: the noop backend names its seat
/// `noop`; an explicit `LIBSEAT_BACKEND` is the only one libseat tries;
/// otherwise seatd if its socket exists (libseat tries it first), else logind.
pub fn backend_name(requested: Option<&str>, seat: &str, seatd_socket: bool) -> &'static str {
    match (seat, requested) {
        ("noop", _) | (_, Some("noop")) => "noop",
        (_, Some("seatd")) => "seatd",
        (_, Some("logind")) => "logind",
        (_, Some("builtin")) => "builtin",
        _ if seatd_socket => "seatd",
        _ => "logind",
    }
}

/// The udev seat of a session seat: libseat's `noop` backend names its seat
/// `noop`, which no udev device is tagged with; it runs on `seat0`'s devices.
pub fn udev_seat(session_seat: &str) -> String {
    if session_seat == "noop" {
        info!("libseat noop session: using udev seat0's devices");
        "seat0".into()
    } else {
        session_seat.into()
    }
}

/// The card node to drive: `--drm-device`, else the seat's primary GPU
/// (boot VGA), else its first GPU; either only if it has KMS connectors
/// (render-only drivers such as vgem also have card nodes).
pub fn pick_device(seat: &str, requested: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = requested {
        info!(device = %path.display(), "DRM device from --drm-device");
        return Ok(path.to_path_buf());
    }
    let gpus = udev::all_gpus(seat).context("enumerating DRM devices with udev")?;
    info!(?gpus, seat, "udev DRM devices");
    let primary = udev::primary_gpu(seat).context("looking up the primary GPU with udev")?;
    let mut candidates: Vec<PathBuf> = primary.into_iter().chain(gpus).collect();
    candidates.dedup();
    for path in candidates {
        let connectors = kms_connectors(&path);
        if connectors > 0 {
            info!(device = %path.display(), connectors, "DRM device from udev");
            return Ok(path);
        }
        info!(device = %path.display(), "no KMS connectors (render-only driver?); skipped");
    }
    anyhow::bail!("no DRM card node with KMS connectors on {seat}")
}

/// Connectors the card exposes in sysfs (`/sys/class/drm/cardN-<connector>`).
fn kms_connectors(card: &Path) -> usize {
    let Some(name) = card.file_name().and_then(|n| n.to_str()) else {
        return 0;
    };
    let prefix = format!("{name}-");
    std::fs::read_dir("/sys/class/drm")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)))
                .count()
        })
        .unwrap_or(0)
}

/// Watches udev for DRM device hotplug; events are logged (connector changes
/// on the driven device are not acted on yet).
pub fn watch_udev(handle: &LoopHandle<'static, State>, seat: &str, driven: libc::dev_t) -> anyhow::Result<()> {
    let backend = UdevBackend::new(seat).context("creating the udev monitor")?;
    handle
        .insert_source(backend, move |event, _, _state| match event {
            UdevEvent::Added { device_id, path } => {
                info!(device_id, path = %path.display(), "udev: DRM device added (not driven)")
            }
            UdevEvent::Changed { device_id } if device_id == driven => {
                info!(
                    device_id,
                    "udev: the driven DRM device changed (connector hotplug); output kept as is"
                )
            }
            UdevEvent::Changed { device_id } => info!(device_id, "udev: DRM device changed"),
            UdevEvent::Removed { device_id } => warn!(device_id, "udev: DRM device removed"),
        })
        .map_err(|e| anyhow::anyhow!("inserting the udev source: {e}"))?;
    Ok(())
}

/// Starts libinput on the seat; its events go to the shell's input entry
/// points. Returns the context (suspended and resumed with the session).
pub fn start_libinput(
    handle: &LoopHandle<'static, State>,
    session: &LibSeatSession,
    seat: &str,
) -> anyhow::Result<Libinput> {
    let mut context = Libinput::new_with_udev::<LibinputSessionInterface<LibSeatSession>>(session.clone().into());
    context
        .udev_assign_seat(seat)
        .map_err(|()| anyhow::anyhow!("libinput: udev_assign_seat({seat}) failed"))?;
    let backend = LibinputInputBackend::new(context.clone());
    handle
        .insert_source(backend, |event, _, state| on_input(state, event))
        .map_err(|e| anyhow::anyhow!("inserting the libinput source: {e}"))?;
    Ok(context)
}

/// Logs the input devices libinput found so far (none in a VM without any).
pub fn log_input_devices(devices: u32) {
    if devices == 0 {
        info!("libinput: no input devices on the seat (no keyboard or pointer; clients still run)");
    } else {
        info!(devices, "libinput: input devices on the seat");
    }
}

fn on_input(state: &mut State, event: InputEvent<LibinputInputBackend>) {
    match event {
        InputEvent::DeviceAdded { device } => {
            if let super::super::Backend::Drm(b) = &mut state.backend {
                b.stats.input_devices += 1;
            }
            info!(name = device.name(), "libinput: device added");
        }
        InputEvent::DeviceRemoved { device } => info!(name = device.name(), "libinput: device removed"),
        InputEvent::Keyboard { event } => {
            // libinput reports evdev codes + 8 (xkb keycodes); the shell wants evdev.
            let code = event.key_code().raw().saturating_sub(8);
            state.keyboard_key(code, event.state() == KeyState::Pressed);
        }
        InputEvent::PointerMotion { event } => state.pointer_motion_relative(event.delta()),
        InputEvent::PointerMotionAbsolute { event } => {
            let size = state.output_geometry().size;
            state.pointer_motion_absolute(event.position_transformed(size));
        }
        InputEvent::PointerButton { event } => {
            state.pointer_button(event.button_code(), event.state() == ButtonState::Pressed)
        }
        _ => tracing::trace!("libinput: event kind not handled (axis, touch, gestures, tablets)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_backend_is_inferred() {
        assert_eq!(backend_name(Some("noop"), "noop", false), "noop");
        assert_eq!(backend_name(None, "noop", true), "noop");
        assert_eq!(backend_name(Some("logind"), "seat0", true), "logind");
        assert_eq!(backend_name(None, "seat0", true), "seatd");
        assert_eq!(backend_name(None, "seat0", false), "logind");
        assert_eq!(udev_seat("noop"), "seat0");
        assert_eq!(udev_seat("seat1"), "seat1");
    }
}
