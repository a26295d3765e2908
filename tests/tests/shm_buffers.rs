//! wl_shm buffers.

use anyhow::{ensure, Result};
use testkit::explicit::filled_shm_buffer;
use testkit::harness::Compositor;
use testkit::image::RgbaImage;
use testkit::image_compare::check_window_pixel;
use testkit::{Client, Format, Window};

const TEAL: [u8; 4] = [10, 150, 140, 255];

/// Shows a window whose `wl_shm` buffer is destroyed right after its
/// commit, and waits for two frames.
fn show_destroyed_buffer(comp: &Compositor) -> Result<(Client, Window)> {
    let mut client = comp.connect()?;
    let window = Window::new(&mut client, "destroyed")?;
    let buffer = filled_shm_buffer(&client, 64, 64, Format::Xrgb8888.encode(TEAL))?;
    window.attach_wl_buffer(&buffer, 64, 64);
    window.surface.commit();
    buffer.destroy();
    window.wait_frame(&mut client)?;
    window.wait_frame(&mut client)?;
    Ok((client, window))
}

/// A client may destroy a committed `wl_buffer` before its release, as
/// long as it leaves the storage alone: the surface still shows it.
#[test]
fn a_buffer_destroyed_after_its_commit_is_still_shown() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let shot = dir.path().join("out.png");
    let mut comp = Compositor::spawn(&[
        "--size".as_ref(),
        "320x240".as_ref(),
        "--screenshot".as_ref(),
        shot.as_os_str(),
    ])?;
    let shown = show_destroyed_buffer(&comp)?;
    comp.terminate()?;
    drop(shown);
    let image = RgbaImage::load_png(&shot)?;
    check_window_pixel(&image, 0, 10, TEAL)
}

/// The texture a frame made of a buffer destroyed before that frame goes
/// with the surface: the shm texture cache must not keep it (the buffer's
/// destruction, which empties its entry, came before the import).
#[test]
fn the_texture_of_a_buffer_destroyed_before_its_frame_goes_with_the_surface() -> Result<()> {
    let mut comp = Compositor::spawn(&["--size", "320x240"])?;
    let before = comp.snapshot()?.vulkan_objects.textures;
    let shown_at = {
        let _shown = show_destroyed_buffer(&comp)?;
        let shown = comp.snapshot()?;
        ensure!(
            shown.vulkan_objects.textures > before,
            "no texture was made of the buffer: {before} before, {} shown",
            shown.vulkan_objects.textures
        );
        shown.frames
    };
    // The client is gone; each frame tick frees what finished: give it ten.
    let mut after = comp.snapshot()?;
    while after.frames < shown_at + 10 {
        after = comp.snapshot()?;
    }
    ensure!(
        after.vulkan_objects.textures == before,
        "textures: {before} before the client, {} after it left",
        after.vulkan_objects.textures
    );
    comp.terminate()?;
    Ok(())
}
