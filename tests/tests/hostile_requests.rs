//! Requests found by fuzzing (`fuzz/`, docs/robustness.md) that once took
//! the compositor down, replayed against the test build (debug assertions
//! on) with a witness that must keep its frames.

use std::time::Duration;

use anyhow::{Context, Result};
use testkit::harness::Compositor;
use testkit::provider::provider_from_env;
use testkit::witness::Witness;
use testkit::{DmabufBuffer, Format, Subsurface, Window};

const BOUND: Duration = Duration::from_secs(20);

/// `wl_surface.damage` and `wl_region.add`/`subtract` with a negative width
/// or height: smithay 0.7 made a `Size` of them, whose debug assertion
/// panicked the compositor. They cover nothing and are dropped; the client
/// stays connected.
#[test]
fn negative_damage_and_region_rectangles_are_dropped() -> Result<()> {
    let mut comp = Compositor::spawn(&["--size", "320x240"])?;
    let mut witness = Witness::start(&comp.socket_path(), BOUND)?;
    let mut client = comp.connect()?;
    let window = Window::new(&mut client, "negative")?;
    window.surface.damage(0, 0, -1, 14);
    window.surface.damage(3, 3, 14, i32::MIN);
    let region = client.globals.compositor.create_region(&client.qh, ());
    region.add(0, 0, -5, 5);
    region.subtract(0, 0, 5, -5);
    window.surface.set_opaque_region(Some(&region));
    window.surface.commit();
    client
        .roundtrip()
        .context("the client was disconnected for a negative rectangle")?;
    let base = witness.frames();
    witness.wait_for_frames(base + 10, BOUND)?;
    witness.stop()?;
    comp.terminate()?;
    Ok(())
}

/// `wl_subsurface.place_above`/`place_below` relative to the subsurface
/// itself: smithay 0.7's reorder inserted past the end of the children list
/// and panicked (in release builds too). The protocol makes it a
/// `bad_surface` error for that client; the others keep their frames.
#[test]
fn placing_a_subsurface_relative_to_itself_is_a_protocol_error() -> Result<()> {
    let mut comp = Compositor::spawn(&["--size", "320x240"])?;
    let mut witness = Witness::start(&comp.socket_path(), BOUND)?;
    for above in [true, false] {
        let mut client = comp.connect()?;
        let window = Window::new(&mut client, "parent")?;
        let sub = Subsurface::new(&client, &window.surface);
        if above {
            sub.subsurface.place_above(&sub.surface);
        } else {
            sub.subsurface.place_below(&sub.surface);
        }
        let err = client.expect_protocol_error()?;
        anyhow::ensure!(
            err.object_interface == "wl_subsurface" && err.code == 0,
            "expected wl_subsurface.bad_surface, got {err:?}"
        );
    }
    let base = witness.frames();
    witness.wait_for_frames(base + 10, BOUND)?;
    witness.stop()?;
    comp.terminate()?;
    Ok(())
}

/// Coordinates near `i32`'s limits on a transformed surface: smithay 0.7's
/// surface-to-buffer damage transform overflowed (a panic with overflow
/// checks). Coordinates are clamped far beyond any buffer, and the frame is
/// drawn.
#[test]
fn extreme_coordinates_on_a_transformed_surface_are_clamped() -> Result<()> {
    let mut comp = Compositor::spawn(&["--size", "320x240"])?;
    let mut witness = Witness::start(&comp.socket_path(), BOUND)?;
    let mut client = comp.connect()?;
    let window = Window::new(&mut client, "extreme")?;
    let provider = provider_from_env()?;
    let buffer = DmabufBuffer::new(&client, &*provider, 64, 32, Format::Xrgb8888, 256, &|_, _| {
        Format::Xrgb8888.encode([200, 200, 20, 255])
    })?;
    let sub = Subsurface::new(&client, &window.surface);
    sub.set_position(i32::MIN, i32::MAX);
    for transform in [1, 3, 5, 7] {
        window
            .surface
            .set_buffer_transform(wayland_client::protocol::wl_output::Transform::try_from(transform).unwrap());
        window.attach(&buffer);
        window.surface.damage(i32::MIN, i32::MIN, i32::MAX, i32::MAX);
        window.surface.damage(i32::MAX, i32::MAX, i32::MAX, i32::MAX);
        window.surface.damage_buffer(i32::MIN, i32::MAX, i32::MAX, i32::MAX);
        window.surface.offset(i32::MAX, i32::MIN);
        window
            .wait_frame(&mut client)
            .context("no frame after extreme damage")?;
    }
    client.roundtrip()?;
    let base = witness.frames();
    witness.wait_for_frames(base + 10, BOUND)?;
    witness.stop()?;
    comp.terminate()?;
    Ok(())
}
