//! Command line interface.
//!
//! The flags are the contract scripts and integration tests rely on, so they are
//! kept flat and explicit rather than grouped into sub-commands.

use std::{path::PathBuf, str::FromStr};

use clap::{Parser, ValueEnum};

/// A headless Wayland compositor with a Vulkan renderer that imports client
/// dma-bufs zero-copy.
#[derive(Debug, Parser)]
#[command(name = "compositor", version, about)]
pub struct Cli {
    /// Which backend drives output and frame timing.
    #[arg(long, value_enum, default_value_t = BackendKind::Headless)]
    pub backend: BackendKind,

    /// Output size in physical pixels, `WIDTHxHEIGHT`.
    #[arg(long, default_value = "1280x720")]
    pub size: OutputSize,

    /// Integer output scale factor.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=8))]
    pub scale: i32,

    /// Refresh rate of the frame clock in Hz.
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

    /// Import every client dma-buf through the CPU fallback (map, copy,
    /// upload), as if the GPU could not import it. For testing that path.
    #[arg(long, env = "COMPOSITOR_CPU_FALLBACK", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub cpu_fallback: bool,

    /// Shell command (`sh -c`) to start once the socket listens, e.g. a
    /// terminal or panel for a session; repeatable. Unlike the client after
    /// `--`, its exit does not end the compositor.
    #[arg(long, value_name = "CMD")]
    pub startup: Vec<String>,

    /// Client to spawn once the socket listens; the compositor exits with its status.
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// Available backends; only headless exists so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// Render into an offscreen target driven by a timer.
    Headless,
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
    fn parses_trailing_command() {
        let cli = Cli::try_parse_from(["compositor", "--size", "64x64", "--", "foo", "--bar"]).unwrap();
        assert_eq!(cli.command, vec!["foo", "--bar"]);
        assert_eq!(cli.size, OutputSize { width: 64, height: 64 });
    }
}
