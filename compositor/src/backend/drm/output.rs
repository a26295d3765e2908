//! Which connector, mode and CRTC the DRM backend drives.
//!
//! The choice is pure logic over plain descriptions ([`ConnectorDesc`],
//! [`ModeDesc`]) so it is unit-tested on the host; [`probe`] fills them from
//! the device.
//!
//! DOC: the rule
//!
//! * connector: the first (in the device's resource order) that is connected,
//!   has at least one mode and can be driven by at least one CRTC;
//! * mode: the one the connector marks PREFERRED; if none is, the largest
//!   (by area), then the highest refresh;
//! * CRTC: the first CRTC any of the connector's encoders can drive,
//!   preferring the one already driving it (no needless CRTC switch).

use anyhow::Context;
use smithay::reexports::drm::control::{connector, crtc, Device as ControlDevice, Mode, ModeTypeFlags};

/// A mode as the chooser sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeDesc {
    pub preferred: bool,
    pub size: (u16, u16),
    pub refresh_hz: u32,
}

/// A connector as the chooser sees it; CRTCs are indices into the device's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorDesc {
    pub connected: bool,
    pub modes: Vec<ModeDesc>,
    /// CRTCs its encoders can drive, the currently bound one first if any.
    pub crtcs: Vec<usize>,
}

/// Index of the connector to drive.
pub fn choose_connector(connectors: &[ConnectorDesc]) -> Option<usize> {
    connectors
        .iter()
        .position(|c| c.connected && !c.modes.is_empty() && !c.crtcs.is_empty())
}

/// Index of the mode to use.
pub fn choose_mode(modes: &[ModeDesc]) -> Option<usize> {
    if let Some(i) = modes.iter().position(|m| m.preferred) {
        return Some(i);
    }
    let key = |m: &ModeDesc| (u32::from(m.size.0) * u32::from(m.size.1), m.refresh_hz);
    // max_by_key keeps the last of equals; ties go to the first, so compare reversed indices.
    (0..modes.len()).rev().max_by_key(|&i| key(&modes[i]))
}

/// What [`probe`] picked on a device.
#[derive(Debug, Clone)]
pub struct OutputChoice {
    pub connector: connector::Handle,
    /// `<interface>-<id>`, e.g. `Virtual-1`: the wl_output name.
    pub name: String,
    pub crtc: crtc::Handle,
    pub mode: Mode,
    /// Physical size in millimetres (0 if unknown).
    pub size_mm: (i32, i32),
}

fn mode_desc(mode: &Mode) -> ModeDesc {
    ModeDesc {
        preferred: mode.mode_type().contains(ModeTypeFlags::PREFERRED),
        size: mode.size(),
        refresh_hz: mode.vrefresh(),
    }
}

/// Reads the device's connectors and applies the rule.
pub fn probe(dev: &impl ControlDevice) -> anyhow::Result<OutputChoice> {
    let res = dev.resource_handles().context("reading the DRM resources")?;
    let mut infos = Vec::new();
    let mut descs = Vec::new();
    for &handle in res.connectors() {
        let info = dev
            .get_connector(handle, true)
            .with_context(|| format!("reading connector {handle:?}"))?;
        let current = info
            .current_encoder()
            .and_then(|e| dev.get_encoder(e).ok())
            .and_then(|e| e.crtc());
        let mut crtcs: Vec<usize> = Vec::new();
        if let Some(i) = current.and_then(|c| res.crtcs().iter().position(|&h| h == c)) {
            crtcs.push(i);
        }
        for &enc in info.encoders() {
            let Ok(enc) = dev.get_encoder(enc) else { continue };
            for c in res.filter_crtcs(enc.possible_crtcs()) {
                if let Some(i) = res.crtcs().iter().position(|&h| h == c) {
                    if !crtcs.contains(&i) {
                        crtcs.push(i);
                    }
                }
            }
        }
        tracing::info!(
            connector = %format!("{}-{}", info.interface().as_str(), info.interface_id()),
            state = ?info.state(),
            modes = info.modes().len(),
            "DRM connector"
        );
        descs.push(ConnectorDesc {
            connected: info.state() == connector::State::Connected,
            modes: info.modes().iter().map(mode_desc).collect(),
            crtcs,
        });
        infos.push(info);
    }
    let c = choose_connector(&descs).context("no connected connector with a mode and a CRTC")?;
    let info = &infos[c];
    let m = choose_mode(&descs[c].modes).context("connector has no mode")?;
    let crtc = res.crtcs()[descs[c].crtcs[0]];
    let (w, h) = info.size().unwrap_or((0, 0));
    Ok(OutputChoice {
        connector: info.handle(),
        name: format!("{}-{}", info.interface().as_str(), info.interface_id()),
        crtc,
        mode: info.modes()[m],
        size_mm: (w as i32, h as i32),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(preferred: bool, w: u16, h: u16, hz: u32) -> ModeDesc {
        ModeDesc {
            preferred,
            size: (w, h),
            refresh_hz: hz,
        }
    }

    #[test]
    fn preferred_mode_wins_even_if_smaller() {
        let modes = [
            mode(false, 1920, 1080, 60),
            mode(true, 1024, 768, 60),
            mode(false, 800, 600, 75),
        ];
        assert_eq!(choose_mode(&modes), Some(1));
    }

    #[test]
    fn without_preferred_the_largest_then_fastest_first_of_equals() {
        let modes = [
            mode(false, 800, 600, 60),
            mode(false, 1280, 720, 60),
            mode(false, 1280, 720, 75),
        ];
        assert_eq!(choose_mode(&modes), Some(2));
        let ties = [mode(false, 640, 480, 60), mode(false, 640, 480, 60)];
        assert_eq!(choose_mode(&ties), Some(0));
        assert_eq!(choose_mode(&[]), None);
    }

    #[test]
    fn first_connected_connector_with_modes_and_a_crtc() {
        let conn = |connected, modes: Vec<ModeDesc>, crtcs: Vec<usize>| ConnectorDesc {
            connected,
            modes,
            crtcs,
        };
        let m = vec![mode(true, 1024, 768, 60)];
        let list = [
            conn(false, m.clone(), vec![0]), // disconnected
            conn(true, vec![], vec![0]),     // connected, no modes (EDID-less)
            conn(true, m.clone(), vec![]),   // no CRTC can drive it
            conn(true, m.clone(), vec![1]),
            conn(true, m.clone(), vec![0]),
        ];
        assert_eq!(choose_connector(&list), Some(3));
        assert_eq!(choose_connector(&list[..3]), None);
    }
}
