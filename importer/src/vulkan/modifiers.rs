//! Modifier negotiation: which (format, modifier) pairs the device can
//! import, sample and render into, decided once from what the device says.
//!
//! DOC: the rule
//!
//! For every format of the importer's table (`crate::format`):
//!
//! * With `VK_EXT_image_drm_format_modifier`, every modifier the device lists
//!   for the format (`VkDrmFormatModifierPropertiesListEXT`) whose tiling
//!   features allow sampling ([`SAMPLE_FEATURES`]), whose memory plane count
//!   is at most four, and which `vkGetPhysicalDeviceImageFormatProperties2`
//!   confirms importable as a dma-buf image with the sampled usage, is a
//!   zero-copy entry. It is also a scan-out entry when its features allow
//!   rendering and blending ([`SCANOUT_FEATURES`]) and the query confirms the
//!   colour-attachment usage.
//! * LINEAR is always an entry of an RGB format: where the device cannot
//!   bind it zero-copy, the buffer path (a GPU copy) or the CPU fallback take
//!   it. Without the modifier extension LINEAR is the only entry, zero-copy
//!   when the LINEAR tiling features and the import query allow it.
//! * A YUV format whose Vulkan multi-planar format (`FormatInfo::ycbcr`)
//!   the device samples through a Y'CbCr conversion ([`ycbcr_sampleable`],
//!   with `samplerYcbcrConversion` enabled) gets zero-copy entries the same
//!   way, for that format: every listed modifier, or LINEAR without the
//!   extension when the LINEAR features also have `DISJOINT` (each plane is
//!   bound where the client put it). A listed LINEAR modifier that the
//!   import query refuses with explicit layouts (lavapipe's multi-planar
//!   formats) is tried as a plain LINEAR image in the driver's layout
//!   ([`ModifierEntry::explicit_layout`]). It is never a scan-out entry.
//! * NV12 keeps a LINEAR entry in any case, served by the CPU fallback;
//!   other YUV formats have no fallback and are not advertised without a
//!   Y'CbCr entry.
//! * A device that cannot import dma-bufs at all gets an empty table.
//!
//! Exactly the entries are advertised (`FormatTable::pairs`), and
//! `crate::import::Importer` refuses any other pair before a Vulkan call.
//! A modifier entry's plane count is the number of memory planes a client
//! must send (for example 2 or 3 for AMD DCC or Intel CCS on an RGB format).
//!
//! The device's answers come through [`FormatFacts`], implemented by the
//! live [`VkContext`] and, in the unit tests, by recorded tables of real
//! drivers (`importer/tests/data/drivers/`).

use ash::vk;
use drm_fourcc::DrmFourcc;

use super::VkContext;
use crate::format::{FormatInfo, FORMATS};

/// `DRM_FORMAT_MOD_LINEAR`.
pub const LINEAR: u64 = 0;

/// Tiling features a sampled client image needs: sampling with the linear
/// filter, and transfer reads (read-backs of a client texture).
pub const SAMPLE_FEATURES: vk::FormatFeatureFlags = vk::FormatFeatureFlags::from_raw(
    vk::FormatFeatureFlags::SAMPLED_IMAGE.as_raw()
        | vk::FormatFeatureFlags::SAMPLED_IMAGE_FILTER_LINEAR.as_raw()
        | vk::FormatFeatureFlags::TRANSFER_SRC.as_raw(),
);

/// Whether `features` let a YUV image be sampled through a Y'CbCr
/// conversion: sampling, with chroma sited at cosited or midpoint samples
/// (`super::ycbcr` picks which).
pub fn ycbcr_sampleable(features: vk::FormatFeatureFlags) -> bool {
    features.contains(vk::FormatFeatureFlags::SAMPLED_IMAGE)
        && features.intersects(
            vk::FormatFeatureFlags::COSITED_CHROMA_SAMPLES | vk::FormatFeatureFlags::MIDPOINT_CHROMA_SAMPLES,
        )
}

/// Usage of a YUV client image (sampled only: it is never copied out).
pub const YCBCR_USAGE: vk::ImageUsageFlags = vk::ImageUsageFlags::SAMPLED;

/// Tiling features a scan-out buffer needs: the compositor blends windows
/// into it.
pub const SCANOUT_FEATURES: vk::FormatFeatureFlags = vk::FormatFeatureFlags::from_raw(
    vk::FormatFeatureFlags::COLOR_ATTACHMENT.as_raw() | vk::FormatFeatureFlags::COLOR_ATTACHMENT_BLEND.as_raw(),
);

/// Usage of a sampled client image.
pub const SAMPLED_USAGE: vk::ImageUsageFlags =
    vk::ImageUsageFlags::from_raw(vk::ImageUsageFlags::SAMPLED.as_raw() | vk::ImageUsageFlags::TRANSFER_SRC.as_raw());

/// Usage of a scan-out target image.
pub const SCANOUT_USAGE: vk::ImageUsageFlags = vk::ImageUsageFlags::from_raw(
    vk::ImageUsageFlags::COLOR_ATTACHMENT.as_raw()
        | vk::ImageUsageFlags::TRANSFER_SRC.as_raw()
        | vk::ImageUsageFlags::TRANSFER_DST.as_raw(),
);

/// Memory planes a modifier may have (Vulkan's `MEMORY_PLANE_0..3`).
pub const MAX_MEMORY_PLANES: u32 = 4;

/// One entry of `VkDrmFormatModifierPropertiesListEXT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModifierProps {
    pub modifier: u64,
    pub planes: u32,
    pub features: vk::FormatFeatureFlags,
}

/// The tiling of an image a dma-buf is imported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tiling {
    /// LINEAR tiling (devices without the modifier extension).
    Linear,
    /// DRM_FORMAT_MODIFIER tiling with this modifier.
    Modifier(u64),
}

/// What the negotiation asks of a device.
pub trait FormatFacts {
    /// `VK_EXT_external_memory_dma_buf` and `VK_KHR_external_memory_fd`.
    fn dmabuf_import(&self) -> bool;
    /// `VK_EXT_image_drm_format_modifier`.
    fn modifier_ext(&self) -> bool;
    /// The modifiers listed for `format`, in the device's order.
    fn modifiers(&self, format: vk::Format) -> Vec<ModifierProps>;
    /// `linearTilingFeatures` of `format`.
    fn linear_features(&self, format: vk::Format) -> vk::FormatFeatureFlags;
    /// The `samplerYcbcrConversion` feature is enabled.
    fn ycbcr_conversion(&self) -> bool {
        false
    }
    /// The largest width and height a dma-buf image of `format`, `tiling`
    /// and `usage` may have; `None` when it cannot be imported at all.
    fn import_extent(&self, format: vk::Format, tiling: Tiling, usage: vk::ImageUsageFlags) -> Option<(u32, u32)>;
}

/// One advertised (format, modifier) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModifierEntry {
    pub modifier: u64,
    /// Memory planes a buffer with this modifier has.
    pub planes: u32,
    /// The device binds the client's memory to an image (no copy).
    pub zero_copy: bool,
    /// The device can render and blend into such a buffer.
    pub scanout: bool,
    /// Largest width and height of a zero-copy import (`u32::MAX`: not
    /// limited by the image path, which is not used).
    pub max_extent: (u32, u32),
    /// The zero-copy image takes the client's plane layouts explicitly
    /// (DRM_FORMAT_MODIFIER tiling); else it is a LINEAR image in the
    /// driver's own layout, which the client's must match.
    pub explicit_layout: bool,
}

/// The negotiated formats: what is advertised to clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormatTable {
    formats: Vec<(FormatInfo, Vec<ModifierEntry>)>,
}

fn sampled_entry(facts: &impl FormatFacts, format: &FormatInfo, m: &ModifierProps) -> Option<ModifierEntry> {
    if m.planes == 0 || m.planes > MAX_MEMORY_PLANES || !m.features.contains(SAMPLE_FEATURES) {
        return None;
    }
    let tiling = Tiling::Modifier(m.modifier);
    let max_extent = facts.import_extent(format.vk_format, tiling, SAMPLED_USAGE)?;
    let scanout =
        m.features.contains(SCANOUT_FEATURES) && facts.import_extent(format.vk_format, tiling, SCANOUT_USAGE).is_some();
    Some(ModifierEntry {
        modifier: m.modifier,
        planes: m.planes,
        zero_copy: true,
        scanout,
        max_extent,
        explicit_layout: true,
    })
}

/// LINEAR without the modifier extension: zero-copy where the LINEAR tiling
/// features and the import query allow it, else the buffer path.
fn linear_entry(facts: &impl FormatFacts, format: &FormatInfo) -> ModifierEntry {
    let features = facts.linear_features(format.vk_format);
    let zero_copy = features
        .contains(SAMPLE_FEATURES)
        .then(|| facts.import_extent(format.vk_format, Tiling::Linear, SAMPLED_USAGE))
        .flatten();
    let scanout = features.contains(SCANOUT_FEATURES)
        && facts
            .import_extent(format.vk_format, Tiling::Linear, SCANOUT_USAGE)
            .is_some();
    ModifierEntry {
        modifier: LINEAR,
        planes: format.planes.len() as u32,
        zero_copy: zero_copy.is_some(),
        scanout,
        max_extent: zero_copy.unwrap_or((u32::MAX, u32::MAX)),
        explicit_layout: false,
    }
}

/// A LINEAR entry that no image path serves (buffer path or CPU fallback).
fn copied_linear(format: &FormatInfo) -> ModifierEntry {
    ModifierEntry {
        modifier: LINEAR,
        planes: format.planes.len() as u32,
        zero_copy: false,
        scanout: false,
        max_extent: (u32::MAX, u32::MAX),
        explicit_layout: false,
    }
}

/// A zero-copy entry of YUV `format` as multi-planar `vk_format` with
/// `tiling`, whose features are `features`.
fn ycbcr_entry(
    facts: &impl FormatFacts,
    format: &FormatInfo,
    vk_format: vk::Format,
    tiling: Tiling,
    (planes, features): (u32, vk::FormatFeatureFlags),
) -> Option<ModifierEntry> {
    let separate_planes = tiling == Tiling::Linear && format.planes.len() > 1;
    if planes == 0
        || planes > MAX_MEMORY_PLANES
        || !ycbcr_sampleable(features)
        || (separate_planes && !features.contains(vk::FormatFeatureFlags::DISJOINT))
    {
        return None;
    }
    let max_extent = facts.import_extent(vk_format, tiling, YCBCR_USAGE)?;
    let (modifier, explicit_layout) = match tiling {
        Tiling::Linear => (LINEAR, false),
        Tiling::Modifier(m) => (m, true),
    };
    Some(ModifierEntry {
        modifier,
        planes,
        zero_copy: true,
        scanout: false,
        max_extent,
        explicit_layout,
    })
}

fn negotiate_yuv(facts: &impl FormatFacts, format: &FormatInfo) -> Vec<ModifierEntry> {
    let linear = |vk_format| {
        let facts_linear = (format.planes.len() as u32, facts.linear_features(vk_format));
        ycbcr_entry(facts, format, vk_format, Tiling::Linear, facts_linear)
    };
    let mut entries: Vec<ModifierEntry> = match format.ycbcr.filter(|_| facts.ycbcr_conversion()) {
        Some(vk_format) if facts.modifier_ext() => facts
            .modifiers(vk_format)
            .iter()
            .filter_map(|m| {
                let tiling = Tiling::Modifier(m.modifier);
                match ycbcr_entry(facts, format, vk_format, tiling, (m.planes, m.features)) {
                    Some(e) => Some(e),
                    // Listed, but not importable with explicit plane layouts
                    // (lavapipe's multi-planar LINEAR): the driver's own
                    // LINEAR layout may still serve.
                    None if m.modifier == LINEAR => linear(vk_format),
                    None => None,
                }
            })
            .collect(),
        Some(vk_format) => linear(vk_format).into_iter().collect(),
        None => Vec::new(),
    };
    if format.cpu_converts() && !entries.iter().any(|e| e.modifier == LINEAR) {
        entries.push(copied_linear(format));
    }
    entries
}

fn negotiate_format(facts: &impl FormatFacts, format: &FormatInfo) -> Vec<ModifierEntry> {
    if format.yuv {
        return negotiate_yuv(facts, format);
    }
    if !facts.modifier_ext() {
        return vec![linear_entry(facts, format)];
    }
    let mut entries: Vec<ModifierEntry> = facts
        .modifiers(format.vk_format)
        .iter()
        .filter_map(|m| sampled_entry(facts, format, m))
        .collect();
    if !entries.iter().any(|e| e.modifier == LINEAR) {
        entries.push(copied_linear(format));
    }
    entries
}

impl FormatTable {
    /// Decides the table from what `facts` says (see the module doc).
    pub fn negotiate(facts: &impl FormatFacts) -> FormatTable {
        if !facts.dmabuf_import() {
            return FormatTable::default();
        }
        let formats = FORMATS
            .iter()
            .map(|f| (*f, negotiate_format(facts, f)))
            .filter(|(_, entries)| !entries.is_empty())
            .collect();
        FormatTable { formats }
    }

    /// The table cut down to LINEAR, for a policy that copies every buffer
    /// (the GPU buffer copy and the CPU fallback read LINEAR only). With
    /// `no_image` nothing is zero-copy or a scan-out entry either.
    pub fn linear_only(&self, no_image: bool) -> FormatTable {
        let formats = self
            .formats
            .iter()
            .filter(|(f, _)| !no_image || f.cpu_converts())
            .map(|(f, entries)| {
                let linear = entries
                    .iter()
                    .filter(|e| e.modifier == LINEAR)
                    .map(|e| if no_image { copied_linear(f) } else { *e })
                    .collect();
                (*f, linear)
            })
            .collect();
        FormatTable { formats }
    }

    /// The entry of `fourcc` with `modifier`, if advertised.
    pub fn entry(&self, fourcc: DrmFourcc, modifier: u64) -> Option<&ModifierEntry> {
        self.formats
            .iter()
            .find(|(f, _)| f.fourcc == fourcc)?
            .1
            .iter()
            .find(|e| e.modifier == modifier)
    }

    /// Every advertised pair, in preference order (formats as in the
    /// importer's table, modifiers as the device listed them).
    pub fn pairs(&self) -> impl Iterator<Item = (DrmFourcc, u64)> + '_ {
        self.formats
            .iter()
            .flat_map(|(f, entries)| entries.iter().map(move |e| (f.fourcc, e.modifier)))
    }

    /// The modifiers of `fourcc` the device can render into (scan-out).
    pub fn scanout_modifiers(&self, fourcc: DrmFourcc) -> impl Iterator<Item = u64> + '_ {
        self.formats
            .iter()
            .filter(move |(f, _)| f.fourcc == fourcc)
            .flat_map(|(_, entries)| entries.iter().filter(|e| e.scanout).map(|e| e.modifier))
    }

    pub fn is_empty(&self) -> bool {
        self.formats.is_empty()
    }

    /// One line for the start-up log: pairs per format, zero-copy ones first.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .formats
            .iter()
            .map(|(f, entries)| {
                let zero_copy = entries.iter().filter(|e| e.zero_copy).count();
                format!("{:?}: {} modifier(s), {} zero-copy", f.fourcc, entries.len(), zero_copy)
            })
            .collect();
        if parts.is_empty() {
            "no dma-buf formats (the device cannot import dma-bufs)".into()
        } else {
            parts.join("; ")
        }
    }
}

impl FormatFacts for VkContext {
    fn dmabuf_import(&self) -> bool {
        self.caps.can_import_dmabuf()
    }

    fn modifier_ext(&self) -> bool {
        self.drm_format_modifier.is_some()
    }

    fn modifiers(&self, format: vk::Format) -> Vec<ModifierProps> {
        self.modifier_properties(format)
            .into_iter()
            .map(|m| ModifierProps {
                modifier: m.drm_format_modifier,
                planes: m.drm_format_modifier_plane_count,
                features: m.drm_format_modifier_tiling_features,
            })
            .collect()
    }

    fn ycbcr_conversion(&self) -> bool {
        self.caps.sampler_ycbcr_conversion
    }

    fn linear_features(&self, format: vk::Format) -> vk::FormatFeatureFlags {
        // SAFETY: a valid physical device of this instance.
        unsafe {
            self.instance
                .get_physical_device_format_properties(self.physical, format)
        }
        .linear_tiling_features
    }

    fn import_extent(&self, format: vk::Format, tiling: Tiling, usage: vk::ImageUsageFlags) -> Option<(u32, u32)> {
        let mut ext_info = vk::PhysicalDeviceExternalImageFormatInfo::default()
            .handle_type(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
        let mut modifier_info =
            vk::PhysicalDeviceImageDrmFormatModifierInfoEXT::default().sharing_mode(vk::SharingMode::EXCLUSIVE);
        let info = vk::PhysicalDeviceImageFormatInfo2::default()
            .format(format)
            .ty(vk::ImageType::TYPE_2D)
            .usage(usage)
            .push_next(&mut ext_info);
        let info = match tiling {
            Tiling::Linear => info.tiling(vk::ImageTiling::LINEAR),
            Tiling::Modifier(m) => {
                modifier_info = modifier_info.drm_format_modifier(m);
                info.tiling(vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT)
                    .push_next(&mut modifier_info)
            }
        };
        let mut ext_props = vk::ExternalImageFormatProperties::default();
        let mut props = vk::ImageFormatProperties2::default().push_next(&mut ext_props);
        // SAFETY: valid query structures for this instance's physical device.
        let ok = unsafe {
            self.instance
                .get_physical_device_image_format_properties2(self.physical, &info, &mut props)
        };
        let extent = props.image_format_properties.max_extent;
        let importable = ext_props
            .external_memory_properties
            .external_memory_features
            .contains(vk::ExternalMemoryFeatureFlags::IMPORTABLE);
        (ok.is_ok() && importable).then_some((extent.width, extent.height))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device that lists `mods` for every format and imports everything
    /// its features allow, up to 8192.
    struct Fake {
        modifier_ext: bool,
        mods: Vec<ModifierProps>,
        linear: vk::FormatFeatureFlags,
    }

    impl FormatFacts for Fake {
        fn dmabuf_import(&self) -> bool {
            true
        }
        fn modifier_ext(&self) -> bool {
            self.modifier_ext
        }
        fn modifiers(&self, _: vk::Format) -> Vec<ModifierProps> {
            self.mods.clone()
        }
        fn linear_features(&self, _: vk::Format) -> vk::FormatFeatureFlags {
            self.linear
        }
        fn import_extent(&self, _: vk::Format, tiling: Tiling, _: vk::ImageUsageFlags) -> Option<(u32, u32)> {
            match tiling {
                Tiling::Modifier(0xdead) => None,
                _ => Some((8192, 8192)),
            }
        }
    }

    fn all() -> vk::FormatFeatureFlags {
        SAMPLE_FEATURES | SCANOUT_FEATURES
    }

    #[test]
    fn unsampleable_unimportable_and_too_many_planes_are_left_out() {
        let fake = Fake {
            modifier_ext: true,
            mods: vec![
                ModifierProps {
                    modifier: 0x0100000000000001,
                    planes: 1,
                    features: all(),
                },
                ModifierProps {
                    modifier: 0xdead,
                    planes: 1,
                    features: all(),
                },
                ModifierProps {
                    modifier: 0x0100000000000002,
                    planes: 1,
                    features: SCANOUT_FEATURES,
                },
                ModifierProps {
                    modifier: 0x0100000000000003,
                    planes: 5,
                    features: all(),
                },
            ],
            linear: all(),
        };
        let table = FormatTable::negotiate(&fake);
        let xrgb: Vec<u64> = table
            .pairs()
            .filter(|p| p.0 == DrmFourcc::Xrgb8888)
            .map(|p| p.1)
            .collect();
        assert_eq!(xrgb, [0x0100000000000001, LINEAR], "LINEAR added, copied");
        assert!(!table.entry(DrmFourcc::Xrgb8888, LINEAR).unwrap().zero_copy);
        assert!(table.entry(DrmFourcc::Xrgb8888, 0xdead).is_none());
        assert_eq!(table.entry(DrmFourcc::Nv12, LINEAR).map(|e| e.zero_copy), Some(false));
        assert!(table.entry(DrmFourcc::Nv12, 0x0100000000000001).is_none());
    }

    #[test]
    fn a_policy_that_copies_everything_advertises_linear_only() {
        let fake = Fake {
            modifier_ext: true,
            mods: vec![
                ModifierProps {
                    modifier: 0x0100000000000001,
                    planes: 1,
                    features: all(),
                },
                ModifierProps {
                    modifier: LINEAR,
                    planes: 1,
                    features: all(),
                },
            ],
            linear: all(),
        };
        let table = FormatTable::negotiate(&fake);
        let buffer_path = table.linear_only(false);
        assert!(buffer_path.pairs().all(|(_, m)| m == LINEAR));
        assert!(buffer_path.entry(DrmFourcc::Xrgb8888, LINEAR).unwrap().zero_copy);
        let cpu = table.linear_only(true);
        assert!(cpu.pairs().all(|(_, m)| m == LINEAR));
        assert!(!cpu.entry(DrmFourcc::Xrgb8888, LINEAR).unwrap().zero_copy);
        // Without a Y'CbCr sampler only NV12 of the YUV formats is taken (copied).
        assert_eq!(cpu.pairs().count(), FORMATS.iter().filter(|f| f.cpu_converts()).count());
    }

    /// A device with `samplerYcbcrConversion` whose every format has
    /// `features`, LINEAR or (with `modifiers`) for each listed modifier.
    struct YuvFake {
        modifiers: Vec<u64>,
        features: vk::FormatFeatureFlags,
    }

    /// [`YuvFake`] whose import query refuses DRM_FORMAT_MODIFIER tiling, as
    /// lavapipe does for multi-planar formats.
    struct LinearOnlyYuvFake(YuvFake);

    impl FormatFacts for LinearOnlyYuvFake {
        fn dmabuf_import(&self) -> bool {
            true
        }
        fn modifier_ext(&self) -> bool {
            self.0.modifier_ext()
        }
        fn modifiers(&self, f: vk::Format) -> Vec<ModifierProps> {
            self.0.modifiers(f)
        }
        fn linear_features(&self, f: vk::Format) -> vk::FormatFeatureFlags {
            self.0.linear_features(f)
        }
        fn ycbcr_conversion(&self) -> bool {
            true
        }
        fn import_extent(&self, f: vk::Format, tiling: Tiling, usage: vk::ImageUsageFlags) -> Option<(u32, u32)> {
            match tiling {
                Tiling::Linear => self.0.import_extent(f, tiling, usage),
                Tiling::Modifier(_) => None,
            }
        }
    }

    impl FormatFacts for YuvFake {
        fn dmabuf_import(&self) -> bool {
            true
        }
        fn modifier_ext(&self) -> bool {
            !self.modifiers.is_empty()
        }
        fn modifiers(&self, _: vk::Format) -> Vec<ModifierProps> {
            let planes = 2;
            let features = self.features;
            self.modifiers
                .iter()
                .map(|&modifier| ModifierProps {
                    modifier,
                    planes,
                    features,
                })
                .collect()
        }
        fn linear_features(&self, _: vk::Format) -> vk::FormatFeatureFlags {
            self.features
        }
        fn ycbcr_conversion(&self) -> bool {
            true
        }
        fn import_extent(&self, _: vk::Format, _: Tiling, _: vk::ImageUsageFlags) -> Option<(u32, u32)> {
            Some((4096, 4096))
        }
    }

    const YUV_SAMPLING: vk::FormatFeatureFlags = vk::FormatFeatureFlags::from_raw(
        vk::FormatFeatureFlags::SAMPLED_IMAGE.as_raw()
            | vk::FormatFeatureFlags::COSITED_CHROMA_SAMPLES.as_raw()
            | vk::FormatFeatureFlags::DISJOINT.as_raw(),
    );

    #[test]
    fn yuv_with_a_ycbcr_sampler_is_zero_copy_never_scanout() {
        let table = FormatTable::negotiate(&YuvFake {
            modifiers: vec![],
            features: YUV_SAMPLING | SCANOUT_FEATURES,
        });
        for f in [DrmFourcc::Nv12, DrmFourcc::Nv16, DrmFourcc::Yuv420, DrmFourcc::P010] {
            let e = table.entry(f, LINEAR).unwrap_or_else(|| panic!("{f:?} advertised"));
            assert!(e.zero_copy && !e.scanout, "{f:?}: {e:?}");
            assert_eq!(e.max_extent, (4096, 4096));
        }
        assert_eq!(table.entry(DrmFourcc::Yuv420, LINEAR).unwrap().planes, 3);
    }

    #[test]
    fn yuv_without_separate_planes_or_chroma_siting_keeps_only_the_nv12_fallback() {
        for features in [
            YUV_SAMPLING & !vk::FormatFeatureFlags::DISJOINT,
            YUV_SAMPLING & !vk::FormatFeatureFlags::COSITED_CHROMA_SAMPLES,
        ] {
            let table = FormatTable::negotiate(&YuvFake {
                modifiers: vec![],
                features,
            });
            assert!(!table.entry(DrmFourcc::Nv12, LINEAR).unwrap().zero_copy);
            for f in [DrmFourcc::Nv16, DrmFourcc::Yuv420, DrmFourcc::P010] {
                assert!(
                    table.entry(f, LINEAR).is_none(),
                    "{f:?} has no path and is not advertised"
                );
            }
        }
        // A cpu-fallback policy drops them too.
        let table = FormatTable::negotiate(&YuvFake {
            modifiers: vec![],
            features: YUV_SAMPLING,
        });
        let cpu = table.linear_only(true);
        assert!(cpu.entry(DrmFourcc::P010, LINEAR).is_none());
        assert!(!cpu.entry(DrmFourcc::Nv12, LINEAR).unwrap().zero_copy);
    }

    #[test]
    fn a_listed_linear_yuv_modifier_refused_with_explicit_layouts_takes_the_drivers_layout() {
        let tiled = 0x0100000000000001;
        let table = FormatTable::negotiate(&LinearOnlyYuvFake(YuvFake {
            modifiers: vec![LINEAR, tiled],
            features: YUV_SAMPLING,
        }));
        let e = table
            .entry(DrmFourcc::P010, LINEAR)
            .expect("LINEAR in the driver's layout");
        assert!(e.zero_copy && !e.explicit_layout);
        assert!(
            table.entry(DrmFourcc::P010, tiled).is_none(),
            "a tiled modifier has no fallback"
        );
        let explicit = FormatTable::negotiate(&YuvFake {
            modifiers: vec![LINEAR],
            features: YUV_SAMPLING,
        });
        assert!(explicit.entry(DrmFourcc::P010, LINEAR).unwrap().explicit_layout);
    }

    #[test]
    fn yuv_modifiers_are_zero_copy_and_nv12_keeps_a_linear_fallback() {
        let tiled = 0x0100000000000001;
        let table = FormatTable::negotiate(&YuvFake {
            modifiers: vec![tiled],
            // With explicit plane layouts DISJOINT is only needed for planes in several fds.
            features: YUV_SAMPLING & !vk::FormatFeatureFlags::DISJOINT,
        });
        assert!(table.entry(DrmFourcc::Nv16, tiled).unwrap().zero_copy);
        assert!(table.entry(DrmFourcc::Nv16, LINEAR).is_none());
        assert!(!table.entry(DrmFourcc::Nv12, LINEAR).unwrap().zero_copy);
    }

    #[test]
    fn without_the_modifier_extension_linear_is_the_only_entry() {
        let fake = Fake {
            modifier_ext: false,
            mods: vec![],
            linear: all(),
        };
        let table = FormatTable::negotiate(&fake);
        assert!(table.pairs().all(|(_, m)| m == LINEAR));
        let e = table.entry(DrmFourcc::Argb8888, LINEAR).unwrap();
        assert!(e.zero_copy && e.scanout);
        let no_sampling = Fake {
            modifier_ext: false,
            mods: vec![],
            linear: SCANOUT_FEATURES,
        };
        let table = FormatTable::negotiate(&no_sampling);
        assert!(!table.entry(DrmFourcc::Argb8888, LINEAR).unwrap().zero_copy);
    }
}
