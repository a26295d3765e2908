//! Which backend runs when `--backend` is not given.
//!
//! DOC: the rule (also in `--help` and the README)
//!
//! * `WAYLAND_DISPLAY` or `DISPLAY` set (non-empty): we are nested inside
//!   another display server, so **headless**. Checked first: a terminal
//!   emulator inside a desktop session inherits `XDG_SESSION_TYPE=tty` too.
//! * otherwise `XDG_SESSION_TYPE=tty` or `XDG_VTNR` set (non-empty): started
//!   from a VT with a seat (a login shell on a text console, or a display
//!   manager starting the session from its `.desktop` file), so **drm**.
//! * otherwise **headless** (CI, scripts, ssh sessions).

/// Available backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// Render into an offscreen target driven by a timer.
    Headless,
    /// DRM/KMS through a libseat session: scan-out buffers, page flips.
    Drm,
}

/// Applies the rule to an environment lookup (`std::env::var` in the
/// binary; a table in tests).
pub fn default_backend(env: impl Fn(&str) -> Option<String>) -> BackendKind {
    let set = |name: &str| env(name).is_some_and(|v| !v.is_empty());
    if set("WAYLAND_DISPLAY") || set("DISPLAY") {
        return BackendKind::Headless;
    }
    if env("XDG_SESSION_TYPE").is_some_and(|v| v == "tty") || set("XDG_VTNR") {
        return BackendKind::Drm;
    }
    BackendKind::Headless
}

/// [`default_backend`] over the process environment.
pub fn default_backend_from_env() -> BackendKind {
    default_backend(|name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> BackendKind {
        default_backend(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn vt_with_a_seat_picks_drm() {
        assert_eq!(with(&[("XDG_SESSION_TYPE", "tty")]), BackendKind::Drm);
        assert_eq!(with(&[("XDG_VTNR", "2")]), BackendKind::Drm);
        assert_eq!(
            with(&[("XDG_SESSION_TYPE", "tty"), ("XDG_VTNR", "1")]),
            BackendKind::Drm
        );
    }

    #[test]
    fn nested_or_unknown_picks_headless() {
        assert_eq!(with(&[]), BackendKind::Headless);
        // A terminal inside a desktop: the tty variables are inherited but
        // a display server is already there.
        assert_eq!(
            with(&[
                ("XDG_SESSION_TYPE", "tty"),
                ("XDG_VTNR", "2"),
                ("WAYLAND_DISPLAY", "wayland-0")
            ]),
            BackendKind::Headless
        );
        assert_eq!(with(&[("XDG_VTNR", "7"), ("DISPLAY", ":0")]), BackendKind::Headless);
        // Other session types, and empty values, are not a VT.
        assert_eq!(with(&[("XDG_SESSION_TYPE", "wayland")]), BackendKind::Headless);
        assert_eq!(with(&[("XDG_VTNR", "")]), BackendKind::Headless);
        // An empty DISPLAY does not count as nested.
        assert_eq!(with(&[("XDG_VTNR", "3"), ("DISPLAY", "")]), BackendKind::Drm);
    }
}
