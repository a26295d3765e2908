// NV12 -> RGBA conversion, a compute shader.
//
// Input: one storage buffer holding both planes, addressed in bytes (so a
// plane may start at any offset and rows at any stride, as in a client's
// dma-buf): the Y plane (one byte per pixel) and the interleaved CbCr plane
// (one Cb,Cr byte pair per 2x2 pixels). The CPU fallback fills a staging
// buffer with the two planes; the GPU buffer path can bind the client's
// imported VkBuffer directly with the client's offsets and strides.
//
// Colour: the push constants carry the surface's representation (BT.601
// limited range unless it says otherwise; importer/src/vulkan/yuv.rs):
//   Y' = (Y - y_bias) * y_scale, Cb' = (Cb - c_bias) * c_scale, likewise Cr'
//   R = Y' + r_cr Cr',  G = Y' - g_cb Cb' - g_cr Cr',  B = Y' + b_cb Cb'
// Output is non-linear R'G'B' (no transfer function applied, like the RGB
// formats the compositor samples), alpha 1, clamped to [0, 1].
// Chroma samples are cosited with the even pixels and reconstructed
// linearly, as the Y'CbCr sampler path does (importer/src/vulkan/ycbcr.rs):
// an even pixel takes its own sample, an odd one the mean of the two it lies
// between (the last sample repeats past the edge), per axis.

struct Params {
    width: u32,
    height: u32,
    y_offset: u32,
    y_stride: u32,
    uv_offset: u32,
    uv_stride: u32,
    y_bias: f32,
    y_scale: f32,
    c_bias: f32,
    c_scale: f32,
    r_cr: f32,
    g_cb: f32,
    g_cr: f32,
    b_cb: f32,
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var dst: texture_storage_2d<rgba8unorm, write>;
var<push_constant> p: Params;

fn byte_at(offset: u32) -> f32 {
    let word = src[offset >> 2u];
    return f32((word >> ((offset & 3u) * 8u)) & 0xffu);
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x >= p.width || id.y >= p.height) {
        return;
    }
    let y = (byte_at(p.y_offset + id.y * p.y_stride + id.x) - p.y_bias) * p.y_scale;
    let last = vec2<u32>((p.width - 1u) / 2u, (p.height - 1u) / 2u);
    let c0 = vec2<u32>(id.x / 2u, id.y / 2u);
    let c1 = min(vec2<u32>((id.x + 1u) / 2u, (id.y + 1u) / 2u), last);
    var cb = 0.0;
    var cr = 0.0;
    for (var i = 0u; i < 4u; i++) {
        let c = select(c0, c1, vec2<bool>((i & 1u) != 0u, (i & 2u) != 0u));
        let at = p.uv_offset + c.y * p.uv_stride + c.x * 2u;
        cb += byte_at(at);
        cr += byte_at(at + 1u);
    }
    cb = (cb / 4.0 - p.c_bias) * p.c_scale;
    cr = (cr / 4.0 - p.c_bias) * p.c_scale;
    let rgb = vec3<f32>(y + p.r_cr * cr, y - p.g_cb * cb - p.g_cr * cr, y + p.b_cb * cb);
    textureStore(dst, vec2<i32>(i32(id.x), i32(id.y)), vec4<f32>(clamp(rgb, vec3<f32>(0.0), vec3<f32>(1.0)), 1.0));
}
