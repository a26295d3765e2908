//! wl_shm buffers.

use anyhow::{ensure, Context, Result};
use testkit::harness::Compositor;
use testkit::image::RgbaImage;
use testkit::image_compare::check_window_pixel;
use testkit::{Client, Window};
use wayland_client::protocol::{wl_buffer::WlBuffer, wl_shm};

const TEAL: [u8; 4] = [10, 150, 140, 255];

/// A 64×64 XRGB8888 `wl_shm` buffer filled with `color`.
fn filled_shm_buffer(client: &Client, color: [u8; 4]) -> Result<WlBuffer> {
    let (w, h) = (64, 64);
    let shm = client.globals.shm.as_ref().context("no wl_shm global")?;
    let fd = rustix::fs::memfd_create("shm-test", rustix::fs::MemfdFlags::CLOEXEC)?;
    let pixel = [color[2], color[1], color[0], 255];
    let bytes: Vec<u8> = pixel.iter().copied().cycle().take((w * h * 4) as usize).collect();
    rustix::io::write(&fd, &bytes)?;
    let pool = shm.create_pool(std::os::fd::AsFd::as_fd(&fd), w * h * 4, &client.qh, ());
    let buffer = pool.create_buffer(
        0,
        w,
        h,
        w * 4,
        wl_shm::Format::Xrgb8888,
        &client.qh,
        testkit::buffer::BufferData::new(),
    );
    pool.destroy();
    Ok(buffer)
}

/// Shows a window whose `wl_shm` buffer is destroyed right after its
/// commit, and waits for two frames.
fn show_destroyed_buffer(comp: &Compositor) -> Result<(Client, Window)> {
    let mut client = comp.connect()?;
    let window = Window::new(&mut client, "destroyed")?;
    let buffer = filled_shm_buffer(&client, TEAL)?;
    window.surface.attach(Some(&buffer), 0, 0);
    window.surface.damage_buffer(0, 0, 64, 64);
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
    let dir = tempfile::tempdir()?;
    let stats = dir.path().join("stats.json");
    let mut comp = Compositor::spawn(&[
        "--size".as_ref(),
        "320x240".as_ref(),
        "--stats".as_ref(),
        stats.as_os_str(),
    ])?;
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
