//! `--screenshot`: reads the composited output back and writes an RGBA8 PNG.

use std::{fs::File, io::BufWriter, path::Path};

use anyhow::Context;
use smithay::{
    backend::{
        allocator::Fourcc,
        renderer::{Bind, ExportMem},
    },
    utils::{Physical, Rectangle, Size, Transform},
};

use crate::render::{VkRenderer, VkTarget};

/// Tightly packed RGBA8 pixels, top row first.
pub struct RgbaImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// Copies the whole offscreen target into host memory.
pub fn read_target(
    renderer: &mut VkRenderer,
    target: &mut VkTarget,
    size: Size<i32, Physical>,
) -> anyhow::Result<RgbaImage> {
    let framebuffer = renderer
        .bind(target)
        .map_err(|e| anyhow::anyhow!("bind(offscreen target) for readback: {e}"))?;
    let region = Rectangle::from_size(size.to_logical(1).to_buffer(1, Transform::Normal));
    // Abgr8888 is R,G,B,A in byte order, i.e. what PNG RGBA8 wants.
    let mapping = renderer
        .copy_framebuffer(&framebuffer, region, Fourcc::Abgr8888)
        .map_err(|e| anyhow::anyhow!("copy_framebuffer({region:?}, Abgr8888): {e}"))?;
    let bytes = renderer
        .map_texture(&mapping)
        .map_err(|e| anyhow::anyhow!("map_texture(readback mapping): {e}"))?;

    let (width, height) = (size.w as u32, size.h as u32);
    let expected = width as usize * height as usize * 4;
    anyhow::ensure!(
        bytes.len() >= expected,
        "readback returned {} bytes, expected {expected} for {width}x{height}",
        bytes.len()
    );
    let mut pixels = bytes[..expected].to_vec();
    force_opaque(&mut pixels);
    Ok(RgbaImage { width, height, pixels })
}

/// The output target is XRGB: its fourth channel is undefined, and the
/// composited output is opaque by definition, so alpha is written as 255.
fn force_opaque(pixels: &mut [u8]) {
    for px in pixels.chunks_exact_mut(4) {
        px[3] = 0xff;
    }
}

/// Writes `image` as an 8-bit RGBA PNG.
pub fn write_png(image: &RgbaImage, path: &Path) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), image.width, image.height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("writing PNG header")?;
    writer.write_image_data(&image.pixels).context("writing PNG data")?;
    writer.finish().context("finishing PNG")?;
    Ok(())
}
