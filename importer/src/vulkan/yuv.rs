//! NV12 → RGBA conversion on the GPU (`shaders/nv12.wgsl`, a compute shader):
//! the CPU fallback's path for NV12. Where the device can, YUV is sampled
//! zero-copy instead (`super::ycbcr`).
//!
//! DOC: what it converts
//!
//! NV12: a Y plane (one byte per pixel) and an interleaved CbCr plane (one
//! Cb,Cr pair per 2×2 pixels), BT.601 limited range (Y' 16–235, Cb/Cr 16–240),
//! with the chroma siting and reconstruction of `super::ycbcr` (cosited,
//! linear: an odd pixel takes the mean of the samples around it),
//! converted as the surface's representation says (BT.601 limited range by
//! default; the frame that first draws the upload decides) to non-linear
//! R'G'B' with alpha 1 into an `R8G8B8A8_UNORM`
//! texture (the ABGR8888 format) that the quad pipeline samples like any
//! other. The shader reads both planes from one storage buffer by byte
//! offset and stride, so:
//!
//! * the CPU fallback copies the client's two planes (from one mapping per
//!   fd, planes at any offset) into a staging buffer and dispatches it
//!   ([`Nv12Params`] describe the staging layout);
//! * a GPU buffer path could bind the client's imported `VkBuffer` (created
//!   with `STORAGE_BUFFER` usage) with the client's offsets and strides
//!   unchanged. Not wired: docs/import-paths.md, "YUV".
//!
//! DOC: locks
//!
//! Recording a conversion is like recording a copy: it happens in the frame's
//! prepare command buffer, under whatever the frame holds; it never blocks.

use std::sync::Arc;

use ash::vk;

use super::ycbcr::Representation;
use super::{VkContext, VkError, VkResultExt};

const NV12_SPV: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/nv12.spv"));

/// Layout of the two planes inside the source buffer (bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nv12Params {
    pub width: u32,
    pub height: u32,
    pub y_offset: u32,
    pub y_stride: u32,
    pub uv_offset: u32,
    pub uv_stride: u32,
}

/// Bytes of the shader's push constants: [`Nv12Params`] and the colour
/// conversion ([`conversion`]).
const PUSH_BYTES: u32 = 56;

impl Nv12Params {
    /// The push constants: the layout, then `representation`'s conversion.
    fn as_bytes(&self, representation: Representation) -> [u8; PUSH_BYTES as usize] {
        let mut out = [0u8; PUSH_BYTES as usize];
        let words = [
            self.width,
            self.height,
            self.y_offset,
            self.y_stride,
            self.uv_offset,
            self.uv_stride,
        ]
        .into_iter()
        .chain(conversion(representation).map(f32::to_bits));
        for (i, v) in words.enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
        }
        out
    }
}

/// The shader's conversion constants for 8-bit samples: `y_bias`,
/// `y_scale`, `c_bias`, `c_scale`, `r_cr`, `g_cb`, `g_cr`, `b_cb` (see
/// `shaders/nv12.wgsl`), by Vulkan's Y'CbCr model and range formulas, so the
/// fallback gives what the Y'CbCr sampler would.
pub fn conversion(r: Representation) -> [f32; 8] {
    use ash::vk::{SamplerYcbcrModelConversion as M, SamplerYcbcrRange as R};
    let (kr, kb): (f32, f32) = match r.model {
        M::YCBCR_709 => (0.2126, 0.0722),
        M::YCBCR_2020 => (0.2627, 0.0593),
        _ => (0.299, 0.114),
    };
    let (y_bias, y_scale, c_scale) = match r.range {
        R::ITU_FULL => (0.0, 1.0 / 255.0, 1.0 / 255.0),
        _ => (16.0, 1.0 / 219.0, 1.0 / 224.0),
    };
    let kg = 1.0 - kr - kb;
    [
        y_bias,
        y_scale,
        128.0,
        c_scale,
        2.0 * (1.0 - kr),
        2.0 * (1.0 - kb) * kb / kg,
        2.0 * (1.0 - kr) * kr / kg,
        2.0 * (1.0 - kb),
    ]
}

/// The compute pipeline.
pub struct Nv12Pipeline {
    ctx: Arc<VkContext>,
    set_layout: vk::DescriptorSetLayout,
    layout: vk::PipelineLayout,
    pipeline: vk::Pipeline,
}

impl std::fmt::Debug for Nv12Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nv12Pipeline").finish_non_exhaustive()
    }
}

/// A descriptor pool used by one recorded conversion; kept with the frame
/// until its fence signals, destroyed on drop.
struct PoolKeep {
    ctx: Arc<VkContext>,
    pool: vk::DescriptorPool,
}

impl Drop for PoolKeep {
    fn drop(&mut self) {
        unsafe { self.ctx.device.destroy_descriptor_pool(self.pool, None) };
    }
}

impl Nv12Pipeline {
    pub fn new(ctx: &Arc<VkContext>) -> Result<Nv12Pipeline, VkError> {
        let dev = &ctx.device;
        let words: Vec<u32> = NV12_SPV
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let module = unsafe { dev.create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&words), None) }
            .call("vkCreateShaderModule(nv12)")?;
        let bindings = [
            vk::DescriptorSetLayoutBinding::default()
                .binding(0)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::COMPUTE),
            vk::DescriptorSetLayoutBinding::default()
                .binding(1)
                .descriptor_type(vk::DescriptorType::STORAGE_IMAGE)
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::COMPUTE),
        ];
        let set_layout = unsafe {
            dev.create_descriptor_set_layout(&vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings), None)
        }
        .call("vkCreateDescriptorSetLayout(nv12)");
        let set_layout = match set_layout {
            Ok(l) => l,
            Err(e) => {
                unsafe { dev.destroy_shader_module(module, None) };
                return Err(e);
            }
        };
        let ranges = [vk::PushConstantRange {
            stage_flags: vk::ShaderStageFlags::COMPUTE,
            offset: 0,
            size: PUSH_BYTES,
        }];
        let set_layouts = [set_layout];
        let layout = unsafe {
            dev.create_pipeline_layout(
                &vk::PipelineLayoutCreateInfo::default()
                    .set_layouts(&set_layouts)
                    .push_constant_ranges(&ranges),
                None,
            )
        }
        .call("vkCreatePipelineLayout(nv12)")?;
        let stage = vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::COMPUTE)
            .module(module)
            .name(c"main");
        let info = [vk::ComputePipelineCreateInfo::default().stage(stage).layout(layout)];
        let pipeline = unsafe { dev.create_compute_pipelines(vk::PipelineCache::null(), &info, None) };
        unsafe { dev.destroy_shader_module(module, None) };
        let pipeline = pipeline.map_err(|(_, result)| VkError::Call {
            call: "vkCreateComputePipelines(nv12)",
            result,
        })?[0];
        Ok(Nv12Pipeline {
            ctx: ctx.clone(),
            set_layout,
            layout,
            pipeline,
        })
    }

    /// Records the conversion of `src` (a `STORAGE_BUFFER`, planes laid out
    /// as `params` says) into `view`'s image, which must be in layout
    /// `GENERAL` (the caller's barriers), as `representation` says. Returns
    /// what must live until the submission's fence signals.
    pub fn record(
        &self,
        cmd: vk::CommandBuffer,
        (src, view): (vk::Buffer, vk::ImageView),
        params: &Nv12Params,
        representation: Representation,
    ) -> Result<Box<dyn Send + Sync>, VkError> {
        let dev = &self.ctx.device;
        let sizes = [
            vk::DescriptorPoolSize {
                ty: vk::DescriptorType::STORAGE_BUFFER,
                descriptor_count: 1,
            },
            vk::DescriptorPoolSize {
                ty: vk::DescriptorType::STORAGE_IMAGE,
                descriptor_count: 1,
            },
        ];
        let pool = unsafe {
            dev.create_descriptor_pool(
                &vk::DescriptorPoolCreateInfo::default().max_sets(1).pool_sizes(&sizes),
                None,
            )
        }
        .call("vkCreateDescriptorPool(nv12)")?;
        let keep = PoolKeep {
            ctx: self.ctx.clone(),
            pool,
        };
        let layouts = [self.set_layout];
        let set = unsafe {
            dev.allocate_descriptor_sets(
                &vk::DescriptorSetAllocateInfo::default()
                    .descriptor_pool(pool)
                    .set_layouts(&layouts),
            )
        }
        .call("vkAllocateDescriptorSets(nv12)")?[0];
        let buffer_info = [vk::DescriptorBufferInfo {
            buffer: src,
            offset: 0,
            range: vk::WHOLE_SIZE,
        }];
        let image_info = [vk::DescriptorImageInfo::default()
            .image_view(view)
            .image_layout(vk::ImageLayout::GENERAL)];
        let writes = [
            vk::WriteDescriptorSet::default()
                .dst_set(set)
                .dst_binding(0)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .buffer_info(&buffer_info),
            vk::WriteDescriptorSet::default()
                .dst_set(set)
                .dst_binding(1)
                .descriptor_type(vk::DescriptorType::STORAGE_IMAGE)
                .image_info(&image_info),
        ];
        unsafe {
            dev.update_descriptor_sets(&writes, &[]);
            dev.cmd_bind_pipeline(cmd, vk::PipelineBindPoint::COMPUTE, self.pipeline);
            dev.cmd_bind_descriptor_sets(cmd, vk::PipelineBindPoint::COMPUTE, self.layout, 0, &[set], &[]);
            let push = params.as_bytes(representation);
            dev.cmd_push_constants(cmd, self.layout, vk::ShaderStageFlags::COMPUTE, 0, &push);
            dev.cmd_dispatch(cmd, params.width.div_ceil(8), params.height.div_ceil(8), 1);
        }
        Ok(Box::new(keep))
    }
}

impl Drop for Nv12Pipeline {
    fn drop(&mut self) {
        let dev = &self.ctx.device;
        unsafe {
            dev.destroy_pipeline(self.pipeline, None);
            dev.destroy_pipeline_layout(self.layout, None);
            dev.destroy_descriptor_set_layout(self.set_layout, None);
        }
    }
}
