//! linux-dmabuf version 6 on the host: what each version of the global
//! sends, `set_sampling_device`, and the one error it adds.
//!
//! The host has no DRM node, so the compositor offers version 3 by itself
//! (tests/tests/wayland_info.rs checks that). These tests name a device
//! number through the test hook `COMPOSITOR_DMABUF_DEVICE`; the buffers are
//! memfds imported by lavapipe as always. The kernel VM tier checks the
//! same global with the real render node (tests/tests/kernel_dmabuf.rs).
//!
//! Requires the compositor binary, as the test scripts build it:
//! `cargo build --workspace --bins --features compositor/test-hooks`.

use std::os::fd::OwnedFd;

use anyhow::{ensure, Context, Result};
use testkit::buffer::{CreateOutcome, ParamsBuilder, MOD_LINEAR};
use testkit::client::Client;
use testkit::dmabuf_feedback::{self, dev_bytes, FeedbackEvents, SAMPLING, SCANOUT};
use testkit::harness::{require_test_hooks, Compositor};
use testkit::pixel::Format;
use testkit::provider::{BufferProvider, MemfdProvider};
use testkit::window::Window;

const HOOK: &str = "COMPOSITOR_DMABUF_DEVICE";
/// The device the hook names: a DRM render node's number.
const DEVICE: (u32, u32) = (226, 128);
/// A device the compositor never names.
const OTHER: (u32, u32) = (250, 3);
const INVALID_DEV_T_SIZE: u32 = 8;
const W: u32 = 64;
const H: u32 = 64;

fn spawn() -> Result<Compositor> {
    require_test_hooks(HOOK)?;
    Compositor::spawn_with_env(&["--size", "320x240"], &[(HOOK, "226:128")])
}

fn memfd() -> Result<OwnedFd> {
    MemfdProvider.allocate((W * 4 * H) as usize).context("allocate memfd")
}

/// The one tranche with the sampling device, checked to be the only one.
fn sampling_tranche(fb: &FeedbackEvents, sampling_flags: u32) -> Result<&testkit::dmabuf_feedback::TrancheEvents> {
    let device = dev_bytes(DEVICE.0, DEVICE.1);
    let tranches: Vec<_> = fb
        .tranches
        .iter()
        .filter(|t| t.device.as_deref() == Some(&device[..]))
        .collect();
    ensure!(
        tranches.len() == 1,
        "expected one tranche for the device: {:?}",
        fb.tranches
    );
    let tranche = tranches[0];
    ensure!(
        tranche.flags == Some(sampling_flags),
        "sampling tranche flags {:?}, expected {sampling_flags}",
        tranche.flags
    );
    let formats = fb.formats(tranche);
    for format in [Format::Xrgb8888.fourcc(), Format::Argb8888.fourcc()] {
        ensure!(
            formats.contains(&(format, MOD_LINEAR)),
            "{format:#x} LINEAR missing from the sampling tranche: {formats:x?}"
        );
    }
    ensure!(
        tranche.indices.len() == formats.len(),
        "indices past the table's end: {:?} for {} entries",
        tranche.indices,
        fb.table.len()
    );
    let mut sorted = tranche.indices.clone();
    sorted.sort_unstable();
    sorted.dedup();
    ensure!(sorted.len() == tranche.indices.len(), "a pair twice in one tranche");
    Ok(tranche)
}

#[test]
fn version_6_feedback_has_no_main_device_and_a_flag_on_every_tranche() -> Result<()> {
    let mut comp = spawn()?;
    let mut client = comp.connect()?;
    let dmabuf = dmabuf_feedback::bind(&mut client, 6)?;
    let default = dmabuf_feedback::feedback(&mut client, &dmabuf, None)?;
    ensure!(default.main_device.is_none(), "main_device sent to a version 6 client");
    for tranche in &default.tranches {
        let flags = tranche.flags.context("a tranche without tranche_flags")?;
        ensure!(
            flags != 0 && flags & !(SAMPLING | SCANOUT) == 0,
            "tranche flags {flags:#x}"
        );
    }
    sampling_tranche(&default, SAMPLING)?;

    // A surface's feedback is the default one.
    let window = Window::new(&mut client, "feedback")?;
    let surface = dmabuf_feedback::feedback(&mut client, &dmabuf, Some(&window.surface))?;
    ensure!(surface.table == default.table && surface.tranches == default.tranches);
    drop(window);
    drop(client);
    comp.terminate_successfully()
}

#[test]
fn versions_4_and_5_keep_main_device_and_unflagged_sampling_tranches() -> Result<()> {
    let mut comp = spawn()?;
    for version in [4, 5] {
        let mut client = comp.connect()?;
        let dmabuf = dmabuf_feedback::bind(&mut client, version)?;
        let fb = dmabuf_feedback::feedback(&mut client, &dmabuf, None)?;
        ensure!(
            fb.main_device == Some(dev_bytes(DEVICE.0, DEVICE.1)),
            "version {version}: main_device {:?}",
            fb.main_device
        );
        sampling_tranche(&fb, 0).with_context(|| format!("version {version}"))?;
    }
    comp.terminate_successfully()
}

#[test]
fn version_3_still_gets_the_modifier_list() -> Result<()> {
    let mut comp = spawn()?;
    let client = comp.connect()?;
    ensure!(
        client
            .state
            .dmabuf_modifiers
            .contains(&(Format::Xrgb8888.fourcc(), MOD_LINEAR)),
        "modifier events at version 3: {:x?}",
        client.state.dmabuf_modifiers
    );
    drop(client);
    comp.terminate_successfully()
}

/// Creates a 64×64 XRGB buffer on a version 6 global with `device` named
/// as its sampling device, shows it in a window for one frame, and returns
/// the exit stats.
fn show_buffer_meant_for(device: &[u8]) -> Result<testkit::harness::Stats> {
    let mut comp = spawn()?;
    let mut client = comp.connect()?;
    let dmabuf = dmabuf_feedback::bind(&mut client, 6)?;
    let fd = memfd()?;
    let params = ParamsBuilder::on(&client, &dmabuf);
    params.set_sampling_device(device).add(&fd, 0, 0, W * 4, MOD_LINEAR);
    params.create(W as i32, H as i32, Format::Xrgb8888.fourcc(), 0);
    let CreateOutcome::Created(buffer) = params.wait_outcome(&mut client)? else {
        anyhow::bail!("create failed for a buffer meant for {device:?}");
    };
    let window = Window::new(&mut client, "v6")?;
    window.surface.attach(Some(&buffer), 0, 0);
    window.damage_all();
    window.wait_frame(&mut client)?;
    drop(window);
    buffer.destroy();
    drop(client);
    comp.terminate_successfully()?;
    comp.stats()
}

#[test]
fn a_buffer_for_the_sampling_device_is_created_and_shown_without_a_copy() -> Result<()> {
    let stats = show_buffer_meant_for(&dev_bytes(DEVICE.0, DEVICE.1))?;
    let d = stats.linux_dmabuf;
    ensure!(d.global_version == 6, "global version {}", d.global_version);
    ensure!(d.sampling_device == 1 && d.other_device == 0, "{d:?}");
    ensure!(stats.imports.zero_copy_image >= 1, "imports: {:?}", stats.imports);
    ensure!(stats.shell.windows_mapped == 1, "shell: {:?}", stats.shell);
    Ok(())
}

/// The compositor's choice for a device it does not sample from: no error,
/// the renderer imports the buffer as any other, and it is counted.
#[test]
fn a_buffer_meant_for_another_device_is_imported_on_the_renderer_all_the_same() -> Result<()> {
    let stats = show_buffer_meant_for(&dev_bytes(OTHER.0, OTHER.1))?;
    let d = stats.linux_dmabuf;
    ensure!(d.other_device == 1 && d.sampling_device == 0, "{d:?}");
    ensure!(stats.imports.zero_copy_image >= 1, "imports: {:?}", stats.imports);
    ensure!(stats.shell.windows_mapped == 1, "shell: {:?}", stats.shell);
    Ok(())
}

#[test]
fn invalid_dev_t_size_for_arrays_that_are_not_one_dev_t() -> Result<()> {
    require_test_hooks(HOOK)?;
    let bad = |len: usize| {
        move |c: &mut Client| -> Result<()> {
            let dmabuf = dmabuf_feedback::bind(c, 6)?;
            ParamsBuilder::on(c, &dmabuf).set_sampling_device(&vec![0u8; len]);
            Ok(())
        }
    };
    let (short, long, empty) = (bad(4), bad(16), bad(0));
    testkit::witness::expect_protocol_errors_with_env(
        "zwp_linux_buffer_params_v1",
        INVALID_DEV_T_SIZE,
        &[(HOOK, "226:128")],
        &[("4 bytes", &short), ("16 bytes", &long), ("empty", &empty)],
    )
}
