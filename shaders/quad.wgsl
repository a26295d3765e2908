// Textured and solid quads for the compositor's Vulkan renderer.
//
// Compiled to SPIR-V at build time by naga (importer/build.rs); there is no
// runtime shader compiler. One module, two pairs of entry points: vs_main
// with fs_texture, vs_solid with fs_solid (separate pipelines, so a
// software rasterizer runs no per-fragment branch).
//
// Colours are premultiplied; blending pipelines compute
// src * 1 + dst * (1 - src.a), opaque ones write src. X formats arrive with
// alpha already 1 through the image view's swizzle.

struct Quad {
    // Framebuffer-space NDC of the corners, in triangle-strip order
    // (top-left, top-right, bottom-left, bottom-right): xy of corners 0,1 then 2,3.
    pos: array<vec4<f32>, 2>,
    // Texture coordinates of the same corners, packed the same way.
    uv: array<vec4<f32>, 2>,
    // Premultiplied colour of a solid quad.
    color: vec4<f32>,
    // x: alpha multiplier of a textured quad; y, z, w unused.
    params: vec4<f32>,
}

var<push_constant> quad: Quad;

@group(0) @binding(0) var tex: texture_2d<f32>;
@group(1) @binding(0) var samp: sampler;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
}

fn corner(packed: array<vec4<f32>, 2>, i: u32) -> vec2<f32> {
    let pair = packed[i / 2u];
    if (i % 2u) == 0u {
        return pair.xy;
    }
    return pair.zw;
}

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    var out: VertexOut;
    out.position = vec4<f32>(corner(quad.pos, index), 0.0, 1.0);
    out.uv = corner(quad.uv, index);
    return out;
}

@fragment
fn fs_texture(in: VertexOut) -> @location(0) vec4<f32> {
    return textureSampleLevel(tex, samp, in.uv, 0.0) * quad.params.x;
}

// A solid quad's vertex stage passes no texture coordinates: the stages'
// interfaces match exactly.
@vertex
fn vs_solid(@builtin(vertex_index) index: u32) -> @builtin(position) vec4<f32> {
    return vec4<f32>(corner(quad.pos, index), 0.0, 1.0);
}

@fragment
fn fs_solid() -> @location(0) vec4<f32> {
    return quad.color;
}
