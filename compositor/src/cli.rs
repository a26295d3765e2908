//! Command line interface.
//!
//! The flags are the contract scripts and integration tests rely on, so they are
//! kept flat and explicit rather than grouped into sub-commands.

use std::{path::PathBuf, str::FromStr};

use clap::Parser;
use importer::import::ImportPolicy;
use importer::vulkan::DeviceSelection;

pub use crate::backend::drm::DrmAllocator;
use crate::backend::select::default_backend_from_env;
pub use crate::backend::select::BackendKind;
use crate::render::RendererOptions;

/// A Wayland compositor with a Vulkan renderer that imports client dma-bufs
/// zero-copy; headless or on DRM/KMS.
#[derive(Debug, Parser)]
#[command(name = "compositor", version, about)]
pub struct Cli {
    /// Which backend drives output and frame timing. Default: `drm` when
    /// started from a VT with a seat (`XDG_SESSION_TYPE=tty` or `XDG_VTNR`
    /// set) and not nested (neither `WAYLAND_DISPLAY` nor `DISPLAY` set);
    /// `headless` otherwise.
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,

    /// drm: the card node to drive (default: the seat's primary GPU from udev).
    #[arg(long, value_name = "/dev/dri/cardN")]
    pub drm_device: Option<PathBuf>,

    /// drm: how scan-out buffers are allocated. `auto` tries GBM, then dumb
    /// buffers exported with PRIME.
    #[arg(long, value_enum, default_value_t = DrmAllocator::Auto)]
    pub drm_allocator: DrmAllocator,

    /// Output size in physical pixels, `WIDTHxHEIGHT` (headless; drm uses
    /// the connector's preferred mode).
    #[arg(long, default_value = "1280x720")]
    pub size: OutputSize,

    /// Integer output scale factor.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=8))]
    pub scale: i32,

    /// Refresh rate of the frame clock in Hz (headless; drm is paced by page flips).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub refresh: u32,

    /// Wayland socket name (in `$XDG_RUNTIME_DIR`); picked automatically if absent.
    #[arg(long)]
    pub socket: Option<String>,

    /// Write the last rendered frame as an RGBA8 PNG here on exit.
    #[arg(long)]
    pub screenshot: Option<PathBuf>,

    /// Write frame and import counters as JSON here on exit.
    #[arg(long)]
    pub stats: Option<PathBuf>,

    /// Exit successfully after this many rendered frames.
    #[arg(long)]
    pub exit_after_frames: Option<u64>,

    /// Vulkan device to use: a name substring or an index.
    #[arg(long, env = "COMPOSITOR_VK_DEVICE")]
    pub vk_device: Option<String>,

    /// Import dma-bufs through the buffer (copy) path even when image import works.
    #[arg(long)]
    pub force_buffer_path: bool,

    /// Submit every frame to the Vulkan queue. By default, on a CPU device
    /// (lavapipe), a frame that only copies opaque client rectangles 1:1 is
    /// written by the compositor thread into the mapped output instead
    /// (docs/performance.md). For comparing the two paths.
    #[arg(long)]
    pub submit_every_frame: bool,

    /// Import every client dma-buf through the CPU fallback (map, copy,
    /// upload), as if the GPU could not import it. For testing that path.
    #[arg(long, env = "COMPOSITOR_CPU_FALLBACK", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub cpu_fallback: bool,

    /// CPU-fallback copies of at least this many bytes run on a worker
    /// thread while the commit is held; smaller ones on the event loop.
    #[arg(long, env = "COMPOSITOR_CPU_COPY_THRESHOLD", value_name = "BYTES", default_value_t = ImportPolicy::DEFAULT_WORKER_THRESHOLD)]
    pub cpu_copy_threshold: u64,

    #[command(flatten)]
    pub limits: crate::limits::ClientLimits,

    /// Seconds a commit may wait for its fence, acquire point or copy
    /// before the client is logged as stalled (it is not disconnected).
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub stall_timeout: std::time::Duration,

    /// Shell command (`sh -c`) to start once the socket listens, e.g. a
    /// terminal or panel for a session; repeatable. Unlike the client after
    /// `--`, its exit does not end the compositor.
    #[arg(long, value_name = "CMD")]
    pub startup: Vec<String>,

    /// Client to spawn once the socket listens; the compositor exits with its status.
    #[arg(last = true)]
    pub command: Vec<String>,
}

impl Cli {
    /// `--backend`, or the default rule ([`crate::backend::select`]).
    pub fn backend_kind(&self) -> BackendKind {
        self.backend.unwrap_or_else(default_backend_from_env)
    }

    /// The renderer's options from the command line and its environment
    /// variables (`COMPOSITOR_VK_DEVICE`, `COMPOSITOR_CPU_FALLBACK`,
    /// `COMPOSITOR_CPU_COPY_THRESHOLD`).
    pub fn renderer_options(&self) -> RendererOptions {
        RendererOptions {
            device: DeviceSelection::from_option(self.vk_device.as_deref()),
            kms_node: None,
            import: ImportPolicy {
                force_buffer_path: self.force_buffer_path,
                cpu_fallback: self.cpu_fallback,
                worker_threshold: self.cpu_copy_threshold,
            },
            submit_every_frame: self.submit_every_frame,
        }
    }

    /// What an embedder without a command line gets: the defaults, with the
    /// environment variables above applied.
    pub fn from_env() -> Result<Cli, clap::Error> {
        Cli::try_parse_from(["compositor"])
    }
}

/// A `WIDTHxHEIGHT` pair, validated at parse time so bad input fails before any setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputSize {
    pub width: i32,
    pub height: i32,
}

impl FromStr for OutputSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (w, h) = s
            .split_once(['x', 'X'])
            .ok_or_else(|| format!("expected WIDTHxHEIGHT, got {s:?}"))?;
        let parse = |v: &str| -> Result<i32, String> {
            let n: i32 = v.trim().parse().map_err(|e| format!("{v:?}: {e}"))?;
            if !(1..=16384).contains(&n) {
                return Err(format!("{n} is out of range 1..=16384"));
            }
            Ok(n)
        };
        Ok(OutputSize {
            width: parse(w)?,
            height: parse(h)?,
        })
    }
}

/// A non-negative number of seconds, fractions allowed.
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = text.parse().map_err(|e| format!("{text:?}: {e}"))?;
    std::time::Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_size() {
        assert_eq!(
            "320x240".parse::<OutputSize>().unwrap(),
            OutputSize {
                width: 320,
                height: 240
            }
        );
        assert!("320".parse::<OutputSize>().is_err());
        assert!("0x10".parse::<OutputSize>().is_err());
    }

    #[test]
    fn parses_limits_and_stall_timeout() {
        let cli = Cli::try_parse_from(["compositor"]).unwrap();
        assert_eq!(cli.limits, crate::limits::ClientLimits::default());
        assert_eq!(cli.stall_timeout, std::time::Duration::from_secs(10));
        let cli = Cli::try_parse_from([
            "compositor",
            "--max-client-held-commits",
            "6",
            "--stall-timeout",
            "0.25",
        ])
        .unwrap();
        assert_eq!(cli.limits.held_commits, 6);
        assert_eq!(cli.stall_timeout, std::time::Duration::from_millis(250));
        assert!(Cli::try_parse_from(["compositor", "--stall-timeout", "-1"]).is_err());
        assert!(Cli::try_parse_from(["compositor", "--max-client-fds", "x"]).is_err());
    }

    #[test]
    fn parses_trailing_command() {
        let cli = Cli::try_parse_from(["compositor", "--size", "64x64", "--", "foo", "--bar"]).unwrap();
        assert_eq!(cli.command, vec!["foo", "--bar"]);
        assert_eq!(cli.size, OutputSize { width: 64, height: 64 });
    }

    #[test]
    fn parses_drm_options() {
        let cli = Cli::try_parse_from([
            "compositor",
            "--backend",
            "drm",
            "--drm-device",
            "/dev/dri/card1",
            "--drm-allocator",
            "dumb",
        ])
        .unwrap();
        assert_eq!(cli.backend_kind(), BackendKind::Drm);
        assert_eq!(cli.drm_device.as_deref(), Some(std::path::Path::new("/dev/dri/card1")));
        assert_eq!(cli.drm_allocator, DrmAllocator::Dumb);
        let cli = Cli::try_parse_from(["compositor"]).unwrap();
        assert_eq!((cli.backend, cli.drm_allocator), (None, DrmAllocator::Auto));
    }
}
