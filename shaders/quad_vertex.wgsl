// The quad shaders' shared part: the push constants and the vertex stages.
// importer/build.rs prepends it to quad.wgsl and ycbcr.wgsl (WGSL has no
// includes), so every pipeline's vertex stage is this one.

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

// A solid quad's vertex stage passes no texture coordinates: the stages'
// interfaces match exactly.
@vertex
fn vs_solid(@builtin(vertex_index) index: u32) -> @builtin(position) vec4<f32> {
    return vec4<f32>(corner(quad.pos, index), 0.0, 1.0);
}
