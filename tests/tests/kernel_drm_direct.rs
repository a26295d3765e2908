//! Kernel VM tier, direct scan-out on the DRM backend (virtio-gpu's card
//! node, libseat `noop`, as root):
//!
//! 1. a fullscreen window whose buffer is a dumb buffer the client
//!    allocated on the same card (a dma-buf KMS can import) goes straight
//!    onto the primary plane: the framebuffer the CRTC scans out is that
//!    very buffer (its dma-buf, reached from the CRTC through GETFB2 and
//!    PRIME, is the client's), and no frame is composited while it lasts;
//! 2. when the window stops being fullscreen (and the client draws a smaller
//!    buffer), the compositor composites again;
//! 3. a fullscreen udmabuf in the same place is composited: virtio-gpu
//!    refuses to import it, which is counted.
//!
//! Throughout, the window's dma-buf surface feedback (version 6) is
//! watched: the sampling tranche alone while the window does not cover the
//! output, a scan-out tranche for the card first while it does (also while
//! its buffer does not fit), re-sent at each change.
//!
//! Ignored on the host (no KMS device there).

use std::ffi::OsString;
use std::os::fd::AsFd;

use anyhow::{bail, ensure, Context, Result};
use compositor::backend::drm::DrmStats;
use testkit::buffer::{CreateOutcome, ParamsBuilder, MOD_LINEAR};
use testkit::client::{default_timeout, Client};
use testkit::dmabuf_feedback::{self, FeedbackEvents, SAMPLING, SCANOUT};
use testkit::harness::Compositor;
use testkit::kernel::kms::{self, CardDumb};
use testkit::scenes::BACKGROUND;
use testkit::{DmabufBuffer, Format, UdmabufProvider, Window};

const GREEN: [u8; 4] = [40, 180, 60, 255];
const BLUE: [u8; 4] = [40, 60, 210, 255];
/// Frames to wait at most for the compositor to switch what it shows.
const SWITCH_WITHIN: u32 = 60;

/// A dumb buffer on `card` filled with `color`, as a wl_buffer.
fn dumb_buffer(
    client: &mut Client,
    card: &std::path::Path,
    (w, h): (u32, u32),
    color: [u8; 4],
) -> Result<(CardDumb, wayland_client::protocol::wl_buffer::WlBuffer)> {
    let dumb = CardDumb::create(card, w, h).context("a dumb buffer on the card, as a client")?;
    let bo = &dumb.buffer;
    bo.fill(w, h, Format::Xrgb8888.encode(color))?;
    let params = ParamsBuilder::new(client);
    params.add(&bo.dmabuf, 0, 0, bo.pitch, MOD_LINEAR);
    params.create(w as i32, h as i32, Format::Xrgb8888.fourcc(), 0);
    match params.wait_outcome(client)? {
        CreateOutcome::Created(buffer) => Ok((dumb, buffer)),
        CreateOutcome::Failed => bail!("the compositor refused a {w}x{h} dumb buffer"),
    }
}

fn inode(fd: impl AsFd) -> Result<u64> {
    Ok(rustix::fs::fstat(fd)?.st_ino)
}

/// Redraws until `done` holds for the CRTC's scan-out dma-buf inode.
fn frames_until(
    window: &Window,
    client: &mut Client,
    card: &std::path::Path,
    what: &str,
    done: impl Fn(u64) -> bool,
) -> Result<()> {
    for _ in 0..SWITCH_WITHIN {
        window.damage_all();
        window.wait_frame(client)?;
        if done(kms::scanout_dmabuf_inode(card)?) {
            return Ok(());
        }
    }
    bail!("{what}: not within {SWITCH_WITHIN} frames")
}

/// The index of the tranche for `card` with the scan-out flag (checked to
/// name XRGB8888 LINEAR), if any; every tranche must carry a flag.
fn scanout_tranche(set: &FeedbackEvents, card: libc::dev_t) -> Result<Option<usize>> {
    ensure!(set.main_device.is_none(), "main_device sent to a version 6 client");
    let mut found = None;
    for (i, tranche) in set.tranches.iter().enumerate() {
        let flags = tranche.flags.context("a tranche without flags")?;
        ensure!(flags != 0, "a tranche with no flag");
        if flags & SCANOUT != 0 {
            ensure!(
                tranche.device.as_deref() == Some(&card.to_ne_bytes()[..]),
                "scan-out tranche for another device"
            );
            ensure!(
                set.formats(tranche).contains(&(Format::Xrgb8888.fourcc(), MOD_LINEAR)),
                "XR24 LINEAR missing"
            );
            found = Some(i);
        }
    }
    ensure!(
        set.tranches.iter().any(|t| t.flags == Some(SAMPLING)),
        "no sampling tranche"
    );
    Ok(found)
}

fn drm(comp: &mut Compositor) -> Result<DrmStats> {
    comp.snapshot()?.drm.context("no drm stats")
}

#[test]
#[ignore = "kernel VM tier: needs virtio-gpu's KMS card node, root and /dev/udmabuf (run scripts/vm/test.sh)"]
fn a_fullscreen_client_buffer_is_scanned_out_directly_and_composited_otherwise() -> Result<()> {
    let card = kms::find_card("virtio_gpu").context("virtio-gpu card node")?;
    let before = kms::active_crtcs(&card)?;
    let out = tempfile::tempdir()?;
    let stats = out.path().join("stats.json");
    let args: Vec<OsString> = vec![
        "--backend".into(),
        "drm".into(),
        "--drm-device".into(),
        card.clone().into(),
        "--stats".into(),
        stats.into(),
    ];
    let mut comp = Compositor::spawn_with_env(&args, &[("LIBSEAT_BACKEND", "noop")])?;
    comp.wait_for_log("modeset committed", default_timeout())?;
    let active = kms::active_crtcs(&card)?;
    let [(_, _, (w, h))] = active[..] else {
        bail!("expected one active CRTC, found {active:?}");
    };
    let mode = (u32::from(w), u32::from(h));
    let mut client = comp.connect()?;
    let window = Window::new(&mut client, "fullscreen")?;
    let dmabuf = dmabuf_feedback::bind(&mut client, 6)?;
    let feedback = dmabuf_feedback::watch(&client, &dmabuf, Some(&window.surface));
    let card_dev = rustix::fs::stat(&card)?.st_rdev as libc::dev_t;
    let windowed = feedback.wait_for(&mut client, 1)?;
    ensure!(
        scanout_tranche(&windowed, card_dev)?.is_none(),
        "a scan-out tranche before the window covers the output"
    );
    window.toplevel.set_fullscreen(None);
    client.roundtrip()?;

    // 1. Fullscreen, a dumb buffer of the card: scanned out as it is.
    let (dumb, buffer) = dumb_buffer(&mut client, &card, mode, GREEN)?;
    let client_ino = inode(&dumb.buffer.dmabuf)?;
    window.surface.attach(Some(&buffer), 0, 0);
    testkit::buffer::mark_attached(&buffer);
    frames_until(&window, &mut client, &card, "the client's buffer on the CRTC", |ino| {
        ino == client_ino
    })?;
    let start = drm(&mut comp)?;
    for _ in 0..5 {
        window.damage_all();
        window.wait_frame(&mut client)?;
    }
    let direct = drm(&mut comp)?;
    eprintln!("direct scan-out: {direct:?}");
    ensure!(
        direct.composited_frames == start.composited_frames,
        "frames were composited while the client's buffer was scanned out: {start:?} → {direct:?}"
    );
    ensure!(
        direct.direct_scanout_frames >= start.direct_scanout_frames + 5,
        "{direct:?}"
    );
    ensure!(
        kms::scanout_dmabuf_inode(&card)? == client_ino,
        "the CRTC left the client's buffer"
    );
    let (_, image) = kms::read_scanout(&card)?;
    ensure!(
        image.get(mode.0 / 2, mode.1 / 2) == GREEN,
        "the CRTC does not show the client's pixels"
    );
    ensure!(!testkit::buffer::is_released(&buffer), "released while scanned out");
    let covering = feedback.wait_for(&mut client, 2)?;
    ensure!(
        scanout_tranche(&covering, card_dev)? == Some(0),
        "no scan-out tranche first for the surface that covers the output: {:?}",
        covering.tranches
    );

    // 2. Not fullscreen any more, and a smaller buffer: composited again.
    window.toplevel.unset_fullscreen();
    let half = (mode.0 / 2, mode.1 / 2);
    let (small, small_buffer) = dumb_buffer(&mut client, &card, half, GREEN)?;
    window.surface.attach(Some(&small_buffer), 0, 0);
    frames_until(&window, &mut client, &card, "composition back", |ino| ino != client_ino)?;
    let composited = drm(&mut comp)?;
    let uncovered = feedback.wait_for(&mut client, 3)?;
    ensure!(
        scanout_tranche(&uncovered, card_dev)?.is_none(),
        "the scan-out tranche stayed"
    );
    // Released once the flip that replaced it completed.
    client.roundtrip()?;
    ensure!(
        testkit::buffer::is_released(&buffer),
        "the scanned-out buffer was never released"
    );
    ensure!(
        composited.composited_frames > direct.composited_frames,
        "{composited:?}"
    );
    let (_, image) = kms::read_scanout(&card)?;
    let pixels: Vec<[u8; 4]> = (0..mode.1)
        .step_by(8)
        .flat_map(|y| (0..mode.0).step_by(8).map(move |x| (x, y)))
        .map(|(x, y)| image.get(x, y))
        .collect();
    ensure!(
        pixels.contains(&GREEN) && pixels.contains(&BACKGROUND),
        "the composited frame lacks the window or the background"
    );

    // 3. Fullscreen again, but a udmabuf: virtio-gpu cannot import it.
    window.toplevel.set_fullscreen(None);
    client.roundtrip()?;
    let udmabuf = UdmabufProvider::open()?;
    let blue = DmabufBuffer::new(
        &client,
        &udmabuf,
        mode.0,
        mode.1,
        Format::Xrgb8888,
        mode.0 * 4,
        &|_, _| Format::Xrgb8888.encode(BLUE),
    )?;
    window.attach(&blue);
    for _ in 0..SWITCH_WITHIN {
        window.damage_all();
        window.wait_frame(&mut client)?;
        if kms::read_scanout(&card)?.1.get(mode.0 / 2, mode.1 / 2) == BLUE {
            break;
        }
    }
    let refused = drm(&mut comp)?;
    // Still the candidate, though its buffer does not fit: told how to fit.
    let misfit = feedback.wait_for(&mut client, 4)?;
    ensure!(
        scanout_tranche(&misfit, card_dev)? == Some(0),
        "no scan-out tranche for the udmabuf window"
    );
    ensure!(feedback.received() == 4, "feedback re-sent without a change");
    eprintln!("udmabuf fullscreen: {refused:?}");
    ensure!(refused.direct_scanout_refused >= 1, "{refused:?}");
    ensure!(
        refused.direct_scanout_frames == composited.direct_scanout_frames,
        "a udmabuf was scanned out: {refused:?}"
    );
    ensure!(refused.composited_frames > composited.composited_frames, "{refused:?}");
    let (_, image) = kms::read_scanout(&card)?;
    ensure!(
        image.get(mode.0 / 2, mode.1 / 2) == BLUE,
        "the composited udmabuf is not on the screen"
    );

    comp.terminate()?;
    // The test's own card fds go first: the console comes back when the
    // card's last fd closes.
    drop((window, buffer, small_buffer, blue, dumb, small));
    let after = kms::active_crtcs(&card)?;
    ensure!(
        after == before,
        "CRTC state after exit {after:?} differs from before {before:?}"
    );
    Ok(())
}
