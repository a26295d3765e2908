//! The Khronos validation layer (Debian's `vulkan-validationlayers`,
//! installed by `scripts/setup-host.sh`) watches the renderer on every import
//! path and must report nothing: no error and no warning. The paths are the
//! zero-copy image, the GPU buffer path (including a stride that is not
//! 64-aligned), the CPU fallback, NV12 (uploaded, then converted by the
//! compute shader), and
//! subsurfaces.
//!
//! Not vacuous: the layer writes its log file when it loads, even when it has
//! nothing to say. A missing file means the layer did not run, and the test
//! fails. Each run must also take the import path it is meant to take (stats).

use std::path::Path;

use anyhow::{ensure, Context, Result};
use testkit::harness::{run_scene_with_env, Stats};

/// (scene, extra compositor options, which import path must have run).
type Case<'a> = (&'a str, &'a [&'a str], fn(&Stats) -> bool);

const CASES: [Case; 6] = [
    ("gradient", &[], |s| s.imports.zero_copy_image >= 1),
    ("odd-stride", &[], |s| {
        s.imports.gpu_buffer_copy + s.imports.zero_copy_image >= 1 && s.imports.cpu_fallback == 0
    }),
    ("nv12", &[], |s| s.imports.cpu_fallback >= 1),
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
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("validation.txt");
        std::fs::write(
            dir.path().join("vk_layer_settings.txt"),
            format!(
                "khronos_validation.debug_action = VK_DBG_LAYER_ACTION_LOG_MSG\n\
                 khronos_validation.report_flags = error,warn\n\
                 khronos_validation.log_filename = {}\n",
                log.display()
            ),
        )?;
        let settings = dir.path().to_str().context("utf-8 temp dir")?;
        let env = [
            ("VK_INSTANCE_LAYERS", "VK_LAYER_KHRONOS_validation"),
            ("VK_LAYER_SETTINGS_PATH", settings),
        ];
        let run = run_scene_with_env(client, scene, extra, &env).with_context(|| format!("{scene} {extra:?}"))?;
        let messages = std::fs::read_to_string(&log).with_context(|| {
            format!(
                "{scene} {extra:?}: no validation log at {}: the layer did not load \
                 (is vulkan-validationlayers installed? scripts/setup-host.sh installs it)",
                log.display()
            )
        })?;
        ensure!(
            messages.trim().is_empty(),
            "{scene} {extra:?}: the validation layer reported:\n{messages}"
        );
        ensure!(
            took_path(&run.stats),
            "{scene} {extra:?} did not take the import path it is meant to check: {:?}",
            run.stats
        );
        println!("{scene} {extra:?}: no validation messages; {:?}", run.stats);
    }
    Ok(())
}
