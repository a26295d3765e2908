//! Hooks the integration tests use to put the compositor into states they
//! cannot reach from a client: hold a CPU copy on the worker, plant a locking
//! violation, force the scan-out copy fallback, lose the GPU device,
//! name a linux-dmabuf sampling device where there is none.
//!
//! DOC: they exist only in test builds
//!
//! Everything here reads its environment variable only when the crate is
//! built with the `test-hooks` cargo feature, which the test scripts enable
//! (`scripts/test.sh`, `scripts/vm/test.sh`). Without it every hook is inert
//! and the variable names are not in the binary (`scripts/test.sh` checks the
//! release binary for them).

/// A gate the CPU copy worker waits at before each job, so a test can keep
/// a copy "in progress" for as long as it likes without sleeping.
#[derive(Debug)]
pub struct CopyGate {
    #[cfg(feature = "test-hooks")]
    fifo: std::path::PathBuf,
}

/// `COMPOSITOR_COPY_GATE=<path of a FIFO>`: the worker opens the FIFO and
/// reads one byte before each job.
pub fn copy_gate() -> Option<CopyGate> {
    #[cfg(feature = "test-hooks")]
    {
        std::env::var_os("COMPOSITOR_COPY_GATE").map(|fifo| CopyGate { fifo: fifo.into() })
    }
    #[cfg(not(feature = "test-hooks"))]
    None
}

impl CopyGate {
    /// Blocks until the test writes a byte into the FIFO. Locks: none may be
    /// held (`lockdep::might_block`).
    pub fn wait(&self) {
        #[cfg(feature = "test-hooks")]
        {
            use std::io::Read;
            importer::lockdep::might_block("CPU copy gate (test hook)");
            let mut byte = [0u8; 1];
            match std::fs::File::open(&self.fifo).and_then(|mut f| f.read_exact(&mut byte)) {
                Ok(()) => tracing::debug!("copy gate opened"),
                Err(e) => tracing::warn!("copy gate {}: {e}", self.fifo.display()),
            }
        }
    }
}

/// `COMPOSITOR_LOCKDEP_PLANT=1`: plants one violation at start-up (a
/// blocking call under a reservation), so a test can show the harness's
/// lock-rule check fails when the validator counted one.
pub fn plant_lockdep_violation() {
    #[cfg(feature = "test-hooks")]
    if std::env::var_os("COMPOSITOR_LOCKDEP_PLANT").is_some_and(|v| v == "1") {
        let planted: importer::reservation::Reservation<(), ()> = importer::reservation::Reservation::new();
        let guard = planted.lock();
        importer::lockdep::might_block("planted violation (test hook)");
        drop(guard);
    }
}

/// `COMPOSITOR_DRM_FORCE_COPY=1`: the DRM backend renders offscreen and
/// copies into the scan-out buffers, as when it cannot render into them.
pub fn drm_force_copy() -> bool {
    #[cfg(feature = "test-hooks")]
    {
        std::env::var_os("COMPOSITOR_DRM_FORCE_COPY").is_some_and(|v| v == "1")
    }
    #[cfg(not(feature = "test-hooks"))]
    false
}

/// `COMPOSITOR_DEVICE_LOST_AT_FRAME=N`: from the N-th rendered frame on
/// (counting from 1), the backend reports `VK_ERROR_DEVICE_LOST` for the
/// frame after it was submitted, as if the GPU had been lost running it.
pub fn device_lost_now() -> bool {
    #[cfg(feature = "test-hooks")]
    {
        use std::sync::atomic::{AtomicU64, Ordering};
        static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
        static FRAMES: AtomicU64 = AtomicU64::new(0);
        let at = *AT.get_or_init(|| {
            std::env::var("COMPOSITOR_DEVICE_LOST_AT_FRAME")
                .ok()
                .and_then(|v| v.parse().ok())
        });
        let Some(at) = at else { return false };
        FRAMES.fetch_add(1, Ordering::Relaxed) + 1 >= at
    }
    #[cfg(not(feature = "test-hooks"))]
    false
}

/// `COMPOSITOR_DMABUF_DEVICE=<major>:<minor>`: the device number linux-dmabuf
/// names as its sampling device, for protocol tests on a machine with no
/// DRM node to name (the buffers are imported by the renderer as always).
pub fn dmabuf_device() -> Option<libc::dev_t> {
    #[cfg(feature = "test-hooks")]
    {
        let value = std::env::var("COMPOSITOR_DMABUF_DEVICE").ok()?;
        let (major, minor) = value.split_once(':')?;
        Some(libc::makedev(major.parse().ok()?, minor.parse().ok()?))
    }
    #[cfg(not(feature = "test-hooks"))]
    None
}

/// Whether this build has the hooks (written to `--stats`, so a test that
/// needs one can say so instead of failing obscurely).
pub const ENABLED: bool = cfg!(feature = "test-hooks");
