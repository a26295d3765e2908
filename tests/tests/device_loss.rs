//! Device loss: when a rendered frame reports `VK_ERROR_DEVICE_LOST`
//! (injected by the test hook `COMPOSITOR_DEVICE_LOST_AT_FRAME`), every
//! client is disconnected with `wl_display.error` `implementation` and the
//! compositor exits with status 75, without a screenshot. The compositor
//! binary must be built with its cargo feature `test-hooks`.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use testkit::harness::{require_test_hooks, Compositor};
use testkit::provider::provider_from_env;
use testkit::{DmabufBuffer, Format, ProtocolError, Window};

const EXIT_DEVICE_LOST: i32 = 75;
/// Presented frames before the loss at the 10th rendered frame: a bound, not a wait.
const MAX_FRAMES: usize = 200;

fn ensure_told(err: Option<ProtocolError>, who: &str) -> Result<()> {
    let err = err.with_context(|| format!("{who} was disconnected without a protocol error"))?;
    ensure!(
        err.object_interface == "wl_display" && err.code == 3,
        "{who}: expected wl_display implementation error, got {err:?}"
    );
    ensure!(err.message.contains("lost its GPU device"), "{who}: {err:?}");
    Ok(())
}

#[test]
fn a_lost_device_disconnects_every_client_with_an_error_and_exits_75() -> Result<()> {
    require_test_hooks("COMPOSITOR_DEVICE_LOST_AT_FRAME")?;
    let dir = tempfile::tempdir()?;
    let shot = dir.path().join("shot.png");
    let mut comp = Compositor::spawn_with_env(
        &[
            "--size".as_ref(),
            "320x240".as_ref(),
            "--screenshot".as_ref(),
            shot.as_os_str(),
        ],
        &[("COMPOSITOR_DEVICE_LOST_AT_FRAME", "10")],
    )?;
    // An idle client, and one that draws until the device is lost.
    let mut idle = comp.connect()?;
    let mut client = comp.connect()?;
    let window = Window::new(&mut client, "drawing")?;
    let provider = provider_from_env()?;
    let buffer = DmabufBuffer::new(&client, &*provider, 64, 64, Format::Xrgb8888, 256, &|_, _| {
        Format::Xrgb8888.encode([10, 200, 10, 255])
    })?;
    let mut frames = 0;
    let ended = loop {
        window.attach(&buffer);
        window.damage_all();
        let shown = window.frame(&client);
        window.surface.commit();
        if let Err(e) = client.wait_flag("a frame callback", &shown) {
            break e;
        }
        frames += 1;
        ensure!(
            frames < MAX_FRAMES,
            "still drawing after {frames} frames: the hook did not fire"
        );
    };
    ensure_told(client.protocol_error(), "the drawing client").context(format!("{ended:#}"))?;
    let _ = idle.roundtrip();
    ensure_told(idle.protocol_error(), "the idle client")?;

    let status = comp.wait_exit_unchecked(Duration::from_secs(20))?;
    ensure!(
        status.code() == Some(EXIT_DEVICE_LOST),
        "exit status {status}, expected {EXIT_DEVICE_LOST}"
    );
    // It has exited: this reads the log once.
    comp.wait_for_log("the GPU device was lost", Duration::from_secs(1))?;
    ensure!(!shot.exists(), "a screenshot was written after the device was lost");
    Ok(())
}
