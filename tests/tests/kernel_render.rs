//! Kernel VM tier: the compositor imports *real* dma-bufs (udmabuf and the
//! system dma-heap) from a client, on the zero-copy image path and on the
//! forced buffer path, and shows the right pixels. Ignored on the host (no
//! such devices); `scripts/vm/test.sh` runs it in the VM with `--include-ignored`.

use std::ffi::OsString;
use std::os::fd::AsFd;

use anyhow::{ensure, Context, Result};
use testkit::harness::{read_stats, Compositor, Stats};
use testkit::image_compare::check_window_pixel;
use testkit::kernel::dmabuf;
use testkit::{BufferProvider, DmaHeapProvider, DmabufBuffer, Format, RgbaImage, UdmabufProvider, Window};

const RED: [u8; 4] = [200, 40, 40, 255];
const BLUE: [u8; 4] = [40, 60, 210, 255];

/// title, provider, size, format, stride, colour, expected dma-buf exporter.
type WindowCase<'a> = (&'a str, &'a dyn BufferProvider, u32, Format, u32, [u8; 4], &'a str);

/// Shows a udmabuf window (64x64 XRGB, stride 256) and a dma-heap window
/// (40x40 ARGB, stride 200) and returns the final screenshot and stats.
fn show_two_windows(extra_args: &[&str]) -> Result<(RgbaImage, Stats)> {
    let out = tempfile::tempdir()?;
    let shot = out.path().join("out.png");
    let stats = out.path().join("stats.json");
    let mut args: Vec<OsString> = vec![
        "--size".into(),
        "320x240".into(),
        "--screenshot".into(),
        shot.clone().into(),
        "--stats".into(),
        stats.clone().into(),
    ];
    args.extend(extra_args.iter().map(OsString::from));
    let mut comp = Compositor::spawn(&args)?;
    let mut client = comp.connect()?;
    let udmabuf = UdmabufProvider::open()?;
    let heap = DmaHeapProvider::open()?;

    let windows: [WindowCase; 2] = [
        ("udmabuf", &udmabuf, 64, Format::Xrgb8888, 256, RED, "udmabuf"),
        ("dma-heap", &heap, 40, Format::Argb8888, 200, BLUE, "system"),
    ];
    let mut shown = Vec::new();
    for (title, provider, size, format, stride, color, exporter) in windows {
        let window = Window::new(&mut client, title)?;
        let buffer = DmabufBuffer::new(&client, provider, size, size, format, stride, &|_, _| {
            format.encode(color)
        })?;
        let got = dmabuf::exporter_name(buffer.fd().as_fd())?;
        ensure!(got.as_deref() == Some(exporter), "{title} buffer exporter is {got:?}");
        window.attach(&buffer);
        window
            .wait_frame(&mut client)
            .with_context(|| format!("{title} window frame"))?;
        shown.push((window, buffer));
    }
    // One more frame so the last rendered frame surely has both windows.
    shown[0].0.damage_all();
    shown[0].0.wait_frame(&mut client)?;

    comp.terminate()?;
    let image = RgbaImage::load_png(&shot).context("screenshot")?;
    let stats = read_stats(&stats)?;
    drop(shown);

    for (n, inside, color) in [(0, 10, RED), (1, 30, BLUE)] {
        check_window_pixel(&image, n, inside, color)?;
    }
    // No import failed, and none fell back to the CPU path.
    ensure!(
        stats.imports.failed == 0 && stats.imports.cpu_fallback == 0,
        "failed imports: {:?}",
        stats.imports
    );
    Ok((image, stats))
}

#[test]
#[ignore = "kernel VM tier: needs /dev/udmabuf and /dev/dma_heap/system (run scripts/vm/test.sh)"]
fn compositor_imports_real_dmabufs_zero_copy() -> Result<()> {
    let (_, stats) = show_two_windows(&[])?;
    // On the real kernel lavapipe has VK_EXT_image_drm_format_modifier, so
    // even the odd stride becomes an image with the client's explicit pitch.
    ensure!(
        stats.imports.zero_copy_image >= 2 && stats.imports.gpu_buffer_copy == 0,
        "expected both real dma-bufs on the zero-copy image path: {stats:?}"
    );
    Ok(())
}

#[test]
#[ignore = "kernel VM tier: needs /dev/udmabuf and /dev/dma_heap/system (run scripts/vm/test.sh)"]
fn compositor_imports_real_dmabufs_through_the_buffer_path() -> Result<()> {
    let (_, stats) = show_two_windows(&["--force-buffer-path"])?;
    ensure!(
        stats.imports.gpu_buffer_copy >= 2 && stats.imports.zero_copy_image == 0,
        "expected both real dma-bufs on the buffer path: {stats:?}"
    );
    Ok(())
}
