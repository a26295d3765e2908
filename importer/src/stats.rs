//! Import path accounting: which path each import took, readable by tests
//! (the compositor writes a snapshot into its `--stats` JSON).

use std::sync::atomic::{AtomicU64, Ordering};

/// The path an import took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportPath {
    /// The client's dma-buf memory bound to a sampled VkImage: no copy at all.
    DmabufImage,
    /// The client's dma-buf memory imported as a VkBuffer and copied into a
    /// compositor image on the GPU (the driver's linear layout could not
    /// match the client's stride or offset). No CPU copy.
    DmabufBuffer,
    /// wl_shm (or other CPU memory) uploaded through a staging buffer.
    Shm,
    /// A client dma-buf the GPU could not import, read through its CPU
    /// mapping (importer::cpu) and uploaded through a staging buffer.
    Cpu,
}

impl ImportPath {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportPath::DmabufImage => "zero-copy-image",
            ImportPath::DmabufBuffer => "buffer-copy",
            ImportPath::Shm => "shm-upload",
            ImportPath::Cpu => "cpu-fallback",
        }
    }
}

/// Counters of imports by path; shared, lock-free.
#[derive(Debug, Default)]
pub struct ImportCounters {
    dmabuf_image: AtomicU64,
    dmabuf_buffer: AtomicU64,
    shm: AtomicU64,
    cpu: AtomicU64,
    failed: AtomicU64,
}

/// A point-in-time copy of [`ImportCounters`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportStats {
    pub dmabuf_image: u64,
    pub dmabuf_buffer: u64,
    pub shm: u64,
    pub cpu: u64,
    pub failed: u64,
}

impl ImportCounters {
    pub fn record(&self, path: ImportPath) {
        let c = match path {
            ImportPath::DmabufImage => &self.dmabuf_image,
            ImportPath::DmabufBuffer => &self.dmabuf_buffer,
            ImportPath::Shm => &self.shm,
            ImportPath::Cpu => &self.cpu,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_failure(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ImportStats {
        ImportStats {
            dmabuf_image: self.dmabuf_image.load(Ordering::Relaxed),
            dmabuf_buffer: self.dmabuf_buffer.load(Ordering::Relaxed),
            shm: self.shm.load(Ordering::Relaxed),
            cpu: self.cpu.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}
