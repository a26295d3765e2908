//! Screenshot tests: every scene from `testkit::scenes`, rendered by the real
//! compositor (headless, at the scene's output size: 320x240 but for the
//! representation scenes), must match `assets/reference/<scene>.png`
//! (made by the independent CPU model in `testkit::reference`) within
//! `DEFAULT_TOLERANCE` per channel. Mismatches leave `<scene>.actual.png` and
//! `<scene>.diff.png` under `$TEST_ARTIFACTS_DIR` (default `target/test-artifacts`).
//!
//! Requires the compositor binary, as the test scripts build it:
//! `cargo build --workspace --bins --features compositor/test-hooks` (or set
//! `COMPOSITOR_BIN`).

use std::path::Path;

use anyhow::{ensure, Result};
use testkit::harness::{run_scene_with_args, run_scene_with_stats, SceneRun};
use testkit::image_compare::{check_against_reference, DEFAULT_TOLERANCE};

fn render_and_compare(scene: &str) -> Result<SceneRun> {
    let client = Path::new(env!("CARGO_BIN_EXE_scene-client"));
    let run = run_scene_with_stats(client, scene)?;
    check_against_reference(scene, &run.image, &testkit::reference_path(scene), DEFAULT_TOLERANCE)?;
    Ok(run)
}

#[test]
fn solid() -> Result<()> {
    let run = render_and_compare("solid")?;
    // The tight-stride XRGB buffer must take the zero-copy image path.
    ensure!(
        run.stats.imports.zero_copy_image >= 1,
        "expected a dma-buf image import: {:?}",
        run.stats
    );
    // Opaque content never blends. Shown 1:1 on a CPU rasterizer, a
    // LINEAR-tiled import (memfds on the host) is copied rather than drawn;
    // a modifier-tiled one (udmabufs in the kernel VM) is drawn opaque.
    let draws = run.stats.draws;
    ensure!(
        draws.blended == 0 && draws.copied + draws.opaque >= 1,
        "expected opaque draws or copies only: {draws:?}"
    );
    let host_memfd = std::env::var("TEST_BUFFER_PROVIDER").map_or(true, |p| p == "memfd");
    ensure!(
        !host_memfd || draws.copied >= 1,
        "expected the opaque surface to be copied: {draws:?}"
    );
    // A frame that only copies has no render pass and submits one command
    // buffer (a CPU device sets up its whole state for each one).
    ensure!(
        !host_memfd || draws.one_buffer_frames >= 1,
        "expected a copy-only frame in one command buffer: {draws:?}"
    );
    // On the CPU device such a frame, after the output's first, is written
    // by the compositor thread (no submission).
    ensure!(
        !host_memfd || draws.host_frames >= 1,
        "expected a copy-only frame written on the host: {draws:?}"
    );
    Ok(())
}

/// A frame that only copies is written by the compositor thread on a CPU
/// device; submitted instead (`--submit-every-frame`), the same scene gives
/// the same pixels. "replace" ends on such a frame (the second buffer
/// replaces the first inside the window, over a background drawn before),
/// from a zero-copy image; "odd-stride" shows buffer-path textures, whose
/// queued copies a frame written on the host leaves for later.
#[test]
fn host_frames_match_submitted_frames() -> Result<()> {
    let host_memfd = std::env::var("TEST_BUFFER_PROVIDER").map_or(true, |p| p == "memfd");
    let client = Path::new(env!("CARGO_BIN_EXE_scene-client"));
    for scene in ["replace", "odd-stride"] {
        let written = render_and_compare(scene)?;
        let submitted = run_scene_with_args(client, scene, &["--submit-every-frame"])?;
        ensure!(
            submitted.stats.draws.host_frames == 0,
            "{scene}: --submit-every-frame still wrote frames on the host: {:?}",
            submitted.stats.draws
        );
        ensure!(
            !host_memfd || written.stats.draws.host_frames >= 1,
            "{scene}: expected frames written on the host: {:?}",
            written.stats.draws
        );
        ensure!(
            written.image == submitted.image,
            "{scene}: the frames written on the host differ from the submitted ones"
        );
    }
    Ok(())
}

#[test]
fn gradient() -> Result<()> {
    render_and_compare("gradient").map(drop)
}

#[test]
fn alpha() -> Result<()> {
    let run = render_and_compare("alpha")?;
    // Translucent content must blend, never be copied over what is below.
    ensure!(
        run.stats.draws.blended >= 1,
        "expected blended draws: {:?}",
        run.stats.draws
    );
    Ok(())
}

#[test]
fn overlap() -> Result<()> {
    render_and_compare("overlap").map(drop)
}

#[test]
fn subsurface() -> Result<()> {
    render_and_compare("subsurface").map(drop)
}

#[test]
fn replace() -> Result<()> {
    render_and_compare("replace").map(drop)
}

#[test]
fn odd_stride() -> Result<()> {
    let run = render_and_compare("odd-stride")?;
    if testkit::kernel::in_vm() {
        // Kernel VM tier (real udmabufs): lavapipe exposes
        // VK_EXT_image_drm_format_modifier there, so the image is created with
        // the client's explicit pitch and stays zero-copy.
        ensure!(
            run.stats.imports.zero_copy_image >= 1 && run.stats.imports.gpu_buffer_copy == 0,
            "expected an explicit-pitch dma-buf image import: {:?}",
            run.stats
        );
    } else {
        // Host tier: without explicit pitches a stride that is not a multiple
        // of 64 forces the copy-through-buffer path.
        ensure!(
            run.stats.imports.gpu_buffer_copy >= 1,
            "expected a dma-buf buffer-path import: {:?}",
            run.stats
        );
    }
    Ok(())
}

/// NV12 in its original layout (one fd, planes at offsets that are not page
/// aligned, a stride wider than the rows and not a multiple of 64) has no
/// GPU import path: it takes the CPU path by itself (no --cpu-fallback) and
/// is converted by the compute shader. The aligned layouts are below.
#[test]
fn nv12() -> Result<()> {
    let run = render_and_compare("nv12")?;
    ensure!(
        run.stats.imports.cpu_fallback >= 1,
        "expected the NV12 buffer on the CPU path: {:?}",
        run.stats
    );
    Ok(())
}

/// A Y'CbCr scene whose planes are laid out as the GPU imports them (tight,
/// 64-byte-multiple strides; page-aligned offsets in one fd, or one fd per
/// plane) must be imported zero-copy, sampled through a Y'CbCr conversion,
/// and must not fall back to the CPU path.
fn zero_copy_yuv(scene: &str) -> Result<()> {
    let run = render_and_compare(scene)?;
    let imports = &run.stats.imports;
    ensure!(
        imports.zero_copy_image >= 1 && imports.cpu_fallback == 0 && imports.gpu_buffer_copy == 0,
        "expected the {scene} buffer imported zero-copy: {:?}",
        run.stats
    );
    Ok(())
}

/// NV12, both planes in one fd at page-aligned offsets.
#[test]
fn nv12_planar() -> Result<()> {
    zero_copy_yuv("nv12-planar")
}

/// NV12, each plane in its own fd (a disjoint image).
#[test]
fn nv12_disjoint() -> Result<()> {
    zero_copy_yuv("nv12-disjoint")
}

/// NV16: chroma subsampled horizontally only.
#[test]
fn nv16() -> Result<()> {
    zero_copy_yuv("nv16")
}

/// YUV420: three planes (Y, Cb, Cr), each in its own fd.
#[test]
fn yuv420() -> Result<()> {
    zero_copy_yuv("yuv420")
}

/// P010: 10-bit samples in the high bits of 16-bit words.
#[test]
fn p010() -> Result<()> {
    zero_copy_yuv("p010")
}

/// Six NV12 windows (both planes in one fd, page-aligned), one per
/// `wp_color_representation_v1` coefficients (BT.601, BT.709, BT.2020) and
/// range (limited, full), each showing the same colours encoded its own
/// way: the compositor must convert every surface as it asked.
#[test]
fn nv12_representations() -> Result<()> {
    zero_copy_yuv("nv12-representations")
}

/// The representations scene in NV16.
#[test]
fn nv16_representations() -> Result<()> {
    zero_copy_yuv("nv16-representations")
}

/// The representations scene in YUV420, one fd per plane.
#[test]
fn yuv420_representations() -> Result<()> {
    zero_copy_yuv("yuv420-representations")
}

/// The representations scene in P010: full range at 10 bits is 0..1023,
/// limited 64..940.
#[test]
fn p010_representations() -> Result<()> {
    zero_copy_yuv("p010-representations")
}
