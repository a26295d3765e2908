//! The Khronos validation layer (Debian's `vulkan-validationlayers`,
//! installed by `scripts/setup-host.sh`), with synchronization validation and
//! best practices on (`testkit::validation`), watches the renderer on every
//! import path: no error, and no warning `docs/validation.md` does not list
//! with its reason. The paths are the zero-copy image, the GPU buffer path
//! (including a stride that is not 64-aligned), the CPU fallback, NV12
//! (uploaded, then converted by the compute shader), a three-plane YUV420
//! buffer with one fd per plane (a zero-copy disjoint image sampled through
//! a Y'CbCr conversion), and subsurfaces.
//!
//! Not vacuous: the layer writes its log file when it loads, even when it has
//! nothing to say. A missing file means the layer did not run, and the test
//! fails. Each run must also take the import path it is meant to take (stats).

use std::path::Path;

use anyhow::{ensure, Context, Result};
use testkit::harness::{run_scene_with_env, Stats};
use testkit::validation::Layer;

/// (scene, extra compositor options, which import path must have run).
type Case<'a> = (&'a str, &'a [&'a str], fn(&Stats) -> bool);

const CASES: [Case; 7] = [
    ("gradient", &[], |s| s.imports.zero_copy_image >= 1),
    ("odd-stride", &[], |s| {
        s.imports.gpu_buffer_copy + s.imports.zero_copy_image >= 1 && s.imports.cpu_fallback == 0
    }),
    ("nv12", &[], |s| s.imports.cpu_fallback >= 1),
    ("yuv420", &[], |s| {
        s.imports.zero_copy_image >= 1 && s.imports.cpu_fallback == 0 && s.imports.gpu_buffer_copy == 0
    }),
    ("gradient", &["--force-buffer-path"], |s| s.imports.gpu_buffer_copy >= 1),
    ("alpha", &["--cpu-fallback"], |s| s.imports.cpu_fallback >= 1),
    ("subsurface", &[], |s| {
        s.imports.zero_copy_image + s.imports.gpu_buffer_copy + s.imports.shm_upload >= 1
    }),
];

#[test]
fn validation_layer_reports_nothing_on_any_import_path() -> Result<()> {
    let client = Path::new(env!("CARGO_BIN_EXE_scene-client"));
    for (scene, extra, took_path) in CASES {
        let layer = Layer::new()?;
        let env = layer.env()?;
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let what = format!("{scene} {extra:?}");
        let run = run_scene_with_env(client, scene, extra, &env).with_context(|| what.clone())?;
        let report = layer.check(&what)?;
        ensure!(
            took_path(&run.stats),
            "{what} did not take the import path it is meant to check: {:?}",
            run.stats
        );
        println!(
            "{what}: no errors; kept warnings {:?}; {:?}",
            report.warnings, run.stats.imports
        );
    }
    Ok(())
}
