//! `wl_surface.enter` and `leave` follow what the output shows:
//!
//! * a subsurface mapped and unmapped inside a window whose size does not
//!   change: a synchronized subsurface's view changes with its parent's
//!   commit, not its own, so anything that decides from commits when to
//!   work out the surfaces' outputs must still see these;
//! * a subsurface moved off the output and back, with nothing mapped or
//!   unmapped;
//! * a subsurface under a parent that unmaps (it is no longer shown);
//! * windows mapped one after another, each closed before the next, past
//!   the cascade slots the output holds: each opens on the output.

use std::ffi::OsString;

use anyhow::{ensure, Context, Result};
use testkit::client::Client;
use testkit::harness::Compositor;
use testkit::{DmabufBuffer, Subsurface, Window};
use wayland_client::Proxy;

fn buffer(client: &Client, size: u32) -> Result<DmabufBuffer> {
    DmabufBuffer::solid(client, size, size, [90, 60, 200, 255])
}

/// A compositor with a 320×240 output, a window shown on it and a 32×32
/// subsurface of the window at (16, 16), inside the window's bounds, also
/// shown.
struct WithChild {
    comp: Compositor,
    client: Client,
    window: Window,
    child: Subsurface,
    small: DmabufBuffer,
    _main: DmabufBuffer,
}

fn window_with_child() -> Result<WithChild> {
    let args: Vec<OsString> = vec!["--size".into(), "320x240".into()];
    let comp = Compositor::spawn(&args)?;
    let mut client = comp.connect()?;
    let (window, main) = shown_window(&mut client)?;
    let child = Subsurface::new(&client, &window.surface);
    child.set_position(16, 16);
    let small = buffer(&client, 32)?;
    child.attach_commit(&small);
    ensure!(
        window.shows_after_frames(&mut client, &child.surface)?,
        "the subsurface mapped inside its window never entered the output"
    );
    Ok(WithChild {
        comp,
        client,
        window,
        child,
        small,
        _main: main,
    })
}

/// A window with a 128×128 buffer on a 320×240 output, on the output.
fn shown_window(client: &mut Client) -> Result<(Window, DmabufBuffer)> {
    let _output = client.bind_output()?;
    let window = Window::new(client, "outputs")?;
    let main = buffer(client, 128)?;
    window.attach(&main);
    ensure!(
        window.shows_after_frames(client, &window.surface)?,
        "the window's surface never entered the output"
    );
    Ok((window, main))
}

#[test]
fn a_subsurface_mapped_and_unmapped_inside_its_window_enters_and_leaves() -> Result<()> {
    // The window's size stays the same throughout; only the subsurface's
    // own view changes.
    let WithChild {
        mut comp,
        mut client,
        window,
        child,
        small,
        _main,
    } = window_with_child()?;

    child.surface.attach(None, 0, 0);
    child.surface.commit();
    ensure!(
        !window.shows_after_frames(&mut client, &child.surface)?,
        "the unmapped subsurface never left the output"
    );

    child.attach_commit(&small);
    ensure!(
        window.shows_after_frames(&mut client, &child.surface)?,
        "the subsurface mapped again never entered the output"
    );
    ensure!(
        client.state.entered.contains(&window.surface.id()),
        "the window's surface left the output"
    );

    drop((child, window));
    comp.terminate_successfully()
}

#[test]
fn a_subsurface_moved_off_the_output_leaves_and_moved_back_enters() -> Result<()> {
    let WithChild {
        mut comp,
        mut client,
        window,
        child,
        _main,
        ..
    } = window_with_child()?;

    // Far past the output's right and bottom edges, wherever the window is.
    child.set_position(4000, 4000);
    ensure!(
        !window.shows_after_frames(&mut client, &child.surface)?,
        "the subsurface moved off the output never left it"
    );
    ensure!(
        client.state.entered.contains(&window.surface.id()),
        "the window's surface left the output with its subsurface"
    );

    child.set_position(16, 16);
    ensure!(
        window.shows_after_frames(&mut client, &child.surface)?,
        "the subsurface moved back never entered the output again"
    );

    drop((child, window));
    comp.terminate_successfully()
}

#[test]
fn a_subsurface_leaves_with_its_unmapped_parent() -> Result<()> {
    let args: Vec<OsString> = vec!["--size".into(), "320x240".into()];
    let mut comp = Compositor::spawn(&args)?;
    let mut client = comp.connect()?;
    let (window, _main) = shown_window(&mut client)?;
    let child = Subsurface::new(&client, &window.surface);
    let grandchild = Subsurface::new(&client, &child.surface);
    let small = buffer(&client, 32)?;
    grandchild.attach_commit(&small);
    child.attach_commit(&small);
    ensure!(
        window.shows_after_frames(&mut client, &grandchild.surface)?,
        "the nested subsurface never entered the output"
    );

    child.surface.attach(None, 0, 0);
    child.surface.commit();
    ensure!(
        !window.shows_after_frames(&mut client, &grandchild.surface)?,
        "the nested subsurface stayed on the output after its parent unmapped"
    );
    ensure!(
        !client.state.entered.contains(&child.surface.id()),
        "the unmapped subsurface stayed on the output"
    );

    drop((grandchild, child, window));
    comp.terminate_successfully()
}

/// The cascade places the n-th window at (32 + 64n, 32 + 64n) while that
/// corner lies on the output, then starts over: the fifth and later
/// windows of a run on a 320×240 output still open on it (the fifth would
/// lie wholly below it otherwise).
#[test]
fn every_window_of_a_long_run_opens_on_the_output() -> Result<()> {
    let args: Vec<OsString> = vec!["--size".into(), "320x240".into()];
    let mut comp = Compositor::spawn(&args)?;
    let mut client = comp.connect()?;
    for n in 0..7 {
        shown_window(&mut client).with_context(|| format!("window {n} of the run"))?;
    }
    drop(client);
    comp.terminate()?;
    Ok(())
}
