//! What a frame answers: frame callbacks for every surface that asked,
//! shown or not; presentation feedback `presented` for a surface the frame
//! showed and `discarded` for one it did not (off the output, no role).

use std::ffi::OsString;

use anyhow::{ensure, Result};
use testkit::harness::Compositor;
use testkit::presentation::{Feedback, Outcome};
use testkit::{DmabufBuffer, Subsurface, Window};
use wayland_protocols::wp::presentation_time::client::wp_presentation_feedback::Kind;

fn buffer(client: &testkit::client::Client, size: u32) -> Result<DmabufBuffer> {
    DmabufBuffer::solid(client, size, size, [30, 160, 90, 255])
}

fn compositor() -> Result<Compositor> {
    let args: Vec<OsString> = vec!["--size".into(), "320x240".into()];
    Compositor::spawn(&args)
}

#[test]
fn a_shown_window_is_presented_and_its_subsurface_off_the_output_discarded() -> Result<()> {
    let mut comp = compositor()?;
    let mut client = comp.connect()?;
    let window = Window::new(&mut client, "frame-done")?;
    let main = buffer(&client, 64)?;
    window.attach(&main);
    window.wait_frame(&mut client)?;

    let child = Subsurface::new(&client, &window.surface);
    child.set_position(5000, 5000);
    let small = buffer(&client, 16)?;
    let child_fb = Feedback::request(&client, &child.surface)?;
    let child_frame = client_frame(&client, &child.surface);
    child.attach_commit(&small);
    let main_fb = Feedback::request(&client, &window.surface)?;
    window.damage_all();
    window.wait_frame(&mut client)?;

    client.wait_flag("the off-output subsurface's frame callback", &child_frame)?;
    let shown = main_fb.wait(&mut client)?;
    ensure!(
        matches!(shown, Outcome::Presented(kind) if kind.contains(Kind::Vsync)),
        "the window's update: {shown:?}"
    );
    let hidden = child_fb.wait(&mut client)?;
    ensure!(
        hidden == Outcome::Discarded,
        "the off-output subsurface's update: {hidden:?}"
    );
    drop((child, window));
    comp.terminate_successfully()
}

#[test]
fn a_surface_without_a_role_is_paced_and_its_update_discarded() -> Result<()> {
    let mut comp = compositor()?;
    let mut client = comp.connect()?;
    let surface = client.globals.compositor.create_surface(&client.qh, ());
    let buf = buffer(&client, 16)?;
    for _ in 0..3 {
        surface.attach(Some(&buf.buffer), 0, 0);
        surface.damage_buffer(0, 0, 16, 16);
        let feedback = Feedback::request(&client, &surface)?;
        let frame = client_frame(&client, &surface);
        surface.commit();
        client.wait_flag("the role-less surface's frame callback", &frame)?;
        let outcome = feedback.wait(&mut client)?;
        ensure!(
            outcome == Outcome::Discarded,
            "the role-less surface's update: {outcome:?}"
        );
    }
    surface.destroy();
    comp.terminate_successfully()
}

fn client_frame(
    client: &testkit::client::Client,
    surface: &wayland_client::protocol::wl_surface::WlSurface,
) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    surface.frame(&client.qh, flag.clone());
    flag
}
