//! `gpu-report`: what the renderer makes of this machine's GPU, as a table.
//!
//! 1. The Vulkan device chosen, its import capabilities and why it was chosen.
//! 2. The negotiated dma-buf formats: every advertised modifier of the RGB
//!    formats with its memory planes, zero-copy and scan-out flags.
//! 3. For each advertised tiled modifier of XRGB8888 (and LINEAR): a buffer
//!    allocated with GBM on the device's render node with that modifier,
//!    rendered into by the renderer (as a scan-out target, where the modifier
//!    allows), imported as a client buffer, drawn into a LINEAR offscreen
//!    target and read back: the import path it took and whether the pixels
//!    came back.
//!
//! Runs from a prebuilt binary (`scripts/gpu/build-kit.sh`, then
//! `scripts/gpu/run.sh` on the GPU machine). Exits non-zero when a probe that
//! should work did not.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use compositor::cli::Cli;
use compositor::render::{VkRenderer, VkTarget};
use smithay::backend::allocator::dmabuf::{AsDmabuf, Dmabuf};
use smithay::backend::allocator::gbm::{GbmAllocator, GbmBufferFlags, GbmDevice};
use smithay::backend::allocator::{Allocator, Fourcc, Modifier};
use smithay::backend::drm::DrmDeviceFd;
use smithay::backend::renderer::{Bind, Color32F, ExportMem, Frame, ImportDma, Offscreen, Renderer};
use smithay::utils::{Buffer as BufferCoord, DeviceFd, Physical, Rectangle, Size, Transform};

const SIZE: i32 = 128;
const COLOR: [f32; 4] = [0.25, 0.5, 0.75, 1.0];

fn render_node(renderer: &VkRenderer) -> Option<PathBuf> {
    let dev = renderer.main_device()?;
    Some(PathBuf::from(format!("/dev/dri/renderD{}", libc::minor(dev))))
}

fn open_gbm(path: &PathBuf) -> Result<GbmAllocator<DrmDeviceFd>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let fd = DrmDeviceFd::new(DeviceFd::from(OwnedFd::from(file)));
    let device = GbmDevice::new(fd).context("gbm_create_device")?;
    Ok(GbmAllocator::new(device, GbmBufferFlags::RENDERING))
}

/// Clears `target` to [`COLOR`].
fn fill(renderer: &mut VkRenderer, target: &mut VkTarget) -> Result<()> {
    let size = Size::<i32, Physical>::from((SIZE, SIZE));
    let mut fb = renderer.bind(target)?;
    let mut frame = renderer.render(&mut fb, size, Transform::Normal)?;
    frame.clear(Color32F::from(COLOR), &[Rectangle::from_size(size)])?;
    let sync = frame.finish()?;
    renderer.wait(&sync)?;
    Ok(())
}

/// Draws `dmabuf` (imported as a client buffer) into a LINEAR offscreen
/// target and reads its centre back as RGBA8.
fn sample_back(renderer: &mut VkRenderer, dmabuf: &Dmabuf) -> Result<[u8; 4]> {
    let texture = renderer.import_dmabuf(dmabuf, None)?;
    let size = Size::<i32, Physical>::from((SIZE, SIZE));
    let mut out: VkTarget = renderer.create_buffer(Fourcc::Abgr8888, (SIZE, SIZE).into())?;
    {
        let mut fb = renderer.bind(&mut out)?;
        let mut frame = renderer.render(&mut fb, size, Transform::Normal)?;
        let rect = Rectangle::from_size(size);
        let src = Rectangle::<f64, BufferCoord>::from_size((f64::from(SIZE), f64::from(SIZE)).into());
        frame.render_texture_from_to(&texture, src, rect, &[rect], &[], Transform::Normal, 1.0)?;
        let sync = frame.finish()?;
        renderer.wait(&sync)?;
    }
    let fb = renderer.bind(&mut out)?;
    let centre = Rectangle::new((SIZE / 2, SIZE / 2).into(), (1, 1).into());
    let mapping = renderer.copy_framebuffer(&fb, centre, Fourcc::Abgr8888)?;
    drop(fb);
    let bytes = renderer.map_texture(&mapping)?;
    Ok([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn close(px: [u8; 4]) -> bool {
    let want = COLOR.map(|c| (c * 255.0).round() as u8);
    px.iter().zip(want).all(|(a, b)| a.abs_diff(b) <= 2)
}

/// One row of the modifier probe.
fn probe(renderer: &mut VkRenderer, gbm: &mut GbmAllocator<DrmDeviceFd>, modifier: u64) -> Result<String> {
    let bo = gbm
        .create_buffer(SIZE as u32, SIZE as u32, Fourcc::Xrgb8888, &[Modifier::from(modifier)])
        .context("gbm_bo_create")?;
    let dmabuf = bo.export().context("exporting the bo")?;
    let planes = dmabuf.num_planes();
    let rendered = match renderer.import_scanout(&dmabuf) {
        Ok(mut target) => {
            fill(renderer, &mut target)?;
            "yes"
        }
        Err(_) => "no (not a scan-out modifier here)",
    };
    let before = renderer.import_stats();
    let px = sample_back(renderer, &dmabuf)?;
    let after = renderer.import_stats();
    let path = if after.zero_copy_image > before.zero_copy_image {
        "zero_copy_image"
    } else if after.gpu_buffer_copy > before.gpu_buffer_copy {
        "gpu_buffer_copy"
    } else if after.cpu_fallback > before.cpu_fallback {
        "cpu_fallback"
    } else {
        "?"
    };
    let pixels = match (rendered, close(px)) {
        ("yes", true) => "round trip ok".to_string(),
        ("yes", false) => format!("MISMATCH {px:?}"),
        (_, _) => format!("sampled {px:?}"),
    };
    if rendered == "yes" && !close(px) {
        bail!("| {modifier:#018x} | {planes} | {path} | {rendered} | {pixels} |");
    }
    Ok(format!(
        "| {modifier:#018x} | {planes} | {path} | {rendered} | {pixels} |"
    ))
}

fn main() -> Result<()> {
    let options = Cli::from_env()
        .context("the compositor's environment variables")?
        .renderer_options();
    let mut renderer = VkRenderer::new(&options).map_err(|e| anyhow::anyhow!("creating the renderer: {e}"))?;
    println!("## device\n{}", renderer.device_summary());
    println!("\n## negotiated formats (format | modifier | planes | zero-copy | scan-out)");
    for line in renderer.format_table_lines() {
        println!("{line}");
    }
    let Some(node) = render_node(&renderer) else {
        println!("\n## tiled imports\nskipped: the device reports no DRM render node (VK_EXT_physical_device_drm)");
        return Ok(());
    };
    let mut gbm = open_gbm(&node)?;
    println!(
        "\n## tiled imports on {} (modifier | planes | import path | rendered into | sampled back)",
        node.display()
    );
    let mut failed = 0;
    for modifier in renderer.advertised_modifiers(Fourcc::Xrgb8888) {
        match probe(&mut renderer, &mut gbm, modifier) {
            Ok(row) => println!("{row}"),
            Err(e) => {
                failed += 1;
                println!("| {modifier:#018x} | FAILED: {e:#} |");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} modifier probe(s) failed");
    }
    Ok(())
}
