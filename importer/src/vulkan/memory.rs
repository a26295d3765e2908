//! Device memory: dma-buf imports and host-visible buffers.
//!
//! DOC: fd ownership
//!
//! `vkAllocateMemory` with `VkImportMemoryFdInfoKHR` takes ownership of the fd
//! only when it succeeds. [`import_dmabuf_memory`] therefore dups the client's
//! fd, hands the dup over on success and closes it itself on failure; the
//! client's fd is never consumed.

use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd};
use std::sync::Arc;

use ash::vk;

use super::{VkContext, VkError, VkResultExt};

/// What a dedicated allocation is dedicated to.
#[derive(Debug, Clone, Copy)]
pub enum Dedicated {
    Image(vk::Image),
    Buffer(vk::Buffer),
    /// Not dedicated: a memory plane of a disjoint image (a dedicated
    /// allocation cannot back one).
    None,
}

/// Memory types an fd can be imported into.
pub fn dmabuf_memory_type_bits(ctx: &VkContext, fd: BorrowedFd<'_>) -> Result<u32, VkError> {
    let ext = ctx.external_memory_fd.as_ref().ok_or(VkError::NoDmabufImport)?;
    let mut props = vk::MemoryFdPropertiesKHR::default();
    unsafe {
        ext.get_memory_fd_properties(
            vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT,
            fd.as_raw_fd(),
            &mut props,
        )
    }
    .call("vkGetMemoryFdPropertiesKHR")?;
    Ok(props.memory_type_bits)
}

/// Imports `fd` (dup'd) as device memory of `size` bytes, dedicated to `to`.
///
/// Locks: the caller holds the buffer's import state exclusively (it is
/// creating the import); nothing here blocks.
pub fn import_dmabuf_memory(
    ctx: &VkContext,
    fd: BorrowedFd<'_>,
    reqs: vk::MemoryRequirements,
    to: Dedicated,
) -> Result<vk::DeviceMemory, VkError> {
    let fd_bits = dmabuf_memory_type_bits(ctx, fd)?;
    let type_index = ctx
        .memory_type(reqs.memory_type_bits & fd_bits, vk::MemoryPropertyFlags::empty())
        .ok_or(VkError::NoMemoryType("dma-buf import"))?;
    let dup = fd.try_clone_to_owned()?;
    let mut import = vk::ImportMemoryFdInfoKHR::default()
        .handle_type(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT)
        .fd(dup.as_raw_fd());
    let mut dedicated = match to {
        Dedicated::Image(image) => Some(vk::MemoryDedicatedAllocateInfo::default().image(image)),
        Dedicated::Buffer(buffer) => Some(vk::MemoryDedicatedAllocateInfo::default().buffer(buffer)),
        Dedicated::None => None,
    };
    let mut info = vk::MemoryAllocateInfo::default()
        .allocation_size(reqs.size)
        .memory_type_index(type_index)
        .push_next(&mut import);
    if let Some(d) = dedicated.as_mut() {
        info = info.push_next(d);
    }
    let raw = dup.into_raw_fd();
    match unsafe { ctx.device.allocate_memory(&info, None) } {
        // Success: the driver owns the dup now.
        Ok(memory) => Ok(memory),
        Err(result) => {
            close_unless_driver_did(raw);
            Err(VkError::Call {
                call: "vkAllocateMemory(dma-buf)",
                result,
            })
        }
    }
}

/// After a failed import the fd is still ours (Vulkan spec), but lavapipe
/// (Mesa 25.0) closes it anyway when its mmap of the dma-buf fails (EACCES
/// on a read-only dma-buf), and closing it again would close a number that
/// may be reused (Rust's `OwnedFd` aborts on the EBADF). So: close it only if
/// it is still open. A thread opening a file between the driver's close and
/// this check could get the same number; imports run on the event-loop
/// thread and the window is a few instructions.
fn close_unless_driver_did(raw: std::os::fd::RawFd) {
    // SAFETY: F_GETFD only queries the descriptor.
    if unsafe { libc::fcntl(raw, libc::F_GETFD) } >= 0 {
        // SAFETY: still open and never handed over: ours to close.
        drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) });
    } else {
        tracing::debug!(fd = raw, "the driver closed the dma-buf fd of a failed import itself");
    }
}

/// A host-visible, coherent buffer (staging uploads, read-backs).
pub struct HostBuffer {
    ctx: Arc<VkContext>,
    pub buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    ptr: *mut u8,
    pub size: usize,
    /// Counted in [`super::census`].
    _live: super::census::Live,
}

// SAFETY: the mapping is plain memory owned by this object; access goes through &/&mut self.
unsafe impl Send for HostBuffer {}
unsafe impl Sync for HostBuffer {}

impl HostBuffer {
    pub fn new(ctx: &Arc<VkContext>, size: usize, usage: vk::BufferUsageFlags) -> Result<HostBuffer, VkError> {
        let dev = &ctx.device;
        let info = vk::BufferCreateInfo::default().size(size.max(4) as u64).usage(usage);
        let buffer = unsafe { dev.create_buffer(&info, None) }.call("vkCreateBuffer(host)")?;
        let reqs = unsafe { dev.get_buffer_memory_requirements(buffer) };
        let flags = vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
        let Some(type_index) = ctx.memory_type(reqs.memory_type_bits, flags) else {
            unsafe { dev.destroy_buffer(buffer, None) };
            return Err(VkError::NoMemoryType("host-visible buffer"));
        };
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(reqs.size)
            .memory_type_index(type_index);
        let memory = match unsafe { dev.allocate_memory(&alloc, None) }.call("vkAllocateMemory(host)") {
            Ok(m) => m,
            Err(e) => {
                unsafe { dev.destroy_buffer(buffer, None) };
                return Err(e);
            }
        };
        let mapped = unsafe {
            dev.bind_buffer_memory(buffer, memory, 0)
                .and_then(|_| dev.map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty()))
        };
        match mapped {
            Ok(ptr) => Ok(HostBuffer {
                ctx: ctx.clone(),
                buffer,
                memory,
                ptr: ptr.cast(),
                size,
                _live: super::census::Live::new(super::census::Kind::HostBuffer),
            }),
            Err(result) => {
                unsafe {
                    dev.destroy_buffer(buffer, None);
                    dev.free_memory(memory, None);
                }
                Err(VkError::Call {
                    call: "vkMapMemory",
                    result,
                })
            }
        }
    }

    /// The mapped bytes (coherent memory: no flush needed).
    pub fn bytes(&self) -> &[u8] {
        unsafe { std::slice::from_raw_parts(self.ptr, self.size) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.size) }
    }
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        unsafe {
            self.ctx.device.destroy_buffer(self.buffer, None);
            self.ctx.device.free_memory(self.memory, None);
        }
    }
}

/// An image and the memory bound to it (one allocation, or one per memory
/// plane of a disjoint image), destroyed on drop unless
/// [`ImageAlloc::into_raw`] hands them over (to a texture or a target).
pub struct ImageAlloc<'a> {
    ctx: &'a VkContext,
    pub image: vk::Image,
    pub memory: Vec<vk::DeviceMemory>,
}

impl<'a> ImageAlloc<'a> {
    /// Takes ownership of `image` (no memory yet).
    pub fn new(ctx: &'a VkContext, image: vk::Image) -> Self {
        ImageAlloc {
            ctx,
            image,
            memory: Vec::new(),
        }
    }

    /// `vkBindImageMemory` of `memory`, which this allocation owns from now on.
    pub fn bind(&mut self, memory: vk::DeviceMemory, call: &'static str) -> Result<(), VkError> {
        self.bind_at(memory, 0, call)
    }

    /// [`ImageAlloc::bind`] at `offset` into the memory.
    pub fn bind_at(&mut self, memory: vk::DeviceMemory, offset: u64, call: &'static str) -> Result<(), VkError> {
        self.memory.push(memory);
        unsafe { self.ctx.device.bind_image_memory(self.image, memory, offset) }.call(call)
    }

    /// Disjoint image: binds `memory[i]` to memory plane `i`; this
    /// allocation owns them from now on.
    pub fn bind_planes(&mut self, memory: Vec<vk::DeviceMemory>) -> Result<(), VkError> {
        let planes: Vec<(vk::DeviceMemory, u64)> = memory.into_iter().map(|m| (m, 0)).collect();
        self.bind_planes_at(planes, memory_plane_aspect)
    }

    /// Binds each plane `i` of a disjoint image to `planes[i]`'s memory at
    /// its offset; `aspect(i)` names the plane (`MEMORY_PLANE_i` for
    /// DRM_FORMAT_MODIFIER tiling, `PLANE_i` otherwise). Takes ownership of
    /// the memory, also on error.
    pub fn bind_planes_at(
        &mut self,
        planes: Vec<(vk::DeviceMemory, u64)>,
        aspect: impl Fn(usize) -> vk::ImageAspectFlags,
    ) -> Result<(), VkError> {
        self.memory.extend(planes.iter().map(|(m, _)| *m));
        let mut plane_infos: Vec<vk::BindImagePlaneMemoryInfo> = (0..planes.len())
            .map(|i| vk::BindImagePlaneMemoryInfo::default().plane_aspect(aspect(i)))
            .collect();
        let binds: Vec<vk::BindImageMemoryInfo> = planes
            .iter()
            .zip(plane_infos.iter_mut())
            .map(|(&(m, offset), plane)| {
                vk::BindImageMemoryInfo::default()
                    .image(self.image)
                    .memory(m)
                    .memory_offset(offset)
                    .push_next(plane)
            })
            .collect();
        unsafe { self.ctx.device.bind_image_memory2(&binds) }.call("vkBindImageMemory2(disjoint dma-buf)")
    }

    /// A device-local (else any) allocation for the image, bound.
    pub fn allocate_and_bind(&mut self, what: &'static str) -> Result<(), VkError> {
        let ctx = self.ctx;
        let reqs = unsafe { ctx.device.get_image_memory_requirements(self.image) };
        let type_index = ctx
            .memory_type(reqs.memory_type_bits, vk::MemoryPropertyFlags::DEVICE_LOCAL)
            .or_else(|| ctx.memory_type(reqs.memory_type_bits, vk::MemoryPropertyFlags::empty()))
            .ok_or(VkError::NoMemoryType(what))?;
        self.allocate_type_and_bind(reqs, type_index).map(drop)
    }

    /// A host-visible, coherent allocation for the image, bound; returned
    /// for mapping (this allocation still owns it).
    pub fn allocate_host_and_bind(&mut self, what: &'static str) -> Result<vk::DeviceMemory, VkError> {
        let ctx = self.ctx;
        let reqs = unsafe { ctx.device.get_image_memory_requirements(self.image) };
        let host = vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
        let type_index = ctx
            .memory_type(reqs.memory_type_bits, host)
            .ok_or(VkError::NoMemoryType(what))?;
        self.allocate_type_and_bind(reqs, type_index)
    }

    fn allocate_type_and_bind(
        &mut self,
        reqs: vk::MemoryRequirements,
        type_index: u32,
    ) -> Result<vk::DeviceMemory, VkError> {
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(reqs.size)
            .memory_type_index(type_index);
        let memory = unsafe { self.ctx.device.allocate_memory(&alloc, None) }.call("vkAllocateMemory(image)")?;
        self.bind(memory, "vkBindImageMemory")?;
        Ok(memory)
    }

    pub fn into_raw(self) -> (vk::Image, Vec<vk::DeviceMemory>) {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped; the vector is moved out once.
        (this.image, unsafe { std::ptr::read(&this.memory) })
    }
}

/// `PLANE_i` of a multi-planar format (LINEAR or OPTIMAL tiling).
pub fn format_plane_aspect(i: usize) -> vk::ImageAspectFlags {
    [
        vk::ImageAspectFlags::PLANE_0,
        vk::ImageAspectFlags::PLANE_1,
        vk::ImageAspectFlags::PLANE_2,
    ][i]
}

/// `VK_IMAGE_ASPECT_MEMORY_PLANE_i_BIT_EXT`.
pub fn memory_plane_aspect(i: usize) -> vk::ImageAspectFlags {
    [
        vk::ImageAspectFlags::MEMORY_PLANE_0_EXT,
        vk::ImageAspectFlags::MEMORY_PLANE_1_EXT,
        vk::ImageAspectFlags::MEMORY_PLANE_2_EXT,
        vk::ImageAspectFlags::MEMORY_PLANE_3_EXT,
    ][i]
}

impl Drop for ImageAlloc<'_> {
    fn drop(&mut self) {
        unsafe {
            self.ctx.device.destroy_image(self.image, None);
            for &m in &self.memory {
                self.ctx.device.free_memory(m, None);
            }
        }
    }
}

/// A buffer and the memory bound to it, destroyed on drop unless
/// [`BufferAlloc::into_raw`] hands them over.
pub struct BufferAlloc<'a> {
    ctx: &'a VkContext,
    pub buffer: vk::Buffer,
    pub memory: vk::DeviceMemory,
}

impl<'a> BufferAlloc<'a> {
    pub fn new(ctx: &'a VkContext, buffer: vk::Buffer) -> Self {
        BufferAlloc {
            ctx,
            buffer,
            memory: vk::DeviceMemory::null(),
        }
    }

    pub fn bind(&mut self, memory: vk::DeviceMemory, call: &'static str) -> Result<(), VkError> {
        self.memory = memory;
        unsafe { self.ctx.device.bind_buffer_memory(self.buffer, memory, 0) }.call(call)
    }

    pub fn into_raw(self) -> (vk::Buffer, vk::DeviceMemory) {
        let this = std::mem::ManuallyDrop::new(self);
        (this.buffer, this.memory)
    }
}

impl Drop for BufferAlloc<'_> {
    fn drop(&mut self) {
        unsafe {
            self.ctx.device.destroy_buffer(self.buffer, None);
            if self.memory != vk::DeviceMemory::null() {
                self.ctx.device.free_memory(self.memory, None);
            }
        }
    }
}
