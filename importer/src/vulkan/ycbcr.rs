//! YUV client buffers sampled zero-copy through a `VkSamplerYcbcrConversion`.
//!
//! DOC: what a conversion is and who owns it
//!
//! A YUV dma-buf is imported as one multi-planar image (`FormatInfo::ycbcr`,
//! disjoint where its planes are bound separately) whose image view and
//! immutable sampler carry a Y'CbCr conversion: the sampler reads the planes
//! and returns non-linear R'G'B' with alpha 1, so the rest of the renderer
//! sees RGB. One [`YcbcrSampler`] exists per [`YcbcrKey`] (format, colour
//! model, range): the conversion, its immutable sampler, a descriptor set
//! layout with one COMBINED_IMAGE_SAMPLER binding (the only kind Vulkan
//! allows for it), a pipeline layout with the quads' push constants, and the
//! pipelines drawing with it, built per render pass and blend on first use.
//! [`YcbcrSamplers`] hands them out; textures keep theirs alive.
//!
//! DOC: the conversion's choices
//!
//! * Model and range: what the client's [`Representation`] says; BT.601
//!   limited range when it says nothing (as the CPU path converts).
//! * Chroma samples are cosited with the even luma samples, horizontally and
//!   vertically (where the format lists `COSITED_CHROMA_SAMPLES`, as every
//!   driver we know does; otherwise at the midpoint), and reconstructed with
//!   the LINEAR filter where the format lists
//!   `SAMPLED_IMAGE_YCBCR_CONVERSION_LINEAR_FILTER`: an even pixel takes its
//!   own chroma sample, an odd one the mean of the two it lies between (the
//!   last pixel of an even row keeps the last sample), per axis. NEAREST
//!   would have to pick between two equally near samples there, by the
//!   rounding of the interpolated coordinate, which varies with where the
//!   surface sits. The CPU path (`shaders/nv12.wgsl`) and the tests'
//!   reference model reconstruct chroma the same way, so every path gives
//!   the same pixels. Luma takes the same filter unless the format allows a
//!   separate one (then LINEAR); an unscaled quad samples texel centres,
//!   where both filters agree.
//!
//! DOC: locks
//!
//! Creating a sampler or a pipeline takes this module's own leaf mutexes; it
//! is done on import (under the buffer's reservation) or while recording a
//! frame, never blocks on a fence, and takes no other lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ash::vk;

use super::pipeline::{graphics_pipeline, quad_push_range, shader_module, Blend};
use super::{VkContext, VkError, VkResultExt};

const YCBCR_SPV: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ycbcr.spv"));

/// How a buffer's Y'CbCr values become R'G'B': what a client states with
/// the colour-representation protocol, in Vulkan's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Representation {
    pub model: vk::SamplerYcbcrModelConversion,
    pub range: vk::SamplerYcbcrRange,
    /// Where chroma samples sit (horizontally, vertically); `None`: cosited
    /// (the module doc). A siting the format does not list is replaced by
    /// the one it does.
    pub chroma: Option<(vk::ChromaLocation, vk::ChromaLocation)>,
}

impl Default for Representation {
    /// BT.601, limited range, cosited: what a client that says nothing gets.
    fn default() -> Self {
        Representation {
            model: vk::SamplerYcbcrModelConversion::YCBCR_601,
            range: vk::SamplerYcbcrRange::ITU_NARROW,
            chroma: None,
        }
    }
}

/// What distinguishes one conversion from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct YcbcrKey {
    /// The multi-planar format (`FormatInfo::ycbcr`).
    pub format: vk::Format,
    pub representation: Representation,
}

/// The chroma location used for `wanted` given the format's `features`.
fn siting(wanted: Option<vk::ChromaLocation>, features: vk::FormatFeatureFlags) -> vk::ChromaLocation {
    let cosited = features.contains(vk::FormatFeatureFlags::COSITED_CHROMA_SAMPLES);
    let midpoint = features.contains(vk::FormatFeatureFlags::MIDPOINT_CHROMA_SAMPLES);
    match wanted {
        Some(vk::ChromaLocation::MIDPOINT) if midpoint => vk::ChromaLocation::MIDPOINT,
        _ if cosited => vk::ChromaLocation::COSITED_EVEN,
        _ => vk::ChromaLocation::MIDPOINT,
    }
}

/// The shader module with `vs_main` and `fs_ycbcr`, shared by every sampler.
struct Module {
    ctx: Arc<VkContext>,
    module: vk::ShaderModule,
}

impl Drop for Module {
    fn drop(&mut self) {
        unsafe { self.ctx.device.destroy_shader_module(self.module, None) };
    }
}

/// One conversion and everything that draws with it (module doc).
pub struct YcbcrSampler {
    ctx: Arc<VkContext>,
    pub key: YcbcrKey,
    pub conversion: vk::SamplerYcbcrConversion,
    sampler: vk::Sampler,
    /// Set 0 of [`YcbcrSampler::layout`]: the image with its immutable sampler.
    pub set_layout: vk::DescriptorSetLayout,
    pub layout: vk::PipelineLayout,
    /// Descriptors one combined image sampler of this format takes
    /// (`combinedImageSamplerDescriptorCount`).
    pub descriptors: u32,
    module: Arc<Module>,
    pipelines: Mutex<HashMap<(vk::RenderPass, Blend), vk::Pipeline>>,
}

impl std::fmt::Debug for YcbcrSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YcbcrSampler")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl YcbcrSampler {
    fn new(ctx: &Arc<VkContext>, module: &Arc<Module>, key: YcbcrKey) -> Result<YcbcrSampler, VkError> {
        let dev = &ctx.device;
        // Owns each object as soon as it exists, so an error frees what was made.
        let mut made = YcbcrSampler {
            ctx: ctx.clone(),
            key,
            conversion: vk::SamplerYcbcrConversion::null(),
            sampler: vk::Sampler::null(),
            set_layout: vk::DescriptorSetLayout::null(),
            layout: vk::PipelineLayout::null(),
            descriptors: descriptor_count(ctx, key.format),
            module: module.clone(),
            pipelines: Mutex::new(HashMap::new()),
        };
        let features = ctx.format_features(key.format, None).unwrap_or_default();
        let linear = vk::FormatFeatureFlags::SAMPLED_IMAGE_YCBCR_CONVERSION_LINEAR_FILTER;
        let chroma = if features.contains(linear) {
            vk::Filter::LINEAR
        } else {
            vk::Filter::NEAREST
        };
        let separate = features.contains(
            vk::FormatFeatureFlags::SAMPLED_IMAGE_YCBCR_CONVERSION_SEPARATE_RECONSTRUCTION_FILTER
                | vk::FormatFeatureFlags::SAMPLED_IMAGE_FILTER_LINEAR,
        );
        // Without a separate reconstruction filter, min and mag must be chroma's.
        let luma = if separate { vk::Filter::LINEAR } else { chroma };
        let r = key.representation;
        let info = vk::SamplerYcbcrConversionCreateInfo::default()
            .format(key.format)
            .ycbcr_model(r.model)
            .ycbcr_range(r.range)
            .x_chroma_offset(siting(r.chroma.map(|c| c.0), features))
            .y_chroma_offset(siting(r.chroma.map(|c| c.1), features))
            .chroma_filter(chroma);
        made.conversion =
            unsafe { dev.create_sampler_ycbcr_conversion(&info, None) }.call("vkCreateSamplerYcbcrConversion")?;
        let mut with = vk::SamplerYcbcrConversionInfo::default().conversion(made.conversion);
        let info = vk::SamplerCreateInfo::default()
            .mag_filter(luma)
            .min_filter(luma)
            .mipmap_mode(vk::SamplerMipmapMode::NEAREST)
            .address_mode_u(vk::SamplerAddressMode::CLAMP_TO_EDGE)
            .address_mode_v(vk::SamplerAddressMode::CLAMP_TO_EDGE)
            .address_mode_w(vk::SamplerAddressMode::CLAMP_TO_EDGE)
            .max_lod(vk::LOD_CLAMP_NONE)
            .push_next(&mut with);
        made.sampler = unsafe { dev.create_sampler(&info, None) }.call("vkCreateSampler(ycbcr)")?;
        let immutable = [made.sampler];
        let bindings = [vk::DescriptorSetLayoutBinding::default()
            .binding(0)
            .descriptor_type(vk::DescriptorType::COMBINED_IMAGE_SAMPLER)
            .descriptor_count(1)
            .stage_flags(vk::ShaderStageFlags::FRAGMENT)
            .immutable_samplers(&immutable)];
        let info = vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings);
        made.set_layout =
            unsafe { dev.create_descriptor_set_layout(&info, None) }.call("vkCreateDescriptorSetLayout(ycbcr)")?;
        let set_layouts = [made.set_layout];
        let ranges = [quad_push_range()];
        let info = vk::PipelineLayoutCreateInfo::default()
            .set_layouts(&set_layouts)
            .push_constant_ranges(&ranges);
        made.layout = unsafe { dev.create_pipeline_layout(&info, None) }.call("vkCreatePipelineLayout(ycbcr)")?;
        Ok(made)
    }

    /// The pipeline drawing with this conversion into `render_pass`'s target
    /// with `blend`, built on first use.
    pub fn pipeline(&self, render_pass: vk::RenderPass, blend: Blend) -> Result<vk::Pipeline, VkError> {
        let mut map = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = map.get(&(render_pass, blend)) {
            return Ok(*p);
        }
        let entries = (c"vs_main", c"fs_ycbcr");
        let p = graphics_pipeline(
            &self.ctx,
            self.layout,
            (self.module.module, entries),
            render_pass,
            blend,
        )?;
        map.insert((render_pass, blend), p);
        Ok(p)
    }
}

/// `combinedImageSamplerDescriptorCount` of `format` (at least 1).
fn descriptor_count(ctx: &VkContext, format: vk::Format) -> u32 {
    let info = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(format)
        .ty(vk::ImageType::TYPE_2D)
        .tiling(vk::ImageTiling::LINEAR)
        .usage(vk::ImageUsageFlags::SAMPLED);
    let mut ycbcr = vk::SamplerYcbcrConversionImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2::default().push_next(&mut ycbcr);
    // SAFETY: valid query structures for this instance's physical device.
    let ok = unsafe {
        ctx.instance
            .get_physical_device_image_format_properties2(ctx.physical, &info, &mut props)
    };
    if ok.is_ok() {
        ycbcr.combined_image_sampler_descriptor_count.max(1)
    } else {
        // The most a multi-planar format can take: one per plane.
        3
    }
}

impl Drop for YcbcrSampler {
    fn drop(&mut self) {
        let dev = &self.ctx.device;
        unsafe {
            for p in self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).values() {
                dev.destroy_pipeline(*p, None);
            }
            dev.destroy_pipeline_layout(self.layout, None);
            dev.destroy_descriptor_set_layout(self.set_layout, None);
            dev.destroy_sampler(self.sampler, None);
            dev.destroy_sampler_ycbcr_conversion(self.conversion, None);
        }
    }
}

/// The samplers by key, made on first use. Shared by the importer and the
/// textures, which add conversions for other representations as clients ask.
pub struct YcbcrSamplers {
    ctx: Arc<VkContext>,
    module: Arc<Module>,
    by_key: Mutex<HashMap<YcbcrKey, Arc<YcbcrSampler>>>,
}

impl std::fmt::Debug for YcbcrSamplers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YcbcrSamplers").finish_non_exhaustive()
    }
}

impl YcbcrSamplers {
    pub fn new(ctx: &Arc<VkContext>) -> Result<YcbcrSamplers, VkError> {
        let module = Module {
            ctx: ctx.clone(),
            module: shader_module(ctx, YCBCR_SPV, "vkCreateShaderModule(ycbcr)")?,
        };
        Ok(YcbcrSamplers {
            ctx: ctx.clone(),
            module: Arc::new(module),
            by_key: Mutex::new(HashMap::new()),
        })
    }

    /// The sampler of `key`. Locks: this cache's leaf mutex.
    pub fn get(&self, key: YcbcrKey) -> Result<Arc<YcbcrSampler>, VkError> {
        let mut map = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.get(&key) {
            return Ok(s.clone());
        }
        let sampler = Arc::new(YcbcrSampler::new(&self.ctx, &self.module, key)?);
        map.insert(key, sampler.clone());
        Ok(sampler)
    }
}
