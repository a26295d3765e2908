//! `bench-client`: the benchmark's client workload, the same binary against
//! every compositor it is compared on (`bench-compare`, `scripts/bench.sh`).
//!
//! One xdg_toplevel whose main surface is a dma-buf; either `--surfaces N`
//! dma-buf subsurfaces of `--size` px in a grid over it (re-attached each
//! frame, two buffers each, with full damage, or with `--damage small` only
//! the first one re-attached with a 16×16 damage), or, with `--surfaces 0`,
//! the main surface itself re-attached each frame (`--main WxH`,
//! `--fullscreen` to ask for fullscreen). With `--static` the subsurfaces
//! get one buffer each, attached once and stacked at one spot, and only
//! the main surface (`--main`, 256×256 by default) changes each frame: the
//! memory scenario, where what counts is what holding the imports costs.
//! Paced by frame callbacks on the main surface; each commit asks for
//! `wp_presentation` feedback.
//!
//! Output on stdout: `MEASURE` once the warm-up is over (the caller starts
//! its CPU clock), then one JSON line when the measured time is over:
//! frames committed, frames presented, presentation rate, and the
//! commit-to-present latency (median and p99, ms, from the commit to the
//! presentation timestamp, both on the compositor's presentation clock,
//! `wp_presentation.clock_id`).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use compositor::cli::OutputSize;
use testkit::buffer::DmabufBuffer;
use testkit::client::{Client, State};
use testkit::pixel::Format;
use testkit::provider::provider_from_env;
use testkit::window::{Subsurface, Window};
use wayland_client::{Connection, Dispatch, QueueHandle};
use wayland_protocols::wp::presentation_time::client::wp_presentation_feedback::{self, WpPresentationFeedback};

/// Width of the main surface's frame around the subsurfaces (px).
const BORDER: u32 = 8;

/// How much of the subsurfaces changes each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Damage {
    /// Every subsurface re-attached, fully damaged.
    Full,
    /// Only the first subsurface re-attached, with a 16x16 damage.
    Small,
}

#[derive(Debug, clap::Parser)]
#[command(about = "The benchmark's client workload (see the module documentation)")]
struct Args {
    /// Dma-buf subsurfaces in a grid over the main surface (0: the main surface alone changes).
    #[arg(long, default_value_t = 16)]
    surfaces: u32,
    /// Width and height of each subsurface (px).
    #[arg(long, default_value_t = 120)]
    size: u32,
    #[arg(long, value_enum, default_value_t = Damage::Full)]
    damage: Damage,
    /// Main surface size WxH (default: the grid plus its border; 256x256 with --static).
    #[arg(long)]
    main: Option<OutputSize>,
    /// Ask for fullscreen.
    #[arg(long)]
    fullscreen: bool,
    /// One buffer per subsurface, attached once, stacked at one spot; only the main surface changes.
    #[arg(long = "static")]
    still: bool,
    /// Warm-up before MEASURE (ms).
    #[arg(long, default_value_t = 2000)]
    warmup: u64,
    /// Measured time (s).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

/// What the presentation feedback of one commit reported.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Presented { latency_ms: f64 },
    Discarded,
}

/// One commit's feedback slot: its commit time and, later, its outcome.
struct Slot {
    committed: libc::timespec,
    measured: bool,
    results: Arc<Mutex<Vec<Outcome>>>,
}

/// Now on `clock` (the compositor's presentation clock, `wp_presentation.clock_id`:
/// CLOCK_MONOTONIC for us, CLOCK_MONOTONIC_RAW for Weston), so commit and
/// presentation times are on one clock.
fn now(clock: libc::clockid_t) -> libc::timespec {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out pointer; an unknown clock leaves it zero.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts
}

impl Dispatch<WpPresentationFeedback, Slot> for State {
    fn event(
        _: &mut Self,
        _: &WpPresentationFeedback,
        event: wp_presentation_feedback::Event,
        slot: &Slot,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let outcome = match event {
            wp_presentation_feedback::Event::Presented {
                tv_sec_hi,
                tv_sec_lo,
                tv_nsec,
                ..
            } => {
                let presented =
                    ((u64::from(tv_sec_hi) << 32) | u64::from(tv_sec_lo)) as f64 * 1e3 + f64::from(tv_nsec) / 1e6;
                let committed = slot.committed.tv_sec as f64 * 1e3 + slot.committed.tv_nsec as f64 / 1e6;
                Outcome::Presented {
                    latency_ms: presented - committed,
                }
            }
            wp_presentation_feedback::Event::Discarded => Outcome::Discarded,
            _ => return,
        };
        if slot.measured {
            slot.results.lock().unwrap_or_else(|p| p.into_inner()).push(outcome);
        }
    }
}

/// A surface and the buffers it alternates between (one for a static one).
struct Shown {
    surface: wayland_client::protocol::wl_surface::WlSurface,
    buffers: Vec<DmabufBuffer>,
}

impl Shown {
    fn attach(&self, frame: usize) {
        self.surface
            .attach(Some(&self.buffers[frame % self.buffers.len()].buffer), 0, 0);
    }
}

fn buffers(client: &Client, count: usize, w: u32, h: u32, color: [u8; 4]) -> Result<Vec<DmabufBuffer>> {
    let provider = provider_from_env()?;
    let paint = |_, _| Format::Xrgb8888.encode(color);
    (0..count)
        .map(|_| DmabufBuffer::new(client, &*provider, w, h, Format::Xrgb8888, w * 4, &paint))
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<()> {
    let args = <Args as clap::Parser>::parse();
    let (warmup, seconds) = (Duration::from_millis(args.warmup), Duration::from_secs(args.seconds));
    let small_damage = args.damage == Damage::Small;
    let mut client = Client::connect()?;
    let presentation = client
        .globals
        .presentation
        .clone()
        .context("the compositor offers no wp_presentation")?;
    let clock = client
        .state
        .presentation_clock
        .map_or(libc::CLOCK_MONOTONIC, |c| c as libc::clockid_t);
    let window = Window::new(&mut client, "bench")?;
    if args.fullscreen {
        window.toplevel.set_fullscreen(None);
    }
    let cols = (f64::from(args.surfaces).sqrt().ceil() as u32).max(1);
    let rows = args.surfaces.div_ceil(cols).max(1);
    // The subsurfaces sit inside a BORDER-wide frame of the main surface: a
    // fully occluded main surface gets no frame callbacks from compositors
    // that skip hidden surfaces (Weston), and the frame callbacks pace us.
    let (mw, mh) = match args.main {
        Some(m) => (m.width as u32, m.height as u32),
        None if args.still => (256, 256),
        None => (cols * args.size + 2 * BORDER, rows * args.size + 2 * BORDER),
    };
    let main = Shown {
        surface: window.surface.clone(),
        buffers: buffers(&client, 2, mw, mh, [30, 30, 90, 255])?,
    };
    let sub_buffers = if args.still { 1 } else { 2 };
    window.set_geometry(mw, mh);
    let mut subs = Vec::new();
    for i in 0..args.surfaces {
        let sub = Subsurface::new(&client, &window.surface);
        let (x, y) = if args.still {
            (0, 0)
        } else {
            ((i % cols) * args.size, (i / cols) * args.size)
        };
        sub.set_position((BORDER + x) as i32, (BORDER + y) as i32);
        let shade = (40 + (i * 3) % 200) as u8;
        let shown = Shown {
            surface: sub.surface.clone(),
            buffers: buffers(
                &client,
                sub_buffers,
                args.size,
                args.size,
                [shade, 200 - shade / 2, 60, 255],
            )?,
        };
        shown.attach(0);
        shown.surface.damage_buffer(0, 0, i32::MAX, i32::MAX);
        shown.surface.commit();
        subs.push((sub, shown));
    }
    main.attach(0);
    main.surface.damage_buffer(0, 0, i32::MAX, i32::MAX);
    window.wait_frame(&mut client)?;

    let results = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let (mut measuring, mut committed, mut frame) = (false, 0u64, 0usize);
    loop {
        let elapsed = start.elapsed();
        if !measuring && elapsed >= warmup {
            measuring = true;
            println!("MEASURE");
            std::io::stdout().flush()?;
        }
        if elapsed >= warmup + seconds {
            break;
        }
        frame += 1;
        if subs.is_empty() || args.still {
            main.attach(frame);
            main.surface.damage_buffer(0, 0, i32::MAX, i32::MAX);
        } else {
            let shown: Vec<&Shown> = if small_damage {
                vec![&subs[0].1]
            } else {
                subs.iter().map(|(_, s)| s).collect()
            };
            for s in shown {
                s.attach(frame);
                if small_damage {
                    s.surface.damage_buffer(8, 8, 16, 16);
                } else {
                    s.surface.damage_buffer(0, 0, i32::MAX, i32::MAX);
                }
                s.surface.commit();
            }
        }
        let slot = Slot {
            committed: now(clock),
            measured: measuring,
            results: results.clone(),
        };
        presentation.feedback(&main.surface, &client.qh, slot);
        let flag = window.frame(&client);
        main.surface.commit();
        if measuring {
            committed += 1;
        }
        client
            .wait_flag("frame callback", &flag)
            .context("the compositor stopped sending frame callbacks")?;
    }
    // Feedback of the last commits arrives with later frames: one roundtrip
    // and one more frame collect what is due.
    let flag = window.frame(&client);
    main.surface.commit();
    client.wait_flag("the final frame callback", &flag)?;
    client.roundtrip()?;

    let outcomes = results.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut latencies: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Presented { latency_ms } => Some(*latency_ms),
            Outcome::Discarded => None,
        })
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let presented = latencies.len();
    let discarded = outcomes.len() - presented;
    let json = serde_json::json!({
        "committed": committed,
        "presented": presented,
        "discarded": discarded,
        "seconds": seconds.as_secs_f64(),
        "fps": presented as f64 / seconds.as_secs_f64(),
        "latency_ms": {"median": percentile(&latencies, 0.5), "p99": percentile(&latencies, 0.99)},
        "presentation_clock": client.state.presentation_clock,
        "surfaces": args.surfaces,
    });
    println!("{json}");
    drop(subs);
    Ok(())
}
