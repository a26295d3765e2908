//! Modifier negotiation and device choice against the capability tables of
//! real drivers (`tests/data/drivers/`, recorded from radv, anv, lavapipe and
//! the NVIDIA driver; see the README there), without their hardware.
//!
//! A recorded table has the format and modifier lists but not the answers of
//! `vkGetPhysicalDeviceImageFormatProperties2`, so the import query is
//! modelled the way Vulkan defines it: a usage is importable when the
//! tiling's features include the feature each usage bit needs, up to
//! `maxImageDimension2D`.

use std::path::Path;

use ash::vk;
use drm_fourcc::DrmFourcc;
use importer::vulkan::caps::DeviceCaps;
use importer::vulkan::device_choice::{choose, DeviceSelection, Reason};
use importer::vulkan::modifiers::{FormatFacts, FormatTable, ModifierProps, Tiling, LINEAR};

/// One driver's recorded table.
#[derive(Debug, Default, Clone)]
struct Recorded {
    name: String,
    device_type: vk::PhysicalDeviceType,
    max_dim: u32,
    extensions: Vec<String>,
    /// (format, linear features, modifiers)
    formats: Vec<(vk::Format, vk::FormatFeatureFlags, Vec<ModifierProps>)>,
}

fn feature(name: &str) -> vk::FormatFeatureFlags {
    use vk::FormatFeatureFlags as F;
    match name {
        "SAMPLED_IMAGE" => F::SAMPLED_IMAGE,
        "STORAGE_IMAGE" => F::STORAGE_IMAGE,
        "COLOR_ATTACHMENT" => F::COLOR_ATTACHMENT,
        "COLOR_ATTACHMENT_BLEND" => F::COLOR_ATTACHMENT_BLEND,
        "BLIT_SRC" => F::BLIT_SRC,
        "BLIT_DST" => F::BLIT_DST,
        "SAMPLED_IMAGE_FILTER_LINEAR" => F::SAMPLED_IMAGE_FILTER_LINEAR,
        "TRANSFER_SRC" => F::TRANSFER_SRC,
        "TRANSFER_DST" => F::TRANSFER_DST,
        "DISJOINT" => F::DISJOINT,
        // Flags the negotiation does not read.
        _ => F::empty(),
    }
}

fn features(list: &str) -> vk::FormatFeatureFlags {
    list.split('|')
        .map(feature)
        .fold(vk::FormatFeatureFlags::empty(), |a, b| a | b)
}

fn vk_format(name: &str) -> vk::Format {
    match name {
        "B8G8R8A8_UNORM" => vk::Format::B8G8R8A8_UNORM,
        "R8G8B8A8_UNORM" => vk::Format::R8G8B8A8_UNORM,
        "G8_B8R8_2PLANE_420_UNORM" => vk::Format::G8_B8R8_2PLANE_420_UNORM,
        _ => vk::Format::UNDEFINED,
    }
}

fn load(file: &str) -> Recorded {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/drivers")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = Recorded::default();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "name" => r.name = rest.to_owned(),
            "device_type" => {
                r.device_type = match rest {
                    "DISCRETE_GPU" => vk::PhysicalDeviceType::DISCRETE_GPU,
                    "INTEGRATED_GPU" => vk::PhysicalDeviceType::INTEGRATED_GPU,
                    "VIRTUAL_GPU" => vk::PhysicalDeviceType::VIRTUAL_GPU,
                    "CPU" => vk::PhysicalDeviceType::CPU,
                    other => panic!("{file}: device_type {other}"),
                }
            }
            "max_image_dimension_2d" => r.max_dim = rest.parse().expect("max_image_dimension_2d"),
            "extension" => r.extensions.push(rest.to_owned()),
            "format" => r
                .formats
                .push((vk_format(rest), vk::FormatFeatureFlags::empty(), Vec::new())),
            "linear_features" => r.formats.last_mut().expect("format first").1 = features(rest),
            "modifier" => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let modifier = u64::from_str_radix(words[0].trim_start_matches("0x"), 16).expect("modifier");
                let planes = words[2].parse().expect("planes");
                let m = ModifierProps {
                    modifier,
                    planes,
                    features: features(words[4]),
                };
                r.formats.last_mut().expect("format first").2.push(m);
            }
            _ => {}
        }
    }
    r
}

impl Recorded {
    fn has(&self, ext: &str) -> bool {
        self.extensions.iter().any(|e| e == ext)
    }

    fn format(&self, format: vk::Format) -> Option<&(vk::Format, vk::FormatFeatureFlags, Vec<ModifierProps>)> {
        self.formats.iter().find(|f| f.0 == format)
    }

    /// Its capabilities as the device choice sees them; `primary` is the
    /// test's card node for it (the tables carry none).
    fn caps(&self, primary: Option<(i64, i64)>) -> DeviceCaps {
        DeviceCaps {
            name: self.name.clone(),
            device_type: self.device_type,
            graphics_queue: true,
            external_memory_fd: self.has("VK_KHR_external_memory_fd"),
            external_memory_dma_buf: self.has("VK_EXT_external_memory_dma_buf"),
            image_drm_format_modifier: self.has("VK_EXT_image_drm_format_modifier"),
            physical_device_drm: primary.is_some(),
            primary_node: primary,
            ..Default::default()
        }
    }
}

/// The feature each usage bit needs.
fn needed(usage: vk::ImageUsageFlags) -> vk::FormatFeatureFlags {
    use vk::{FormatFeatureFlags as F, ImageUsageFlags as U};
    [
        (U::SAMPLED, F::SAMPLED_IMAGE),
        (U::COLOR_ATTACHMENT, F::COLOR_ATTACHMENT),
        (U::TRANSFER_SRC, F::TRANSFER_SRC),
        (U::TRANSFER_DST, F::TRANSFER_DST),
        (U::STORAGE, F::STORAGE_IMAGE),
    ]
    .into_iter()
    .filter(|(u, _)| usage.contains(*u))
    .fold(F::empty(), |a, (_, f)| a | f)
}

impl FormatFacts for Recorded {
    fn dmabuf_import(&self) -> bool {
        self.has("VK_EXT_external_memory_dma_buf") && self.has("VK_KHR_external_memory_fd")
    }
    fn modifier_ext(&self) -> bool {
        self.has("VK_EXT_image_drm_format_modifier")
    }
    fn modifiers(&self, format: vk::Format) -> Vec<ModifierProps> {
        self.format(format).map(|f| f.2.clone()).unwrap_or_default()
    }
    fn linear_features(&self, format: vk::Format) -> vk::FormatFeatureFlags {
        self.format(format).map(|f| f.1).unwrap_or_default()
    }
    fn import_extent(&self, format: vk::Format, tiling: Tiling, usage: vk::ImageUsageFlags) -> Option<(u32, u32)> {
        let features = match tiling {
            Tiling::Linear => self.linear_features(format),
            Tiling::Modifier(m) => self.modifiers(format).iter().find(|p| p.modifier == m)?.features,
        };
        let max = if self.max_dim == 0 { 16384 } else { self.max_dim };
        features.contains(needed(usage)).then_some((max, max))
    }
}

fn advertised(table: &FormatTable, fourcc: DrmFourcc) -> Vec<u64> {
    table.pairs().filter(|p| p.0 == fourcc).map(|p| p.1).collect()
}

/// Modifiers a hostile or confused client might send: the implicit
/// modifier, vendor modifiers of other vendors, reserved vendor bits, all
/// ones, and a value one off from a real one.
const HOSTILE: [u64; 7] = [
    0x00ff_ffff_ffff_ffff, // DRM_FORMAT_MOD_INVALID
    0xffff_ffff_ffff_ffff,
    0x0100_0000_0000_0002, // I915_FORMAT_MOD_Y_TILED
    0x0200_0000_2096_bb03, // an AMD DCC modifier
    0x0300_0000_0060_6015, // an NVIDIA block-linear modifier
    0x7f00_0000_0000_0001, // no such vendor
    0x0000_0000_0000_0001, // reserved bits of vendor 0
];

fn refused_hostile(table: &FormatTable, own: &[u64]) {
    for m in HOSTILE.iter().filter(|m| !own.contains(m)) {
        for f in [
            DrmFourcc::Xrgb8888,
            DrmFourcc::Argb8888,
            DrmFourcc::Abgr8888,
            DrmFourcc::Nv12,
        ] {
            assert!(table.entry(f, *m).is_none(), "{f:?} with {m:#x} must be refused");
        }
    }
}

#[test]
fn radv_navi21_advertises_its_dcc_and_tiled_modifiers_zero_copy() {
    let radv = load("radv-navi21.txt");
    let table = FormatTable::negotiate(&radv);
    let xrgb = advertised(&table, DrmFourcc::Xrgb8888);
    assert_eq!(
        xrgb,
        [
            0x020000002096bb03,
            0x0200000020967b03,
            0x0200000020937b03,
            0x0200000020801b03,
            0x0200000000000901,
            LINEAR
        ]
    );
    assert_eq!(
        advertised(&table, DrmFourcc::Abgr8888),
        xrgb,
        "R8G8B8A8 lists the same modifiers"
    );
    let dcc = table.entry(DrmFourcc::Argb8888, 0x0200000020967b03).unwrap();
    assert_eq!((dcc.planes, dcc.zero_copy, dcc.scanout), (3, true, true));
    assert_eq!(table.entry(DrmFourcc::Xrgb8888, 0x020000002096bb03).unwrap().planes, 2);
    assert!(table.entry(DrmFourcc::Xrgb8888, LINEAR).unwrap().zero_copy);
    assert_eq!(advertised(&table, DrmFourcc::Nv12), [LINEAR], "YUV takes the CPU path");
    refused_hostile(&table, &xrgb);
}

#[test]
fn anv_tgl_advertises_x_y_and_ccs_modifiers() {
    let anv = load("anv-tgl.txt");
    let table = FormatTable::negotiate(&anv);
    let xrgb = advertised(&table, DrmFourcc::Xrgb8888);
    assert_eq!(
        xrgb,
        [
            LINEAR,
            0x0100000000000001,
            0x0100000000000002,
            0x0100000000000006,
            0x0100000000000008
        ]
    );
    let ccs = table.entry(DrmFourcc::Xrgb8888, 0x0100000000000006).unwrap();
    assert_eq!((ccs.planes, ccs.zero_copy), (2, true));
    assert_eq!(table.entry(DrmFourcc::Xrgb8888, 0x0100000000000008).unwrap().planes, 3);
    refused_hostile(&table, &xrgb);
}

#[test]
fn lavapipe_without_the_modifier_extension_offers_linear_only() {
    let lvp = load("lvp-llvmpipe.txt");
    let table = FormatTable::negotiate(&lvp);
    for f in [
        DrmFourcc::Argb8888,
        DrmFourcc::Xrgb8888,
        DrmFourcc::Abgr8888,
        DrmFourcc::Xbgr8888,
    ] {
        assert_eq!(advertised(&table, f), [LINEAR], "{f:?}");
        let e = table.entry(f, LINEAR).unwrap();
        assert!(e.zero_copy && e.scanout, "{f:?}: {e:?}");
    }
    refused_hostile(&table, &[LINEAR]);
}

#[test]
fn nvidia_block_linear_modifiers_and_a_copied_linear() {
    let mut nv = load("nvidia-proprietary-partial.txt");
    // The partial record lists no extensions; the driver has these.
    for ext in [
        "VK_KHR_external_memory_fd",
        "VK_EXT_external_memory_dma_buf",
        "VK_EXT_image_drm_format_modifier",
    ] {
        nv.extensions.push(ext.into());
    }
    let table = FormatTable::negotiate(&nv);
    let xrgb = advertised(&table, DrmFourcc::Xrgb8888);
    assert_eq!(
        xrgb,
        [0x0300000000606015, 0x0300000000606014, 0x0300000000606013, LINEAR]
    );
    assert!(
        !table.entry(DrmFourcc::Xrgb8888, LINEAR).unwrap().zero_copy,
        "LINEAR is not in the recorded list: it takes the buffer path"
    );
    assert_eq!(
        advertised(&table, DrmFourcc::Abgr8888),
        [LINEAR],
        "no R8G8B8A8 list recorded"
    );
    refused_hostile(&table, &xrgb);
}

#[test]
fn a_device_without_dmabuf_import_advertises_nothing() {
    let mut lvp = load("lvp-llvmpipe.txt");
    lvp.extensions.retain(|e| e != "VK_EXT_external_memory_dma_buf");
    assert!(FormatTable::negotiate(&lvp).is_empty());
}

const CARD0: (i64, i64) = (226, 0);
const CARD1: (i64, i64) = (226, 1);

#[test]
fn on_a_hybrid_laptop_the_kms_card_picks_the_device() {
    let igpu = load("anv-tgl.txt").caps(Some(CARD0));
    let dgpu = load("radv-navi21.txt").caps(Some(CARD1));
    let devices = [dgpu, igpu];
    let auto = DeviceSelection::Auto;
    let c = choose(&devices, &auto, None).unwrap();
    assert_eq!((c.index, c.reason), (0, Reason::Ranked), "headless: discrete first");
    let c = choose(&devices, &auto, Some(CARD0)).unwrap();
    assert_eq!(
        (c.index, c.reason),
        (1, Reason::KmsMatch),
        "the integrated GPU drives card0"
    );
    assert_eq!(c.renders_on_kms_device(&devices, Some(CARD0)), Some(true));
    let c = choose(&devices, &auto, Some(CARD1)).unwrap();
    assert_eq!((c.index, c.reason), (0, Reason::KmsMatch));
    let named = DeviceSelection::Named("radeon".into());
    let c = choose(&devices, &named, Some(CARD0)).unwrap();
    assert_eq!((c.index, c.reason), (0, Reason::Named), "an explicit choice wins");
    assert_eq!(
        c.renders_on_kms_device(&devices, Some(CARD0)),
        Some(false),
        "then frames are copied"
    );
}

#[test]
fn a_kms_device_that_cannot_render_hands_over_to_another() {
    let mut display_only = load("anv-dg2.txt").caps(Some(CARD0));
    display_only.external_memory_dma_buf = false;
    let other = load("radv-navi31.txt").caps(Some(CARD1));
    let devices = [display_only, other];
    let c = choose(&devices, &DeviceSelection::Auto, Some(CARD0)).unwrap();
    assert_eq!(
        (c.index, c.reason),
        (1, Reason::KmsDeviceCannotRender { kms_device: 0 })
    );
    assert_eq!(c.renders_on_kms_device(&devices, Some(CARD0)), Some(false));
}

#[test]
fn without_drm_nodes_the_rank_decides_and_the_match_is_unknown() {
    let devices = [load("lvp-llvmpipe.txt").caps(None), load("radv-renoir.txt").caps(None)];
    let c = choose(&devices, &DeviceSelection::Auto, Some(CARD0)).unwrap();
    assert_eq!(
        (c.index, c.reason),
        (1, Reason::KmsNodeUnknown),
        "integrated before CPU"
    );
    assert_eq!(c.renders_on_kms_device(&devices, Some(CARD0)), None);
    assert!(choose(&devices, &DeviceSelection::Named("nothing like it".into()), None).is_none());
    assert_eq!(
        choose(&devices, &DeviceSelection::Named("0".into()), None)
            .unwrap()
            .index,
        0
    );
}
