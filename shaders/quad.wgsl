// Textured and solid quads for the compositor's Vulkan renderer.
//
// Compiled to SPIR-V at build time by naga (importer/build.rs); there is no
// runtime shader compiler. One module, two entry points: vs_main, fs_main.
//
// Colours are premultiplied; the pipeline blends with
// src * 1 + dst * (1 - src.a). X formats arrive with alpha already 1 through
// the image view's swizzle.

struct Quad {
    // Framebuffer-space NDC of the corners, in triangle-strip order
    // (top-left, top-right, bottom-left, bottom-right): xy of corners 0,1 then 2,3.
    pos: array<vec4<f32>, 2>,
    // Texture coordinates of the same corners, packed the same way.
    uv: array<vec4<f32>, 2>,
    // Premultiplied colour of a solid quad.
    color: vec4<f32>,
    // x: alpha multiplier, y: 1.0 for a solid quad, 0.0 for a textured one.
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
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    if quad.params.y > 0.5 {
        return quad.color;
    }
    let c = textureSampleLevel(tex, samp, in.uv, 0.0);
    return c * quad.params.x;
}
