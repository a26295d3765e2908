//! Exercises the client library, `scene-client` and `demo-client` against an
//! in-process fake server (tests/support/fake_server.rs), so the protocol flow
//! of the test clients is checked even where the real compositor is absent.

#[path = "support/fake_server.rs"]
mod fake_server;

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use fake_server::{FakeServer, XRGB8888};
use testkit::buffer::{DmabufBuffer, ParamsBuilder, PlaneLayout, MOD_LINEAR};
use testkit::client::Client;
use testkit::color_representation::ManagerEvent;
use testkit::pixel::{Coefficients, Format, Range, Representation};
use testkit::process::wait_timeout;
use testkit::provider::{BufferProvider, MemfdProvider};
use testkit::scenes;
use testkit::window::Window;
use testkit::witness::Witness;

#[test]
fn window_maps_and_receives_frames() -> Result<()> {
    let server = FakeServer::start();
    let mut client = Client::connect_to(&server.socket_path())?;
    ensure!(client.state.dmabuf_formats.contains(&XRGB8888), "{:?}", client.state);
    ensure!(
        client.state.dmabuf_modifiers.contains(&(XRGB8888, MOD_LINEAR)),
        "{:?}",
        client.state
    );
    let window = Window::new(&mut client, "fake")?;
    let px = |x: u32, y: u32| Format::Xrgb8888.encode([x as u8, y as u8, 0, 255]);
    let buf = DmabufBuffer::new(&client, &MemfdProvider, 8, 4, Format::Xrgb8888, 48, &px)?;
    // Row 1 starts at the stride; padding bytes are the magenta marker.
    ensure!(buf.bytes()[48..52] == Format::Xrgb8888.encode([0, 1, 0, 255]));
    ensure!(buf.bytes()[32..36] == scenes::PADDING_BYTES);
    window.attach(&buf);
    for _ in 0..3 {
        window.wait_frame(&mut client)?;
    }
    client.roundtrip()?;
    Ok(())
}

/// A window asks for a colour representation through one surface object,
/// got on first use and destroyed when it asks for none again; asking for
/// none at first binds nothing.
#[test]
fn window_sets_its_colour_representation() -> Result<()> {
    let server = FakeServer::start();
    let mut client = Client::connect_to(&server.socket_path())?;
    let mut window = Window::new(&mut client, "representation")?;
    window.set_representation(&mut client, None)?;
    ensure!(
        window.representation.object().is_none(),
        "no representation asked for, yet an object"
    );
    let bt709_full = Representation::new(Coefficients::Bt709, Range::Full);
    window.set_representation(&mut client, Some(bt709_full))?;
    let object = window.representation.object().cloned().context("no surface object")?;
    let manager = client.color_representation()?;
    ensure!(
        Representation::ALL.iter().all(|&r| manager.supports(r)),
        "{:?}",
        manager.events()
    );
    ensure!(
        manager.events().last() == Some(&ManagerEvent::Done),
        "{:?}",
        manager.events()
    );
    let px = |_, _| Format::Nv12.encode_as([10, 200, 30, 255], bt709_full);
    let buf = DmabufBuffer::with_layout(
        &client,
        &MemfdProvider,
        (64, 64),
        Format::Nv12,
        PlaneLayout::OneFdAligned,
        64,
        &px,
    )?;
    window.attach(&buf);
    window.wait_frame(&mut client)?;
    // Another representation: the same object (a second one would be an error).
    window.set_representation(&mut client, Some(Representation::BT601_LIMITED))?;
    ensure!(window.representation.object() == Some(&object));
    window.set_representation(&mut client, None)?;
    ensure!(window.representation.object().is_none());
    window.damage_all();
    window.wait_frame(&mut client)?;
    client.roundtrip()?;
    Ok(())
}

#[test]
fn protocol_error_is_reported() -> Result<()> {
    let server = FakeServer::start();
    let mut client = Client::connect_to(&server.socket_path())?;
    let fd = MemfdProvider.allocate(64)?;
    ParamsBuilder::new(&client).add(&fd, 4, 0, 16, MOD_LINEAR);
    let err = client.expect_protocol_error()?;
    ensure!(
        err.object_interface == "zwp_linux_buffer_params_v1" && err.code == 1,
        "{err:?}"
    );
    ensure!(client.roundtrip().is_err(), "a dead connection must not roundtrip");
    Ok(())
}

#[test]
fn healthy_connection_is_not_a_protocol_error() -> Result<()> {
    let server = FakeServer::start();
    let mut client = Client::connect_to(&server.socket_path())?;
    ensure!(client.expect_protocol_error().is_err());
    Ok(())
}

#[test]
fn witness_counts_frames() -> Result<()> {
    let server = FakeServer::start();
    let mut witness = Witness::start(&server.socket_path(), Duration::from_secs(10))?;
    let base = witness.frames();
    witness.wait_for_frames(base + 5, Duration::from_secs(10))?;
    ensure!(witness.stop()? >= base + 5);
    Ok(())
}

fn run_client(server: &FakeServer, bin: &str, args: &[&str]) -> Result<()> {
    let mut child = Command::new(bin)
        .args(args)
        .env("XDG_RUNTIME_DIR", server.runtime_dir())
        .env("WAYLAND_DISPLAY", &server.socket_name)
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("spawn {bin}"))?;
    let status = wait_timeout(&mut child, Duration::from_secs(60))?;
    ensure!(status.is_some_and(|s| s.success()), "{bin} {args:?}: {status:?}");
    Ok(())
}

#[test]
fn scene_client_runs_every_scene() -> Result<()> {
    let server = FakeServer::start();
    for name in scenes::NAMES {
        run_client(&server, env!("CARGO_BIN_EXE_scene-client"), &["--scene", name])?;
    }
    Ok(())
}

#[test]
fn scene_client_rejects_unknown_scene() -> Result<()> {
    let server = FakeServer::start();
    ensure!(run_client(&server, env!("CARGO_BIN_EXE_scene-client"), &["--scene", "nope"]).is_err());
    Ok(())
}

#[test]
fn demo_client_runs_double_buffered() -> Result<()> {
    let server = FakeServer::start();
    run_client(&server, env!("CARGO_BIN_EXE_demo-client"), &["--frames", "10"])
}
