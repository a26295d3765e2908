//! The quad pipelines: shader module, layouts, samplers, and per target
//! format one render pass and four pipelines (textured or solid, blending or
//! opaque).
//!
//! DOC: blending
//!
//! Opaque pixels are written without blending: a software rasterizer then
//! skips reading the target, and a GPU saves bandwidth. The caller decides
//! ([`Blend`]); a draw may be split into opaque and blended scissors.
//!
//! DOC: descriptor sets
//!
//! Set 0 binds a texture's image (one set per [`super::texture::Texture`],
//! written once at creation). Set 1 binds a sampler; two prebuilt sets exist,
//! linear and nearest, so changing the filter never rewrites a texture's set.

use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::{Arc, Mutex};

use ash::vk;

use super::barrier::target_layout;
use super::{VkContext, VkError, VkResultExt};

const QUAD_SPV: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/quad.spv"));

/// Push constants of `shaders/quad.wgsl` (`struct Quad`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QuadPush {
    pub pos: [[f32; 4]; 2],
    pub uv: [[f32; 4]; 2],
    pub color: [f32; 4],
    pub params: [f32; 4],
}

/// Framebuffer pixels → normalized device coordinates.
fn ndc(p: [f32; 2], fb: [f32; 2]) -> [f32; 2] {
    [p[0] / fb[0] * 2.0 - 1.0, p[1] / fb[1] * 2.0 - 1.0]
}

fn pack(c: [[f32; 2]; 4]) -> [[f32; 4]; 2] {
    [
        [c[0][0], c[0][1], c[1][0], c[1][1]],
        [c[2][0], c[2][1], c[3][0], c[3][1]],
    ]
}

impl QuadPush {
    /// A textured quad. `corners` are framebuffer pixels and `uv` texture
    /// coordinates (0..1), both in strip order: top-left, top-right,
    /// bottom-left, bottom-right. `alpha` multiplies the premultiplied colour.
    pub fn textured(corners: [[f32; 2]; 4], fb_size: [f32; 2], uv: [[f32; 2]; 4], alpha: f32) -> QuadPush {
        QuadPush {
            pos: pack(corners.map(|c| ndc(c, fb_size))),
            uv: pack(uv),
            color: [0.0; 4],
            params: [alpha, 0.0, 0.0, 0.0],
        }
    }

    /// A solid quad of premultiplied `color`.
    pub fn solid(corners: [[f32; 2]; 4], fb_size: [f32; 2], color: [f32; 4]) -> QuadPush {
        QuadPush {
            pos: pack(corners.map(|c| ndc(c, fb_size))),
            uv: [[0.0; 4]; 2],
            color,
            params: [1.0, 0.0, 0.0, 0.0],
        }
    }

    /// Corners of an axis-aligned rectangle, strip order.
    pub fn rect_corners(x: f32, y: f32, w: f32, h: f32) -> [[f32; 2]; 4] {
        [[x, y], [x + w, y], [x, y + h], [x + w, y + h]]
    }

    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: repr(C) plain floats, no padding.
        unsafe { std::slice::from_raw_parts((self as *const Self).cast::<u8>(), std::mem::size_of::<Self>()) }
    }
}

/// Sampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filter {
    #[default]
    Linear,
    Nearest,
}

/// What a quad's fragments are: a texture's texels or one colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    Texture,
    Solid,
}

/// How a quad's fragments meet the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Blend {
    /// Premultiplied "over": src + dst * (1 - src.a).
    Over,
    /// The fragment replaces the target pixel (opaque content).
    Replace,
}

/// A render pass and the pipelines built against it, for one target format.
#[derive(Debug, Clone, Copy)]
pub struct FormatPipeline {
    pub render_pass: vk::RenderPass,
    /// Indexed by [`FormatPipeline::index`].
    pipelines: [vk::Pipeline; 4],
}

impl FormatPipeline {
    fn index(fill: Fill, blend: Blend) -> usize {
        (fill as usize) * 2 + blend as usize
    }

    /// The pipeline drawing `fill` with `blend`.
    pub fn get(&self, fill: Fill, blend: Blend) -> vk::Pipeline {
        self.pipelines[Self::index(fill, blend)]
    }
}

pub struct Pipelines {
    ctx: Arc<VkContext>,
    module: vk::ShaderModule,
    pub texture_layout: vk::DescriptorSetLayout,
    sampler_layout: vk::DescriptorSetLayout,
    pub layout: vk::PipelineLayout,
    samplers: [vk::Sampler; 2],
    sampler_pool: vk::DescriptorPool,
    sampler_sets: [vk::DescriptorSet; 2],
    by_format: Mutex<HashMap<vk::Format, FormatPipeline>>,
}

fn set_layout(ctx: &VkContext, ty: vk::DescriptorType) -> Result<vk::DescriptorSetLayout, VkError> {
    let bindings = [vk::DescriptorSetLayoutBinding::default()
        .binding(0)
        .descriptor_type(ty)
        .descriptor_count(1)
        .stage_flags(vk::ShaderStageFlags::FRAGMENT)];
    let info = vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings);
    unsafe { ctx.device.create_descriptor_set_layout(&info, None) }.call("vkCreateDescriptorSetLayout")
}

fn sampler(ctx: &VkContext, filter: vk::Filter) -> Result<vk::Sampler, VkError> {
    let info = vk::SamplerCreateInfo::default()
        .mag_filter(filter)
        .min_filter(filter)
        .mipmap_mode(vk::SamplerMipmapMode::NEAREST)
        .address_mode_u(vk::SamplerAddressMode::CLAMP_TO_EDGE)
        .address_mode_v(vk::SamplerAddressMode::CLAMP_TO_EDGE)
        .address_mode_w(vk::SamplerAddressMode::CLAMP_TO_EDGE)
        // Textures have one level; no clamp needed (and clamping costs on
        // some GPUs).
        .max_lod(vk::LOD_CLAMP_NONE);
    unsafe { ctx.device.create_sampler(&info, None) }.call("vkCreateSampler")
}

impl Pipelines {
    pub fn new(ctx: &Arc<VkContext>) -> Result<Pipelines, VkError> {
        let dev = &ctx.device;
        let module = shader_module(ctx, QUAD_SPV, "vkCreateShaderModule(quad)")?;
        let texture_layout = set_layout(ctx, vk::DescriptorType::SAMPLED_IMAGE)?;
        let sampler_layout = set_layout(ctx, vk::DescriptorType::SAMPLER)?;
        let ranges = [quad_push_range()];
        let set_layouts = [texture_layout, sampler_layout];
        let info = vk::PipelineLayoutCreateInfo::default()
            .set_layouts(&set_layouts)
            .push_constant_ranges(&ranges);
        let layout = unsafe { dev.create_pipeline_layout(&info, None) }.call("vkCreatePipelineLayout")?;
        let samplers = [sampler(ctx, vk::Filter::LINEAR)?, sampler(ctx, vk::Filter::NEAREST)?];
        let sizes = [vk::DescriptorPoolSize {
            ty: vk::DescriptorType::SAMPLER,
            descriptor_count: 2,
        }];
        let pool_info = vk::DescriptorPoolCreateInfo::default().max_sets(2).pool_sizes(&sizes);
        let sampler_pool = unsafe { dev.create_descriptor_pool(&pool_info, None) }.call("vkCreateDescriptorPool")?;
        let layouts = [sampler_layout, sampler_layout];
        let alloc = vk::DescriptorSetAllocateInfo::default()
            .descriptor_pool(sampler_pool)
            .set_layouts(&layouts);
        let sets = unsafe { dev.allocate_descriptor_sets(&alloc) }.call("vkAllocateDescriptorSets")?;
        for (set, s) in sets.iter().zip(samplers) {
            let info = [vk::DescriptorImageInfo::default().sampler(s)];
            let write = vk::WriteDescriptorSet::default()
                .dst_set(*set)
                .dst_binding(0)
                .descriptor_type(vk::DescriptorType::SAMPLER)
                .image_info(&info);
            unsafe { dev.update_descriptor_sets(&[write], &[]) };
        }
        Ok(Pipelines {
            ctx: ctx.clone(),
            module,
            texture_layout,
            sampler_layout,
            layout,
            samplers,
            sampler_pool,
            sampler_sets: [sets[0], sets[1]],
            by_format: Mutex::new(HashMap::new()),
        })
    }

    /// The sampler descriptor set for `filter`.
    pub fn sampler_set(&self, filter: Filter) -> vk::DescriptorSet {
        match filter {
            Filter::Linear => self.sampler_sets[0],
            Filter::Nearest => self.sampler_sets[1],
        }
    }

    /// Render pass + pipeline for targets of `format`, built on first use.
    pub fn for_format(&self, format: vk::Format) -> Result<FormatPipeline, VkError> {
        let mut map = self.by_format.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = map.get(&format) {
            return Ok(*p);
        }
        let render_pass = self.render_pass(format)?;
        let mut pipelines = [vk::Pipeline::null(); 4];
        for fill in [Fill::Texture, Fill::Solid] {
            for blend in [Blend::Over, Blend::Replace] {
                match self.pipeline(render_pass, fill, blend) {
                    Ok(p) => pipelines[FormatPipeline::index(fill, blend)] = p,
                    Err(e) => {
                        for p in pipelines.iter().filter(|p| **p != vk::Pipeline::null()) {
                            unsafe { self.ctx.device.destroy_pipeline(*p, None) };
                        }
                        unsafe { self.ctx.device.destroy_render_pass(render_pass, None) };
                        return Err(e);
                    }
                }
            }
        }
        let fp = FormatPipeline { render_pass, pipelines };
        map.insert(format, fp);
        Ok(fp)
    }

    fn render_pass(&self, format: vk::Format) -> Result<vk::RenderPass, VkError> {
        let layout = target_layout(&self.ctx);
        // LOAD: damage-limited redraw keeps what is outside the damage.
        let attachment = [vk::AttachmentDescription::default()
            .format(format)
            .samples(vk::SampleCountFlags::TYPE_1)
            .load_op(vk::AttachmentLoadOp::LOAD)
            .store_op(vk::AttachmentStoreOp::STORE)
            .initial_layout(layout)
            .final_layout(layout)];
        let color_ref = [vk::AttachmentReference { attachment: 0, layout }];
        let subpass = [vk::SubpassDescription::default()
            .pipeline_bind_point(vk::PipelineBindPoint::GRAPHICS)
            .color_attachments(&color_ref)];
        // The frame loads what earlier frames wrote and read-backs copied, and
        // later read-backs and copies see what it writes.
        let earlier = vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT | vk::PipelineStageFlags::TRANSFER;
        let attachment_rw = vk::AccessFlags::COLOR_ATTACHMENT_READ | vk::AccessFlags::COLOR_ATTACHMENT_WRITE;
        let transfer_rw = vk::AccessFlags::TRANSFER_READ | vk::AccessFlags::TRANSFER_WRITE;
        let dependencies = [
            vk::SubpassDependency::default()
                .src_subpass(vk::SUBPASS_EXTERNAL)
                .dst_subpass(0)
                .src_stage_mask(earlier)
                .src_access_mask(vk::AccessFlags::COLOR_ATTACHMENT_WRITE | transfer_rw)
                .dst_stage_mask(vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT)
                .dst_access_mask(attachment_rw),
            vk::SubpassDependency::default()
                .src_subpass(0)
                .dst_subpass(vk::SUBPASS_EXTERNAL)
                .src_stage_mask(vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT)
                .src_access_mask(vk::AccessFlags::COLOR_ATTACHMENT_WRITE)
                .dst_stage_mask(earlier)
                .dst_access_mask(attachment_rw | transfer_rw),
        ];
        let info = vk::RenderPassCreateInfo::default()
            .attachments(&attachment)
            .subpasses(&subpass)
            .dependencies(&dependencies);
        unsafe { self.ctx.device.create_render_pass(&info, None) }.call("vkCreateRenderPass")
    }

    fn pipeline(&self, render_pass: vk::RenderPass, fill: Fill, blend: Blend) -> Result<vk::Pipeline, VkError> {
        let entries = match fill {
            Fill::Texture => (c"vs_main", c"fs_texture"),
            Fill::Solid => (c"vs_solid", c"fs_solid"),
        };
        graphics_pipeline(&self.ctx, self.layout, (self.module, entries), render_pass, blend)
    }
}

/// A shader module from SPIR-V bytes (as the build script wrote them).
pub(crate) fn shader_module(ctx: &VkContext, spv: &[u8], what: &'static str) -> Result<vk::ShaderModule, VkError> {
    let words: Vec<u32> = spv
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    unsafe {
        ctx.device
            .create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&words), None)
    }
    .call(what)
}

/// The push-constant range of every quad pipeline layout ([`QuadPush`]):
/// the same in all of them, so push constants survive a layout change.
pub(crate) fn quad_push_range() -> vk::PushConstantRange {
    vk::PushConstantRange {
        stage_flags: vk::ShaderStageFlags::VERTEX | vk::ShaderStageFlags::FRAGMENT,
        offset: 0,
        size: std::mem::size_of::<QuadPush>() as u32,
    }
}

/// A quad pipeline: `module`'s (vertex, fragment) entry points, a triangle
/// strip of four corners from the push constants, dynamic viewport and
/// scissor, premultiplied "over" blending or none (the module doc).
pub(crate) fn graphics_pipeline(
    ctx: &VkContext,
    layout: vk::PipelineLayout,
    (module, (vertex, fragment)): (vk::ShaderModule, (&CStr, &CStr)),
    render_pass: vk::RenderPass,
    blend: Blend,
) -> Result<vk::Pipeline, VkError> {
    let stages = [
        vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::VERTEX)
            .module(module)
            .name(vertex),
        vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::FRAGMENT)
            .module(module)
            .name(fragment),
    ];
    let vertex_input = vk::PipelineVertexInputStateCreateInfo::default();
    let assembly = vk::PipelineInputAssemblyStateCreateInfo::default().topology(vk::PrimitiveTopology::TRIANGLE_STRIP);
    let viewport = vk::PipelineViewportStateCreateInfo::default()
        .viewport_count(1)
        .scissor_count(1);
    let raster = vk::PipelineRasterizationStateCreateInfo::default()
        .polygon_mode(vk::PolygonMode::FILL)
        .cull_mode(vk::CullModeFlags::NONE)
        .line_width(1.0);
    let multisample =
        vk::PipelineMultisampleStateCreateInfo::default().rasterization_samples(vk::SampleCountFlags::TYPE_1);
    let blend = [vk::PipelineColorBlendAttachmentState::default()
        .blend_enable(blend == Blend::Over)
        .src_color_blend_factor(vk::BlendFactor::ONE)
        .dst_color_blend_factor(vk::BlendFactor::ONE_MINUS_SRC_ALPHA)
        .color_blend_op(vk::BlendOp::ADD)
        .src_alpha_blend_factor(vk::BlendFactor::ONE)
        .dst_alpha_blend_factor(vk::BlendFactor::ONE_MINUS_SRC_ALPHA)
        .alpha_blend_op(vk::BlendOp::ADD)
        .color_write_mask(vk::ColorComponentFlags::RGBA)];
    let blend_state = vk::PipelineColorBlendStateCreateInfo::default().attachments(&blend);
    let dynamic = [vk::DynamicState::VIEWPORT, vk::DynamicState::SCISSOR];
    let dynamic_state = vk::PipelineDynamicStateCreateInfo::default().dynamic_states(&dynamic);
    let info = vk::GraphicsPipelineCreateInfo::default()
        .stages(&stages)
        .vertex_input_state(&vertex_input)
        .input_assembly_state(&assembly)
        .viewport_state(&viewport)
        .rasterization_state(&raster)
        .multisample_state(&multisample)
        .color_blend_state(&blend_state)
        .dynamic_state(&dynamic_state)
        .layout(layout)
        .render_pass(render_pass)
        .subpass(0);
    let pipelines = unsafe {
        ctx.device
            .create_graphics_pipelines(vk::PipelineCache::null(), &[info], None)
    }
    .map_err(|(_, result)| VkError::Call {
        call: "vkCreateGraphicsPipelines",
        result,
    })?;
    Ok(pipelines[0])
}

impl Drop for Pipelines {
    fn drop(&mut self) {
        let dev = &self.ctx.device;
        unsafe {
            for fp in self.by_format.lock().unwrap_or_else(|p| p.into_inner()).values() {
                for p in fp.pipelines {
                    dev.destroy_pipeline(p, None);
                }
                dev.destroy_render_pass(fp.render_pass, None);
            }
            dev.destroy_descriptor_pool(self.sampler_pool, None);
            for s in self.samplers {
                dev.destroy_sampler(s, None);
            }
            dev.destroy_pipeline_layout(self.layout, None);
            dev.destroy_descriptor_set_layout(self.texture_layout, None);
            dev.destroy_descriptor_set_layout(self.sampler_layout, None);
            dev.destroy_shader_module(self.module, None);
        }
    }
}
