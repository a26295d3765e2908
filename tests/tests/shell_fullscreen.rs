//! A window made fullscreen before its first buffer is mapped at the output
//! origin, filling it (the size it was configured to), and goes to its
//! cascade slot when it stops being fullscreen. (Direct scan-out on the DRM
//! backend depends on the first: tests/tests/kernel_drm_direct.rs.)

use std::ffi::OsString;

use anyhow::{ensure, Context, Result};
use testkit::harness::Compositor;
use testkit::scenes::{toplevel_position, BACKGROUND};
use testkit::{DmabufBuffer, RgbaImage, Window};

const RED: [u8; 4] = [200, 40, 40, 255];
const W: u32 = 320;
const H: u32 = 240;

/// Runs the client steps against a compositor and returns its last frame.
fn last_frame(
    steps: impl FnOnce(&mut testkit::client::Client, &Window) -> Result<Vec<DmabufBuffer>>,
) -> Result<RgbaImage> {
    let out = tempfile::tempdir()?;
    let shot = out.path().join("shot.png");
    let args: Vec<OsString> = vec![
        "--size".into(),
        format!("{W}x{H}").into(),
        "--screenshot".into(),
        shot.clone().into(),
    ];
    let mut comp = Compositor::spawn(&args)?;
    let mut client = comp.connect()?;
    let window = Window::new(&mut client, "fullscreen")?;
    let buffers = steps(&mut client, &window)?;
    comp.terminate_successfully()?;
    drop((window, buffers));
    RgbaImage::load_png(&shot).context("screenshot")
}

fn red(client: &testkit::client::Client, w: u32, h: u32) -> Result<DmabufBuffer> {
    DmabufBuffer::solid(client, w, h, RED)
}

#[test]
fn a_window_fullscreened_before_its_first_buffer_fills_the_output() -> Result<()> {
    let image = last_frame(|client, window| {
        window.toplevel.set_fullscreen(None);
        client.roundtrip()?;
        let buffer = red(client, W, H)?;
        window.attach(&buffer);
        window.wait_frame(client)?;
        window.damage_all();
        window.wait_frame(client)?;
        Ok(vec![buffer])
    })?;
    for (x, y) in [(0, 0), (W - 1, 0), (0, H - 1), (W - 1, H - 1)] {
        ensure!(
            image.get(x, y) == RED,
            "({x},{y}) is {:?}, not the fullscreen window",
            image.get(x, y)
        );
    }
    Ok(())
}

#[test]
fn a_window_leaving_fullscreen_goes_to_its_cascade_slot() -> Result<()> {
    let image = last_frame(|client, window| {
        window.toplevel.set_fullscreen(None);
        client.roundtrip()?;
        let full = red(client, W, H)?;
        window.attach(&full);
        window.wait_frame(client)?;
        window.toplevel.unset_fullscreen();
        client.roundtrip()?;
        let small = red(client, 64, 64)?;
        window.attach(&small);
        window.wait_frame(client)?;
        window.damage_all();
        window.wait_frame(client)?;
        Ok(vec![full, small])
    })?;
    let (x, y) = toplevel_position(0);
    ensure!(
        image.get(0, 0) == BACKGROUND,
        "the output origin is {:?}",
        image.get(0, 0)
    );
    ensure!(
        image.get(x as u32 + 10, y as u32 + 10) == RED,
        "no window at its cascade slot"
    );
    Ok(())
}
