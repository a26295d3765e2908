//! Which Vulkan device renders: an explicit choice, the device behind the
//! KMS card, or the best by rank.
//!
//! DOC: the rule
//!
//! 1. `DeviceSelection::Named` (`--vk-device`, `COMPOSITOR_VK_DEVICE`): an
//!    index or a case-insensitive substring of the device name, whatever
//!    else holds.
//! 2. With a KMS card (the DRM backend), the device whose primary DRM node
//!    (`VK_EXT_physical_device_drm`) is the card, if it can render (a
//!    graphics queue and dma-buf import): scan-out buffers are then its own
//!    memory. If that device cannot render, the best other one renders and
//!    every frame is copied into the scan-out buffer ([`Reason::KmsDeviceCannotRender`]).
//!    If no device reports the card's node (drivers without the extension),
//!    the rank decides and the scan-out import is simply tried.
//! 3. Otherwise the rank: discrete > integrated > virtual > CPU, and among
//!    equals one that can import dma-bufs; a device that can render (a
//!    graphics queue and dma-buf import) before any that cannot.
//!
//! Pure: it reads [`DeviceCaps`] only, so the unit tests feed it the
//! capabilities of real drivers.

use ash::vk;

use super::caps::DeviceCaps;

/// Which physical device to use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DeviceSelection {
    /// Best by the rule in the module doc.
    #[default]
    Auto,
    /// An index into the enumeration order, or a name substring.
    Named(String),
}

impl DeviceSelection {
    /// `None`/empty → Auto; anything else names a device.
    pub fn from_option(s: Option<&str>) -> Self {
        match s.map(str::trim) {
            None | Some("") => DeviceSelection::Auto,
            Some(s) => DeviceSelection::Named(s.to_owned()),
        }
    }
}

/// Why a device was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Named by the user.
    Named,
    /// Its primary node is the KMS card.
    KmsMatch,
    /// The device on the KMS card (index) cannot render; another renders
    /// and frames are copied into the scan-out buffers.
    KmsDeviceCannotRender { kms_device: usize },
    /// A KMS card was given but no device reports its node.
    KmsNodeUnknown,
    /// No KMS card: the best by rank.
    Ranked,
}

/// The device chosen and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub index: usize,
    pub reason: Reason,
}

impl Choice {
    /// Whether the renderer is the device behind the KMS card: `Some(true)`
    /// or `Some(false)` when known, `None` when no device said.
    pub fn renders_on_kms_device(&self, devices: &[DeviceCaps], kms: Option<(i64, i64)>) -> Option<bool> {
        let kms = kms?;
        match self.reason {
            Reason::KmsMatch => Some(true),
            Reason::KmsDeviceCannotRender { .. } => Some(false),
            Reason::KmsNodeUnknown | Reason::Ranked => None,
            Reason::Named => {
                let known = devices.iter().any(|d| d.primary_node.is_some());
                known.then(|| devices[self.index].primary_node == Some(kms))
            }
        }
    }
}

/// The rank of rule 3.
pub fn rank(caps: &DeviceCaps) -> u32 {
    let base = match caps.device_type {
        vk::PhysicalDeviceType::DISCRETE_GPU => 40,
        vk::PhysicalDeviceType::INTEGRATED_GPU => 30,
        vk::PhysicalDeviceType::VIRTUAL_GPU => 20,
        vk::PhysicalDeviceType::CPU => 10,
        _ => 0,
    };
    base + u32::from(caps.can_import_dmabuf())
}

/// Whether a device can be the renderer: it has a graphics queue and
/// imports dma-bufs.
pub fn can_render(caps: &DeviceCaps) -> bool {
    caps.graphics_queue && caps.can_import_dmabuf()
}

/// The best device by rank, among those that can render if any can.
fn best_ranked(devices: &[DeviceCaps], skip: Option<usize>) -> Option<usize> {
    (0..devices.len())
        .filter(|&i| Some(i) != skip)
        .max_by_key(|&i| (can_render(&devices[i]), rank(&devices[i]), std::cmp::Reverse(i)))
}

/// Applies the rule of the module doc to `devices` (in enumeration order).
/// `kms`: the KMS card's (major, minor), on the DRM backend.
pub fn choose(devices: &[DeviceCaps], selection: &DeviceSelection, kms: Option<(i64, i64)>) -> Option<Choice> {
    if let DeviceSelection::Named(name) = selection {
        let by_index = name.parse::<usize>().ok();
        let lower = name.to_lowercase();
        let index =
            (0..devices.len()).find(|&i| Some(i) == by_index || devices[i].name.to_lowercase().contains(&lower))?;
        return Some(Choice {
            index,
            reason: Reason::Named,
        });
    }
    let Some(kms) = kms else {
        return best_ranked(devices, None).map(|index| Choice {
            index,
            reason: Reason::Ranked,
        });
    };
    match devices.iter().position(|d| d.primary_node == Some(kms)) {
        Some(i) if can_render(&devices[i]) => Some(Choice {
            index: i,
            reason: Reason::KmsMatch,
        }),
        Some(i) => best_ranked(devices, Some(i)).map(|index| Choice {
            index,
            reason: Reason::KmsDeviceCannotRender { kms_device: i },
        }),
        None => best_ranked(devices, None).map(|index| Choice {
            index,
            reason: Reason::KmsNodeUnknown,
        }),
    }
}
