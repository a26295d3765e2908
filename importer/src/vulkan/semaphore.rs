//! sync_files ↔ Vulkan binary semaphores (`VK_KHR_external_semaphore_fd`,
//! handle type `SYNC_FD`): what the device can do, a temporary import for a
//! GPU-side wait, and an export of a submission's completion.

use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

use ash::vk;

use super::{VkContext, VkError};
use crate::sync::SyncFile;

/// `SYNC_FD` semaphore support, as `vkGetPhysicalDeviceExternalSemaphoreProperties` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SemaphoreSyncFd {
    /// The extension is enabled on the device.
    pub extension: bool,
    /// A sync_file can be imported into a semaphore (GPU waits on it).
    pub import: bool,
    /// A semaphore can be exported as a sync_file (the GPU's completion).
    pub export: bool,
}

impl SemaphoreSyncFd {
    /// Queries the physical device of `ctx`.
    pub fn probe(ctx: &VkContext) -> SemaphoreSyncFd {
        let extension = ctx.external_semaphore_fd.is_some();
        let info = vk::PhysicalDeviceExternalSemaphoreInfo::default()
            .handle_type(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
        let mut props = vk::ExternalSemaphoreProperties::default();
        unsafe {
            ctx.instance
                .get_physical_device_external_semaphore_properties(ctx.physical, &info, &mut props)
        };
        let features = props.external_semaphore_features;
        let sync_fd = props
            .compatible_handle_types
            .contains(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD)
            || props
                .export_from_imported_handle_types
                .contains(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD)
            || !features.is_empty();
        SemaphoreSyncFd {
            extension,
            import: extension && sync_fd && features.contains(vk::ExternalSemaphoreFeatureFlags::IMPORTABLE),
            export: extension && sync_fd && features.contains(vk::ExternalSemaphoreFeatureFlags::EXPORTABLE),
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "semaphore SYNC_FD: extension={} import={} export={}",
            self.extension, self.import, self.export
        )
    }
}

/// A binary semaphore with a temporarily imported sync_file payload, to put
/// in a submission's wait list. Destroy it only after that submission's
/// fence signaled (the frame keeps it).
pub fn import_wait_semaphore(ctx: &VkContext, sync_file: SyncFile) -> Result<vk::Semaphore, VkError> {
    let ext = ctx
        .external_semaphore_fd
        .as_ref()
        .ok_or_else(|| VkError::Unsupported("VK_KHR_external_semaphore_fd".into()))?;
    let sem = unsafe { ctx.device.create_semaphore(&vk::SemaphoreCreateInfo::default(), None) }.map_err(|result| {
        VkError::Call {
            call: "vkCreateSemaphore",
            result,
        }
    })?;
    let fd = sync_file.into_fd().into_raw_fd();
    let info = vk::ImportSemaphoreFdInfoKHR::default()
        .semaphore(sem)
        .flags(vk::SemaphoreImportFlags::TEMPORARY)
        .handle_type(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD)
        .fd(fd);
    if let Err(result) = unsafe { ext.import_semaphore_fd(&info) } {
        // On failure the fd is still ours.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
        unsafe { ctx.device.destroy_semaphore(sem, None) };
        return Err(VkError::Call {
            call: "vkImportSemaphoreFdKHR(SYNC_FD)",
            result,
        });
    }
    Ok(sem)
}

/// A semaphore that can be exported as a `SYNC_FD` once a submission signals it.
pub fn create_export_semaphore(ctx: &VkContext) -> Result<vk::Semaphore, VkError> {
    let mut export =
        vk::ExportSemaphoreCreateInfo::default().handle_types(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
    let info = vk::SemaphoreCreateInfo::default().push_next(&mut export);
    unsafe { ctx.device.create_semaphore(&info, None) }.map_err(|result| VkError::Call {
        call: "vkCreateSemaphore(export)",
        result,
    })
}

/// Exports a submitted signal of `sem` as a sync_file (`vkGetSemaphoreFdKHR`).
pub fn export_sync_file(ctx: &VkContext, sem: vk::Semaphore) -> Result<SyncFile, VkError> {
    let ext = ctx
        .external_semaphore_fd
        .as_ref()
        .ok_or_else(|| VkError::Unsupported("VK_KHR_external_semaphore_fd".into()))?;
    let info = vk::SemaphoreGetFdInfoKHR::default()
        .semaphore(sem)
        .handle_type(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
    let fd = unsafe { ext.get_semaphore_fd(&info) }.map_err(|result| VkError::Call {
        call: "vkGetSemaphoreFdKHR(SYNC_FD)",
        result,
    })?;
    if fd < 0 {
        // -1: already signaled. Represent it with a signaled sync_file is not
        // possible without a fence; callers treat Err as "no GPU fence".
        return Err(VkError::Unsupported(
            "vkGetSemaphoreFdKHR returned -1 (already signaled)".into(),
        ));
    }
    // SAFETY: the driver returned a new fd we own.
    Ok(SyncFile::from_kernel(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Destroys semaphores when dropped (kept with a frame until its fence signals).
pub struct SemaphoreKeep {
    pub(crate) device: ash::Device,
    pub(crate) semaphores: Vec<vk::Semaphore>,
}

impl Drop for SemaphoreKeep {
    fn drop(&mut self) {
        for s in self.semaphores.drain(..) {
            unsafe { self.device.destroy_semaphore(s, None) };
        }
    }
}
