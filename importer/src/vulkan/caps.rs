//! What a Vulkan device can do for buffer import, probed once at start.
//!
//! DOC: which capability switches which path
//!
//! | capability | used for | without it (lavapipe) |
//! |---|---|---|
//! | `VK_EXT_external_memory_dma_buf` + `VK_KHR_external_memory_fd` | any dma-buf import | no dma-buf import at all |
//! | `VK_EXT_image_drm_format_modifier` | images with the client's modifier, offset and pitch | LINEAR images; client stride must equal the driver's row pitch, else buffer path |
//! | `VK_KHR_external_semaphore_fd` (SYNC_FD) | GPU waits on / exports of sync_files | fences are waited for on the event loop |
//! | `VK_EXT_physical_device_drm` | the DRM render node, for dmabuf feedback v4+ | dmabuf v3 format list, no main device |
//! | `VK_EXT_queue_family_foreign` | ownership transfer from the foreign queue family | `VK_QUEUE_FAMILY_EXTERNAL` |
//! | `samplerYcbcrConversion` (Vulkan 1.1) | YUV sampled zero-copy through a `VkSamplerYcbcrConversion` | NV12 through the CPU fallback; other YUV not advertised |

use std::ffi::CStr;

use ash::vk;

/// Import-relevant capabilities of one physical device.
#[derive(Debug, Clone, Default)]
pub struct DeviceCaps {
    pub name: String,
    pub driver: String,
    pub device_type: vk::PhysicalDeviceType,
    /// A queue family with graphics.
    pub graphics_queue: bool,
    pub api_version: u32,
    pub external_memory_fd: bool,
    pub external_memory_dma_buf: bool,
    pub image_drm_format_modifier: bool,
    pub external_semaphore_fd: bool,
    pub physical_device_drm: bool,
    pub queue_family_foreign: bool,
    /// The `samplerYcbcrConversion` feature (enabled when present).
    pub sampler_ycbcr_conversion: bool,
    /// (major, minor) of the render node, when `physical_device_drm` reports one.
    pub render_node: Option<(i64, i64)>,
    /// (major, minor) of the primary (card) node, likewise.
    pub primary_node: Option<(i64, i64)>,
}

/// Device extensions the importer enables when present.
pub const WANTED_EXTENSIONS: [&CStr; 6] = [
    ash::khr::external_memory_fd::NAME,
    ash::ext::external_memory_dma_buf::NAME,
    ash::ext::image_drm_format_modifier::NAME,
    ash::khr::external_semaphore_fd::NAME,
    ash::ext::physical_device_drm::NAME,
    ash::ext::queue_family_foreign::NAME,
];

impl DeviceCaps {
    /// Probes `pdev`. Pure queries; nothing is created.
    pub fn probe(instance: &ash::Instance, pdev: vk::PhysicalDevice) -> DeviceCaps {
        let exts = unsafe { instance.enumerate_device_extension_properties(pdev) }.unwrap_or_default();
        let has = |want: &CStr| exts.iter().any(|e| e.extension_name_as_c_str().ok() == Some(want));
        let mut caps = DeviceCaps {
            external_memory_fd: has(ash::khr::external_memory_fd::NAME),
            external_memory_dma_buf: has(ash::ext::external_memory_dma_buf::NAME),
            image_drm_format_modifier: has(ash::ext::image_drm_format_modifier::NAME),
            external_semaphore_fd: has(ash::khr::external_semaphore_fd::NAME),
            physical_device_drm: has(ash::ext::physical_device_drm::NAME),
            queue_family_foreign: has(ash::ext::queue_family_foreign::NAME),
            ..Default::default()
        };
        let mut drm = vk::PhysicalDeviceDrmPropertiesEXT::default();
        let mut driver = vk::PhysicalDeviceDriverProperties::default();
        let mut props2 = vk::PhysicalDeviceProperties2::default().push_next(&mut driver);
        if caps.physical_device_drm {
            props2 = props2.push_next(&mut drm);
        }
        unsafe { instance.get_physical_device_properties2(pdev, &mut props2) };
        let props = props2.properties;
        caps.name = props
            .device_name_as_c_str()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        caps.driver = driver
            .driver_info_as_c_str()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        caps.device_type = props.device_type;
        // SAFETY: a valid physical device of this instance.
        let families = unsafe { instance.get_physical_device_queue_family_properties(pdev) };
        caps.graphics_queue = families
            .iter()
            .any(|f| f.queue_flags.contains(vk::QueueFlags::GRAPHICS));
        caps.api_version = props.api_version;
        let mut ycbcr = vk::PhysicalDeviceSamplerYcbcrConversionFeatures::default();
        let mut features = vk::PhysicalDeviceFeatures2::default().push_next(&mut ycbcr);
        if caps.api_version >= vk::API_VERSION_1_1 {
            // SAFETY: a valid physical device of this instance; core since 1.1.
            unsafe { instance.get_physical_device_features2(pdev, &mut features) };
        }
        caps.sampler_ycbcr_conversion = ycbcr.sampler_ycbcr_conversion == vk::TRUE;
        if caps.physical_device_drm {
            if drm.has_render == vk::TRUE {
                caps.render_node = Some((drm.render_major, drm.render_minor));
            }
            if drm.has_primary == vk::TRUE {
                caps.primary_node = Some((drm.primary_major, drm.primary_minor));
            }
        }
        caps
    }

    /// Extensions of [`WANTED_EXTENSIONS`] this device has, to enable.
    pub fn enabled_extensions(&self) -> Vec<&'static CStr> {
        let flags = [
            self.external_memory_fd,
            self.external_memory_dma_buf,
            self.image_drm_format_modifier,
            self.external_semaphore_fd,
            self.physical_device_drm,
            self.queue_family_foreign,
        ];
        WANTED_EXTENSIONS
            .iter()
            .zip(flags)
            .filter(|(_, on)| *on)
            .map(|(e, _)| *e)
            .collect()
    }

    /// Whether client dma-bufs can be imported at all.
    pub fn can_import_dmabuf(&self) -> bool {
        self.external_memory_fd && self.external_memory_dma_buf
    }

    /// The queue family an imported dma-buf is acquired from and released to.
    pub fn foreign_queue_family(&self) -> u32 {
        if self.queue_family_foreign {
            vk::QUEUE_FAMILY_FOREIGN_EXT
        } else {
            vk::QUEUE_FAMILY_EXTERNAL
        }
    }

    /// One line for the startup log.
    pub fn summary(&self) -> String {
        let yn = |b: bool| if b { "yes" } else { "no" };
        format!(
            "{} ({}, {}, Vulkan {}.{}): dma_buf={} memory_fd={} drm_format_modifier={} semaphore_fd={} physical_device_drm={} queue_family_foreign={} ycbcr={} render_node={:?}",
            self.name,
            format!("{:?}", self.device_type),
            self.driver,
            vk::api_version_major(self.api_version),
            vk::api_version_minor(self.api_version),
            yn(self.external_memory_dma_buf),
            yn(self.external_memory_fd),
            yn(self.image_drm_format_modifier),
            yn(self.external_semaphore_fd),
            yn(self.physical_device_drm),
            yn(self.queue_family_foreign),
            yn(self.sampler_ycbcr_conversion),
            self.render_node,
        )
    }
}
