//! One test per `zwp_linux_buffer_params_v1` error.
//!
//! Each test starts its own compositor and a witness client that keeps
//! redrawing on frame callbacks, then sends the bad requests from a separate
//! connection. It asserts the exact error (code and interface), then that the
//! witness still gets at least 5 more frames (other clients keep running) and
//! that the compositor exits cleanly on SIGTERM.
//!
//! Requires the compositor binary, as the test scripts build it:
//! `cargo build --workspace --bins --features compositor/test-hooks` (or set
//! `COMPOSITOR_BIN`).

use std::os::fd::OwnedFd;

use anyhow::{ensure, Context, Result};
use testkit::buffer::{ParamsBuilder, MOD_LINEAR};
use testkit::client::{default_timeout, Client};
use testkit::harness::Compositor;
use testkit::pixel::Format;
use testkit::provider::{BufferProvider, MemfdProvider};
use testkit::witness::Witness;

const INTERFACE: &str = "zwp_linux_buffer_params_v1";
const ALREADY_USED: u32 = 0;
const PLANE_IDX: u32 = 1;
const PLANE_SET: u32 = 2;
const INCOMPLETE: u32 = 3;
const INVALID_FORMAT: u32 = 4;
const INVALID_DIMENSIONS: u32 = 5;
const OUT_OF_BOUNDS: u32 = 6;
const INVALID_WL_BUFFER: u32 = 7;

const W: u32 = 64;
const H: u32 = 64;
const STRIDE: u32 = W * 4;
/// `I915_FORMAT_MOD_X_TILED`: a real modifier a software Vulkan driver cannot import.
const MOD_X_TILED: u64 = (1 << 56) | 1;

fn xrgb() -> u32 {
    Format::Xrgb8888.fourcc()
}

/// A valid 64x64 XRGB8888 backing fd.
fn memfd() -> Result<OwnedFd> {
    MemfdProvider.allocate((STRIDE * H) as usize).context("allocate memfd")
}

/// Runs `bad` on its own connection next to a witness and checks the outcome
/// ([`testkit::witness::expect_protocol_errors`]).
fn expect_error(code: u32, bad: impl Fn(&mut Client) -> Result<()>) -> Result<()> {
    testkit::witness::expect_protocol_errors(INTERFACE, code, &[("bad params", &bad)])
}

#[test]
fn already_used_add_after_create() -> Result<()> {
    expect_error(ALREADY_USED, |c| {
        let fd = memfd()?;
        let p = ParamsBuilder::new(c);
        p.add(&fd, 0, 0, STRIDE, MOD_LINEAR);
        let _buffer = p.create_immed(c, W as i32, H as i32, xrgb(), 0);
        p.add(&fd, 1, 0, STRIDE, MOD_LINEAR);
        Ok(())
    })
}

#[test]
fn already_used_create_twice() -> Result<()> {
    expect_error(ALREADY_USED, |c| {
        let fd = memfd()?;
        let p = ParamsBuilder::new(c);
        p.add(&fd, 0, 0, STRIDE, MOD_LINEAR);
        let _first = p.create_immed(c, W as i32, H as i32, xrgb(), 0);
        let _second = p.create_immed(c, W as i32, H as i32, xrgb(), 0);
        Ok(())
    })
}

#[test]
fn plane_idx_out_of_range() -> Result<()> {
    expect_error(PLANE_IDX, |c| {
        let fd = memfd()?;
        ParamsBuilder::new(c).add(&fd, 4, 0, STRIDE, MOD_LINEAR);
        Ok(())
    })
}

#[test]
fn plane_set_twice() -> Result<()> {
    expect_error(PLANE_SET, |c| {
        let fd = memfd()?;
        let p = ParamsBuilder::new(c);
        p.add(&fd, 0, 0, STRIDE, MOD_LINEAR);
        p.add(&fd, 0, 0, STRIDE, MOD_LINEAR);
        Ok(())
    })
}

#[test]
fn incomplete_no_planes() -> Result<()> {
    expect_error(INCOMPLETE, |c| {
        let _buffer = ParamsBuilder::new(c).create_immed(c, W as i32, H as i32, xrgb(), 0);
        Ok(())
    })
}

/// A single-plane format given only plane 1. smithay 0.7 does not check plane
/// indices against the format, so this only passes if the compositor's own
/// import validation reports `incomplete`.
#[test]
fn incomplete_missing_plane_zero() -> Result<()> {
    expect_error(INCOMPLETE, |c| {
        let fd = memfd()?;
        let p = ParamsBuilder::new(c);
        p.add(&fd, 1, 0, STRIDE, MOD_LINEAR);
        let _buffer = p.create_immed(c, W as i32, H as i32, xrgb(), 0);
        Ok(())
    })
}

#[test]
fn invalid_format_unknown_fourcc() -> Result<()> {
    expect_error(INVALID_FORMAT, |c| {
        let fd = memfd()?;
        let p = ParamsBuilder::new(c);
        p.add(&fd, 0, 0, STRIDE, MOD_LINEAR);
        let _buffer = p.create_immed(c, W as i32, H as i32, u32::from_le_bytes(*b"ZZZZ"), 0);
        Ok(())
    })
}

/// `DRM_FORMAT_BIG_ENDIAN` alone: a code drm-fourcc's enum holds but cannot
/// print (its `Display` panics), so the refusal must not format it with it.
#[test]
fn invalid_format_big_endian_flag_alone() -> Result<()> {
    expect_error(INVALID_FORMAT, |c| {
        let fd = memfd()?;
        let p = ParamsBuilder::new(c);
        p.add(&fd, 0, 0, STRIDE, MOD_LINEAR);
        let _buffer = p.create_immed(c, W as i32, H as i32, 0x8000_0000, 0);
        Ok(())
    })
}

#[test]
fn invalid_format_unadvertised_fourcc() -> Result<()> {
    expect_error(INVALID_FORMAT, |c| {
        // A real fourcc the compositor did not advertise.
        let advertised =
            |f: u32| c.state.dmabuf_formats.contains(&f) || c.state.dmabuf_modifiers.iter().any(|&(g, _)| g == f);
        let candidates = [*b"C8  ", *b"R8  ", *b"YUYV", *b"NV21", *b"BG16", *b"AR30"].map(u32::from_le_bytes);
        let fourcc = candidates
            .into_iter()
            .find(|&f| !advertised(f))
            .context("every candidate fourcc is advertised")?;
        let fd = memfd()?;
        let p = ParamsBuilder::new(c);
        p.add(&fd, 0, 0, STRIDE, MOD_LINEAR);
        let _buffer = p.create_immed(c, W as i32, H as i32, fourcc, 0);
        Ok(())
    })
}

#[test]
fn invalid_dimensions_zero() -> Result<()> {
    expect_error(INVALID_DIMENSIONS, |c| {
        let fd = memfd()?;
        let p = ParamsBuilder::new(c);
        p.add(&fd, 0, 0, STRIDE, MOD_LINEAR);
        let _buffer = p.create_immed(c, 0, 0, xrgb(), 0);
        Ok(())
    })
}

#[test]
fn invalid_dimensions_negative() -> Result<()> {
    expect_error(INVALID_DIMENSIONS, |c| {
        let fd = memfd()?;
        let p = ParamsBuilder::new(c);
        p.add(&fd, 0, 0, STRIDE, MOD_LINEAR);
        let _buffer = p.create_immed(c, -(W as i32), H as i32, xrgb(), 0);
        Ok(())
    })
}

#[test]
fn out_of_bounds_height() -> Result<()> {
    expect_error(OUT_OF_BOUNDS, |c| {
        let fd = memfd()?;
        let p = ParamsBuilder::new(c);
        p.add(&fd, 0, 0, STRIDE, MOD_LINEAR);
        // stride * height is twice the fd size.
        let _buffer = p.create_immed(c, W as i32, 2 * H as i32, xrgb(), 0);
        Ok(())
    })
}

#[test]
fn out_of_bounds_offset_past_end() -> Result<()> {
    expect_error(OUT_OF_BOUNDS, |c| {
        let fd = memfd()?;
        let p = ParamsBuilder::new(c);
        p.add(&fd, 0, STRIDE * H + 4, STRIDE, MOD_LINEAR);
        let _buffer = p.create_immed(c, W as i32, H as i32, xrgb(), 0);
        Ok(())
    })
}

#[test]
fn out_of_bounds_offset_overflow() -> Result<()> {
    expect_error(OUT_OF_BOUNDS, |c| {
        let fd = memfd()?;
        let p = ParamsBuilder::new(c);
        // offset + stride * height overflows u32.
        p.add(&fd, 0, u32::MAX - 16, STRIDE, MOD_LINEAR);
        let _buffer = p.create_immed(c, W as i32, H as i32, xrgb(), 0);
        Ok(())
    })
}

/// Passes smithay's checks (known format, in-bounds) but uses a tiled
/// modifier the compositor never advertised, so its importer must refuse it
/// at `create_immed` time, which smithay reports as `invalid_wl_buffer`.
#[test]
fn invalid_wl_buffer_unsupported_modifier() -> Result<()> {
    expect_error(INVALID_WL_BUFFER, |c| {
        let advertised = c
            .state
            .dmabuf_modifiers
            .iter()
            .any(|&(f, m)| f == xrgb() && m == MOD_X_TILED);
        ensure!(!advertised, "the compositor advertises X_TILED; pick another modifier");
        let fd = memfd()?;
        let p = ParamsBuilder::new(c);
        p.add(&fd, 0, 0, STRIDE, MOD_X_TILED);
        let _buffer = p.create_immed(c, W as i32, H as i32, xrgb(), 0);
        Ok(())
    })
}

/// Modifiers a hostile or confused client might send with an advertised
/// format: the implicit modifier, other vendors' tiled and compressed
/// modifiers, reserved bits, all ones.
const HOSTILE_MODIFIERS: [u64; 7] = [
    0x00ff_ffff_ffff_ffff, // DRM_FORMAT_MOD_INVALID
    0xffff_ffff_ffff_ffff,
    MOD_X_TILED,
    0x0200_0000_2096_bb03, // an AMD DCC modifier (2 planes)
    0x0300_0000_0060_6015, // an NVIDIA block-linear modifier
    0x7f00_0000_0000_0001, // no such vendor
    0x0000_0000_0000_0001, // reserved bits of vendor 0
];

/// Every modifier the compositor did not advertise is refused at `create`
/// (the `failed` event: the client lives on) before any import is tried:
/// the stats count them as refused, and no import, failed or otherwise.
#[test]
fn unadvertised_modifiers_are_refused_before_any_import() -> Result<()> {
    let mut comp = Compositor::spawn(&["--size", "320x240"])?;
    let mut c = comp.connect()?;
    let fd = memfd()?;
    let mut refused = 0;
    for m in HOSTILE_MODIFIERS {
        if c.state.dmabuf_modifiers.iter().any(|&(f, am)| f == xrgb() && am == m) {
            continue; // advertised on this device: not hostile here
        }
        let p = ParamsBuilder::new(&c);
        p.add(&fd, 0, 0, STRIDE, m);
        p.create(W as i32, H as i32, xrgb(), 0);
        let outcome = p.wait_outcome(&mut c)?;
        ensure!(
            matches!(outcome, testkit::buffer::CreateOutcome::Failed),
            "modifier {m:#x}: expected `failed`, got {outcome:?}"
        );
        refused += 1;
    }
    ensure!(
        refused >= 5,
        "only {refused} of the hostile modifiers were unadvertised"
    );
    drop(c);
    comp.terminate()?;
    let stats = testkit::harness::check_stats_file(&comp.stats_path)?;
    let i = stats.imports;
    ensure!(i.refused == refused, "refused {} of {refused}: {i:?}", i.refused);
    ensure!(
        i.failed + i.zero_copy_image + i.gpu_buffer_copy + i.cpu_fallback == 0,
        "an import was attempted for a refused modifier: {i:?}"
    );
    Ok(())
}

/// A pipe cannot be mmapped or imported; smithay skips its size check when
/// `lseek` fails, so the failure must come from the compositor's importer.
#[test]
fn invalid_wl_buffer_unimportable_fd() -> Result<()> {
    expect_error(INVALID_WL_BUFFER, |c| {
        let (read_end, _write_end) = rustix::pipe::pipe().context("pipe")?;
        let p = ParamsBuilder::new(c);
        p.add(&read_end, 0, 0, STRIDE, MOD_LINEAR);
        let _buffer = p.create_immed(c, W as i32, H as i32, xrgb(), 0);
        Ok(())
    })
}

/// A memfd without F_SEAL_SHRINK could be truncated after import, turning the
/// compositor's reads (lavapipe imports by mmap) into SIGBUS: it is refused at
/// creation, and only that client gets the error.
#[test]
fn invalid_wl_buffer_unsealed_memfd() -> Result<()> {
    expect_error(INVALID_WL_BUFFER, |c| {
        use rustix::fs::{memfd_create, MemfdFlags};
        let fd = memfd_create("unsealed-dmabuf", MemfdFlags::CLOEXEC).context("memfd")?;
        rustix::fs::ftruncate(&fd, u64::from(STRIDE * H)).context("ftruncate")?;
        let p = ParamsBuilder::new(c);
        p.add(&fd, 0, 0, STRIDE, MOD_LINEAR);
        let _buffer = p.create_immed(c, W as i32, H as i32, xrgb(), 0);
        Ok(())
    })
}

/// The truncation threat, literally: a client makes a dma-buf from an
/// unsealed memfd, sends `create_immed`, and truncates the memfd. Had the
/// compositor imported it (lavapipe maps it) or mapped it for the CPU path,
/// its next read would SIGBUS and kill every client. Instead the buffer is
/// refused at creation (`invalid_wl_buffer`, for that client only), the
/// truncation then succeeds (the client really could do it), and a second
/// client keeps presenting frames on a compositor that stays up. The memfds
/// the compositor does accept carry `F_SEAL_SHRINK`: truncating one fails.
#[test]
fn memfd_truncated_after_create_immed_is_refused_and_others_keep_presenting() -> Result<()> {
    use rustix::fs::{memfd_create, MemfdFlags};
    let mut comp = Compositor::spawn(&["--size", "320x240"])?;
    let mut witness = Witness::start(&comp.socket_path(), default_timeout())?;

    let mut client = comp.connect()?;
    let fd = memfd_create("truncated-dmabuf", MemfdFlags::CLOEXEC).context("memfd")?;
    rustix::fs::ftruncate(&fd, u64::from(STRIDE * H)).context("ftruncate")?;
    let p = ParamsBuilder::new(&client);
    p.add(&fd, 0, 0, STRIDE, MOD_LINEAR);
    let _buffer = p.create_immed(&client, W as i32, H as i32, xrgb(), 0);
    let err = client.expect_protocol_error()?;
    ensure!(
        err.object_interface == INTERFACE && err.code == INVALID_WL_BUFFER,
        "expected {INTERFACE} error {INVALID_WL_BUFFER}, got {}@{} code {}: {}",
        err.object_interface,
        err.object_id,
        err.code,
        err.message
    );
    rustix::fs::ftruncate(&fd, 0).context("the unsealed memfd must be truncatable")?;
    drop(client);

    let after = witness.frames();
    witness
        .wait_for_frames(after + 5, default_timeout())
        .context("the witness must keep presenting after the truncation")?;
    witness.stop()?;
    ensure!(comp.is_running()?, "compositor died; log: {}", comp.log_path.display());

    // What the compositor accepts cannot shrink.
    let sealed = memfd()?;
    let refused = rustix::fs::ftruncate(&sealed, 0);
    ensure!(refused.is_err(), "a sealed memfd was truncated");

    comp.terminate_successfully()
}
