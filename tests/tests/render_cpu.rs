//! The CPU fallback path (`--cpu-fallback`): every scene, read through the
//! client buffer's CPU mapping and uploaded, must match the same reference
//! images as the GPU paths, and no dma-buf may be counted on a GPU import
//! path. On the host the buffers are sealed memfds; in the kernel
//! VM tier (TEST_BUFFER_PROVIDER=udmabuf) they are real udmabufs, mapped and
//! bracketed with DMA_BUF_IOCTL_SYNC.

use std::path::Path;

use anyhow::{ensure, Result};
use testkit::harness::run_scene_with_args;
use testkit::image_compare::{check_against_reference, DEFAULT_TOLERANCE};

fn cpu_scene(scene: &str) -> Result<()> {
    let client = Path::new(env!("CARGO_BIN_EXE_scene-client"));
    let run = run_scene_with_args(client, scene, &["--cpu-fallback"])?;
    check_against_reference(
        &format!("cpu-{scene}"),
        &run.image,
        &testkit::reference_path(scene),
        DEFAULT_TOLERANCE,
    )?;
    ensure!(
        run.stats.imports.cpu_fallback >= 1,
        "expected CPU fallback imports: {:?}",
        run.stats
    );
    ensure!(
        run.stats.imports.zero_copy_image == 0 && run.stats.imports.gpu_buffer_copy == 0,
        "a dma-buf took a GPU path under --cpu-fallback: {:?}",
        run.stats
    );
    Ok(())
}

#[test]
fn solid() -> Result<()> {
    cpu_scene("solid")
}

#[test]
fn gradient() -> Result<()> {
    cpu_scene("gradient")
}

#[test]
fn alpha() -> Result<()> {
    cpu_scene("alpha")
}

#[test]
fn overlap() -> Result<()> {
    cpu_scene("overlap")
}

#[test]
fn subsurface() -> Result<()> {
    cpu_scene("subsurface")
}

/// The buffer is rewritten and recommitted: the fallback copies it again.
#[test]
fn replace() -> Result<()> {
    cpu_scene("replace")
}

#[test]
fn odd_stride() -> Result<()> {
    cpu_scene("odd-stride")
}

/// NV12 (two planes in one buffer at unaligned offsets), converted from
/// BT.601 limited range by the compute shader.
#[test]
fn nv12() -> Result<()> {
    cpu_scene("nv12")
}
