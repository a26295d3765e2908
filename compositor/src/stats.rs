//! `--stats`: counters written as JSON at exit for tests and benchmarks.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::render::ImportStats;

#[derive(Debug, Serialize)]
pub struct Stats {
    pub frames: u64,
    pub imports: Imports,
    /// SYNC (issue 4) counters; filled in by main.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<crate::sync::SyncStats>,
    /// Client-buffer reservations: created, destroyed, freed, still buried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservations: Option<crate::render::reservations::ReservationStats>,
    /// CPU-fallback copies made on the worker thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_copies: Option<crate::sync::cpu_copy::CpuCopyStats>,
    /// The lock validator: whether it is compiled in, and the violations it
    /// saw in this process (logged, not raised: see `main`).
    pub lockdep: Lockdep,
    /// SHELL (issue 6): what clients did; filled in by main.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<ShellStats>,
    /// DRM backend: page flips, allocator, zero-copy or fallback copies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drm: Option<crate::backend::drm::DrmStats>,
}

/// `"lockdep": {"enabled": bool, "violations": N}`; the test harness asserts
/// `enabled` and `violations == 0` for every compositor it runs.
#[derive(Debug, Serialize)]
pub struct Lockdep {
    pub enabled: bool,
    pub violations: u64,
}

impl Lockdep {
    pub fn now() -> Lockdep {
        Lockdep {
            enabled: importer::lockdep::ENABLED,
            violations: importer::lockdep::unexpected_violations() as u64,
        }
    }
}

/// Client activity: a client paced by frame callbacks commits every frame.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct ShellStats {
    /// Surface commits (all clients).
    pub commits: u64,
    /// Toplevels that got a first buffer and were mapped.
    pub windows_mapped: u64,
    /// Windows mapped at exit.
    pub windows_at_exit: u64,
}

/// How client buffers reached the GPU; `dmabuf_image` is the zero-copy path.
#[derive(Debug, Serialize)]
pub struct Imports {
    pub dmabuf_image: u64,
    pub dmabuf_buffer: u64,
    pub shm: u64,
    /// Client dma-bufs read through the CPU fallback.
    pub cpu: u64,
    pub failed: u64,
}

impl Stats {
    pub fn new(frames: u64, imports: ImportStats) -> Stats {
        Stats {
            frames,
            imports: Imports {
                dmabuf_image: imports.dmabuf_image,
                dmabuf_buffer: imports.dmabuf_buffer,
                shm: imports.shm,
                cpu: imports.cpu,
                failed: imports.failed,
            },
            sync: None,
            reservations: None,
            cpu_copies: None,
            lockdep: Lockdep::now(),
            shell: None,
            drm: None,
        }
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self).context("serializing stats")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
    }
}
