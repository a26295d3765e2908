//! The Vulkan instance and device the importer works with.
//!
//! DOC: device choice
//!
//! `super::device_choice` decides (an explicit name or index, the device
//! behind the KMS card, else the best by rank); this module probes every
//! device, applies it and logs why.
//!
//! DOC: locking
//!
//! The queue is externally synchronized in Vulkan: every submission goes
//! through [`VkContext::submit`], which holds the queue mutex only for the
//! `vkQueueSubmit` call itself (never across a wait).

use std::ffi::CStr;
use std::sync::Mutex;

use ash::vk;
use tracing::{debug, info, warn};

use super::caps::DeviceCaps;
use super::device_choice::{self, Choice, DeviceSelection, Reason};
use super::{VkError, VkResultExt};

/// Instance, device, queue and the extension entry points the importer uses.
pub struct VkContext {
    pub entry: ash::Entry,
    pub instance: ash::Instance,
    pub physical: vk::PhysicalDevice,
    pub device: ash::Device,
    pub queue_family: u32,
    queue: Mutex<vk::Queue>,
    pub caps: DeviceCaps,
    /// Why this device (see `super::device_choice`).
    pub choice: Choice,
    /// On the DRM backend: whether this device is the KMS card's (`None`
    /// when no device reported a DRM node).
    pub renders_on_kms: Option<bool>,
    pub memory_properties: vk::PhysicalDeviceMemoryProperties,
    /// `VK_KHR_external_memory_fd`, when enabled.
    pub external_memory_fd: Option<ash::khr::external_memory_fd::Device>,
    /// `VK_EXT_image_drm_format_modifier`, when enabled.
    pub drm_format_modifier: Option<ash::ext::image_drm_format_modifier::Device>,
    /// `VK_KHR_external_semaphore_fd`, when enabled.
    pub external_semaphore_fd: Option<ash::khr::external_semaphore_fd::Device>,
}

impl std::fmt::Debug for VkContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VkContext")
            .field("device", &self.caps.name)
            .finish_non_exhaustive()
    }
}

fn create_instance(entry: &ash::Entry) -> Result<ash::Instance, VkError> {
    let app = vk::ApplicationInfo::default()
        .application_name(c"dmabuf-compositor")
        .engine_name(c"importer")
        .api_version(vk::API_VERSION_1_2);
    let info = vk::InstanceCreateInfo::default().application_info(&app);
    unsafe { entry.create_instance(&info, None) }.call("vkCreateInstance")
}

fn pick_device(
    instance: &ash::Instance,
    selection: &DeviceSelection,
    kms: Option<(i64, i64)>,
) -> Result<(vk::PhysicalDevice, DeviceCaps, Choice, Option<bool>), VkError> {
    let pdevs = unsafe { instance.enumerate_physical_devices() }.call("vkEnumeratePhysicalDevices")?;
    let caps: Vec<DeviceCaps> = pdevs.iter().map(|&p| DeviceCaps::probe(instance, p)).collect();
    for (i, c) in caps.iter().enumerate() {
        debug!(
            index = i,
            rank = device_choice::rank(c),
            "vulkan device: {}",
            c.summary()
        );
    }
    let label = match selection {
        DeviceSelection::Auto => "any device".to_owned(),
        DeviceSelection::Named(n) => n.clone(),
    };
    let choice = device_choice::choose(&caps, selection, kms).ok_or(VkError::NoDevice(label))?;
    match choice.reason {
        Reason::KmsDeviceCannotRender { kms_device } => warn!(
            kms_device = %caps[kms_device].name,
            renderer = %caps[choice.index].name,
            "the KMS card's device cannot render; rendering on another and copying every frame"
        ),
        Reason::KmsNodeUnknown => info!(
            ?kms,
            "no Vulkan device reports the KMS card's DRM node; chose by rank, scan-out import will be tried"
        ),
        _ => {}
    }
    let on_kms = choice.renders_on_kms_device(&caps, kms);
    info!(device = %caps[choice.index].name, reason = ?choice.reason, renders_on_kms_device = ?on_kms, "Vulkan device chosen");
    Ok((pdevs[choice.index], caps[choice.index].clone(), choice, on_kms))
}

fn graphics_queue_family(instance: &ash::Instance, pdev: vk::PhysicalDevice) -> Result<u32, VkError> {
    let families = unsafe { instance.get_physical_device_queue_family_properties(pdev) };
    families
        .iter()
        .position(|f| f.queue_flags.contains(vk::QueueFlags::GRAPHICS))
        .map(|i| i as u32)
        .ok_or(VkError::NoQueue)
}

impl VkContext {
    /// Loads Vulkan, picks a device per `selection`, creates it with every
    /// import extension it has, and logs what it can do.
    pub fn new(selection: &DeviceSelection, kms: Option<(i64, i64)>) -> Result<VkContext, VkError> {
        let entry = unsafe { ash::Entry::load() }?;
        let instance = create_instance(&entry)?;
        let (physical, caps, choice, renders_on_kms) = match pick_device(&instance, selection, kms) {
            Ok(d) => d,
            Err(e) => {
                unsafe { instance.destroy_instance(None) };
                return Err(e);
            }
        };
        let destroy_instance = |e: VkError| {
            unsafe { instance.destroy_instance(None) };
            e
        };
        let queue_family = graphics_queue_family(&instance, physical).map_err(destroy_instance)?;
        let ext_names: Vec<*const i8> = caps.enabled_extensions().iter().map(|e: &&CStr| e.as_ptr()).collect();
        let priorities = [1.0f32];
        let queue_info = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(queue_family)
            .queue_priorities(&priorities)];
        let mut ycbcr = vk::PhysicalDeviceSamplerYcbcrConversionFeatures::default()
            .sampler_ycbcr_conversion(caps.sampler_ycbcr_conversion);
        let info = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queue_info)
            .enabled_extension_names(&ext_names)
            .push_next(&mut ycbcr);
        let device = unsafe { instance.create_device(physical, &info, None) }
            .call("vkCreateDevice")
            .map_err(destroy_instance)?;
        let queue = unsafe { device.get_device_queue(queue_family, 0) };
        let memory_properties = unsafe { instance.get_physical_device_memory_properties(physical) };
        let external_memory_fd = caps
            .external_memory_fd
            .then(|| ash::khr::external_memory_fd::Device::new(&instance, &device));
        let drm_format_modifier = caps
            .image_drm_format_modifier
            .then(|| ash::ext::image_drm_format_modifier::Device::new(&instance, &device));
        let external_semaphore_fd = caps
            .external_semaphore_fd
            .then(|| ash::khr::external_semaphore_fd::Device::new(&instance, &device));
        info!("vulkan device: {}", caps.summary());
        Ok(VkContext {
            entry,
            instance,
            physical,
            device,
            queue_family,
            queue: Mutex::new(queue),
            caps,
            choice,
            renders_on_kms,
            memory_properties,
            external_memory_fd,
            drm_format_modifier,
            external_semaphore_fd,
        })
    }

    /// The queue lock (innermost class of the hierarchy, `lockdep::DEVICE_QUEUE`).
    fn queue(&self) -> (crate::lockdep::HeldLock, std::sync::MutexGuard<'_, vk::Queue>) {
        let held = crate::lockdep::acquire(&crate::lockdep::DEVICE_QUEUE, &self.queue as *const _ as usize, None);
        (held, self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Submits to the queue. Holds the queue lock for the call only; may be
    /// called with reservations held (it does not block).
    pub fn submit(&self, submits: &[vk::SubmitInfo<'_>], fence: vk::Fence) -> Result<(), VkError> {
        let (_held, queue) = self.queue();
        unsafe { self.device.queue_submit(*queue, submits, fence) }.call("vkQueueSubmit")
    }

    /// Index of a memory type in `type_bits` having `flags`.
    pub fn memory_type(&self, type_bits: u32, flags: vk::MemoryPropertyFlags) -> Option<u32> {
        (0..self.memory_properties.memory_type_count).find(|&i| {
            type_bits & (1 << i) != 0
                && self.memory_properties.memory_types[i as usize]
                    .property_flags
                    .contains(flags)
        })
    }

    /// `VkDrmFormatModifierPropertiesListEXT` of `format` (empty without
    /// modifier support).
    pub fn modifier_properties(&self, format: vk::Format) -> Vec<vk::DrmFormatModifierPropertiesEXT> {
        let (instance, pdev) = (&self.instance, self.physical);
        let count = {
            let mut list = vk::DrmFormatModifierPropertiesListEXT::default();
            let mut props = vk::FormatProperties2::default().push_next(&mut list);
            // SAFETY: a valid physical device of this instance; the list only
            // receives a count here.
            unsafe { instance.get_physical_device_format_properties2(pdev, format, &mut props) };
            list.drm_format_modifier_count as usize
        };
        let mut modifiers = vec![vk::DrmFormatModifierPropertiesEXT::default(); count];
        if count > 0 {
            let mut list =
                vk::DrmFormatModifierPropertiesListEXT::default().drm_format_modifier_properties(&mut modifiers);
            let mut props = vk::FormatProperties2::default().push_next(&mut list);
            // SAFETY: `modifiers` has room for the count queried above.
            unsafe { instance.get_physical_device_format_properties2(pdev, format, &mut props) };
        }
        modifiers
    }

    /// Features of `format` in LINEAR tiling (`modifier` `None`), or in
    /// DRM_FORMAT_MODIFIER tiling with that modifier (`None` when the device
    /// does not list it for the format).
    pub fn format_features(&self, format: vk::Format, modifier: Option<u64>) -> Option<vk::FormatFeatureFlags> {
        let Some(modifier) = modifier else {
            // SAFETY: a valid physical device of this instance.
            let props = unsafe {
                self.instance
                    .get_physical_device_format_properties(self.physical, format)
            };
            return Some(props.linear_tiling_features);
        };
        self.modifier_properties(format)
            .iter()
            .find(|m| m.drm_format_modifier == modifier)
            .map(|m| m.drm_format_modifier_tiling_features)
    }

    /// Blocks until the device is idle. Only for teardown. Locks: none may be
    /// a reservation (`lockdep::might_block`).
    pub fn wait_idle_for_teardown(&self) {
        crate::lockdep::might_block("vkDeviceWaitIdle");
        let (_held, _queue) = self.queue();
        let _ = unsafe { self.device.device_wait_idle() };
    }
}

impl Drop for VkContext {
    fn drop(&mut self) {
        self.wait_idle_for_teardown();
        unsafe {
            self.device.destroy_device(None);
            self.instance.destroy_instance(None);
        }
    }
}
