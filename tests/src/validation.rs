//! The Khronos validation layer as the stand-in for a strict driver.
//!
//! [`Layer`] writes a `vk_layer_settings.txt` that turns on the core checks,
//! synchronization validation and best practices (with the AMD, NVIDIA, Arm
//! and IMG vendor checks), and points the log at a file. [`Layer::check`]
//! then reads the log: it must exist (so the layer did load), hold no error,
//! and hold no warning except those `docs/validation.md` lists with the
//! reason each is kept. That page is the one list; this module reads it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// A validation-layer configuration for one compositor run.
pub struct Layer {
    dir: tempfile::TempDir,
    log: PathBuf,
}

/// What the layer said, by message ID.
#[derive(Debug, Default)]
pub struct Report {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

impl Layer {
    pub fn new() -> Result<Layer> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("validation.txt");
        std::fs::write(
            dir.path().join("vk_layer_settings.txt"),
            format!(
                "khronos_validation.debug_action = VK_DBG_LAYER_ACTION_LOG_MSG\n\
                 khronos_validation.report_flags = error,warn,perf\n\
                 khronos_validation.log_filename = {}\n\
                 khronos_validation.enables = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT,\
                 VK_VALIDATION_FEATURE_ENABLE_BEST_PRACTICES_EXT,VALIDATION_CHECK_ENABLE_VENDOR_SPECIFIC_ALL\n",
                log.display()
            ),
        )?;
        Ok(Layer { dir, log })
    }

    /// The environment that loads the layer with these settings.
    pub fn env(&self) -> Result<[(&'static str, String); 2]> {
        let settings = self.dir.path().to_str().context("utf-8 temp dir")?.to_owned();
        Ok([
            ("VK_INSTANCE_LAYERS", "VK_LAYER_KHRONOS_validation".to_owned()),
            ("VK_LAYER_SETTINGS_PATH", settings),
        ])
    }

    /// Reads the log: an error, or a warning `docs/validation.md` does not
    /// list, fails (naming `what`).
    pub fn check(&self, what: &str) -> Result<Report> {
        let text = std::fs::read_to_string(&self.log).with_context(|| {
            format!(
                "{what}: no validation log at {}: the layer did not load \
                 (is vulkan-validationlayers installed? scripts/setup-host.sh installs it)",
                self.log.display()
            )
        })?;
        let report = parse(&text);
        if !report.errors.is_empty() {
            bail!(
                "{what}: the validation layer reported errors {:?}:\n{text}",
                report.errors
            );
        }
        let allowed = allowed_warnings()?;
        let unlisted: Vec<&String> = report.warnings.iter().filter(|w| !allowed.contains(w)).collect();
        if !unlisted.is_empty() {
            bail!(
                "{what}: warnings not listed in docs/validation.md {unlisted:?} (fix them, or list each with \
                 the reason it is kept):\n{text}"
            );
        }
        Ok(report)
    }
}

/// The message IDs of a layer log, split into errors and warnings (which
/// include performance warnings).
pub fn parse(log: &str) -> Report {
    let mut report = Report::default();
    for line in log.lines().filter(|l| l.contains(" - Validation ")) {
        let Some(id) = line
            .split_once("[ ")
            .and_then(|(_, rest)| rest.split_once(" ]"))
            .map(|(id, _)| id.to_owned())
        else {
            continue;
        };
        let list = if line.contains("Validation Error") {
            &mut report.errors
        } else {
            &mut report.warnings
        };
        if !list.contains(&id) {
            list.push(id);
        }
    }
    report
}

/// The warning IDs `docs/validation.md` keeps: the first backquoted word of
/// each row of its table.
pub fn allowed_warnings() -> Result<Vec<String>> {
    let path: PathBuf = crate::workspace_root().join("docs/validation.md");
    allowed_in(&path)
}

fn allowed_in(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(id, _)| id.to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_warnings_are_told_apart() {
        let log = "\
SYNC-HAZARD-WRITE-AFTER-WRITE(ERROR / SPEC): msgNum: 1 - Validation Error: [ SYNC-HAZARD-WRITE-AFTER-WRITE ] Object 0
    Objects: 1
UNASSIGNED-BestPractices-vkImage-AvoidGeneral(WARN / PERF): msgNum: 2 - Validation Performance Warning: [ UNASSIGNED-BestPractices-vkImage-AvoidGeneral ] x
UNASSIGNED-BestPractices-vkImage-AvoidGeneral(WARN / PERF): msgNum: 2 - Validation Performance Warning: [ UNASSIGNED-BestPractices-vkImage-AvoidGeneral ] y
";
        let r = parse(log);
        assert_eq!(r.errors, ["SYNC-HAZARD-WRITE-AFTER-WRITE"]);
        assert_eq!(r.warnings, ["UNASSIGNED-BestPractices-vkImage-AvoidGeneral"]);
    }

    #[test]
    fn the_documented_list_is_read() {
        let allowed = allowed_warnings().unwrap();
        assert!(allowed.len() >= 5, "{allowed:?}");
        assert!(
            allowed.iter().all(|a| a.starts_with("UNASSIGNED-BestPractices")),
            "{allowed:?}"
        );
    }
}
