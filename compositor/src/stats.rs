//! `--stats`: the counters written as JSON at exit, for tests and benchmarks.
//!
//! DOC: one schema
//!
//! These types are the schema: the binary serializes them, and the test kit
//! deserializes the same types (every field required), so a renamed or
//! missing counter fails a test instead of making an assertion pass
//! vacuously.

use std::path::Path;

use anyhow::Context;
use importer::import::{ImportStats, ReservationStats};
use serde::{Deserialize, Serialize};

/// The whole `--stats` file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    /// Frames shown: rendered (headless) or completed page flips (drm).
    pub frames: u64,
    /// How client buffers reached the GPU, by import path.
    pub imports: ImportStats,
    /// How frames put client content on the output: quads (per scissor
    /// rectangle) copied, drawn opaque, drawn blending.
    pub draws: importer::vulkan::recorder::DrawStats,
    /// Acquire and release counters.
    pub buffer_sync: crate::buffer_sync::SyncStats,
    /// Client-buffer reservations: created, destroyed, freed, still buried.
    pub reservations: ReservationStats,
    /// CPU-fallback copies made on the worker thread.
    pub cpu_copies: crate::cpu_copy::CpuCopyStats,
    /// The lock validator: whether it is compiled in, and the violations it
    /// saw in this process (logged, not raised: see `main`).
    pub lockdep: Lockdep,
    /// What clients did.
    pub shell: ShellStats,
    /// Render elements built, and reused from the frame before.
    pub scene: crate::backend::scene::SceneStats,
    /// Live Vulkan-owning objects (textures, host buffers, targets, frame
    /// fences) when the stats were taken: at exit after teardown, or live
    /// in a SIGUSR1 snapshot.
    pub vulkan_objects: importer::vulkan::census::LiveObjects,
    /// linux-dmabuf: the global's version, the devices buffers were meant for.
    pub linux_dmabuf: crate::handlers::dmabuf::LinuxDmabufStats,
    /// Per-client limits: disconnects, stalled commits.
    pub limits: crate::limits::LimitStats,
    /// DRM backend only: page flips, allocator, zero-copy or copied frames.
    pub drm: Option<crate::backend::drm::DrmStats>,
    /// Whether this build has the test hooks (`crate::test_hooks`).
    pub test_hooks: bool,
}

/// `"lockdep": {"enabled": bool, "violations": N}`; the test harness asserts
/// `enabled` and `violations == 0` for every compositor it runs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
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
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct ShellStats {
    /// Surface states applied (all clients): a commit, counted when its
    /// state is applied (a synchronized subsurface's with its parent's).
    pub commits: u64,
    /// Commits whose renderer-state updates took only the synchronized
    /// children they applied, not the committed surface's whole tree.
    pub narrow_updates: u64,
    /// Toplevels that got a first buffer and were mapped.
    pub windows_mapped: u64,
    /// Windows mapped at exit.
    pub windows_at_exit: u64,
    /// Surfaces whose data was still held when the stats were taken (at
    /// exit: 0 once every client is gone; more is a leak).
    pub surfaces_held: u64,
}

impl Stats {
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self).context("serializing stats")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
    }

    /// Parses a `--stats` file's contents.
    pub fn parse(json: &str) -> anyhow::Result<Stats> {
        serde_json::from_str(json).context("parsing --stats JSON")
    }
}
