// YUV textures sampled through a VkSamplerYcbcrConversion, which turns the
// client's planes into R'G'B' while sampling (importer/src/vulkan/ycbcr.rs).
//
// Vulkan wants such an image and its immutable sampler in ONE combined
// image-sampler binding, which WGSL cannot declare: importer/build.rs
// rewrites the SPIR-V so that `tex` becomes that binding (set 0, binding 0)
// and `samp` is never used. Compiled after quad_vertex.wgsl (vs_main).

@group(0) @binding(0) var tex: texture_2d<f32>;
@group(0) @binding(1) var samp: sampler;

@fragment
fn fs_ycbcr(in: VertexOut) -> @location(0) vec4<f32> {
    // The conversion yields alpha 1: YUV content is opaque.
    return textureSampleLevel(tex, samp, in.uv, 0.0) * quad.params.x;
}
