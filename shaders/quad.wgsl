// Textured and solid quads for the compositor's Vulkan renderer.
//
// Compiled to SPIR-V at build time by naga (importer/build.rs), after
// quad_vertex.wgsl (the push constants and vertex stages); there is no
// runtime shader compiler. One module, two pairs of entry points: vs_main
// with fs_texture, vs_solid with fs_solid (separate pipelines, so a
// software rasterizer runs no per-fragment branch).
//
// Colours are premultiplied; blending pipelines compute
// src * 1 + dst * (1 - src.a), opaque ones write src. X formats arrive with
// alpha already 1 through the image view's swizzle.

@group(0) @binding(0) var tex: texture_2d<f32>;
@group(1) @binding(0) var samp: sampler;

@fragment
fn fs_texture(in: VertexOut) -> @location(0) vec4<f32> {
    return textureSampleLevel(tex, samp, in.uv, 0.0) * quad.params.x;
}

@fragment
fn fs_solid() -> @location(0) vec4<f32> {
    return quad.color;
}
