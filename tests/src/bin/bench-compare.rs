//! `bench-compare`: runs the same client workload (`bench-client`) against
//! several compositors and compares what each compositor process costs.
//!
//! For every scenario, compositor and run: start the compositor (a shell
//! command template, `exec`-ing it so its pid is the compositor's), wait
//! until its socket takes a connection, start `bench-client`, and between
//! the client's `MEASURE` line and its result line read the CPU time of the
//! compositor process and its descendants (each process's CPU-time clock, in
//! nanoseconds: every thread, so a software rasterizer's threads count too). Reported per
//! scenario: CPU per presented frame, presented frames per second,
//! commit-to-present latency (median, p99) and resident memory (VmHWM), as
//! the median of the runs with min and max. The runs of a scenario alternate
//! between the compositors (rounds of one run each, each round starting
//! with the next compositor, so none always runs first). The first compositor's
//! CPU per frame is compared with each other one's twice: the ratio of the
//! medians, and the paired ratio, the median (with min and max) of the
//! ratios of the two runs of each round, which were back to back and so
//! share the machine's drift.
//!
//! Output: a Markdown table on stdout, `<out>/bench.json` and `<out>/bench.png`.
//! `scripts/bench.sh` installs the peer and runs this with the defaults.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use compositor::cli::OutputSize;
use serde::Serialize;

/// One scenario: a name and the client's arguments.
struct Scenario {
    name: &'static str,
    client: &'static [&'static str],
}

const SCENARIOS: [Scenario; 7] = [
    Scenario {
        name: "1 surface",
        client: &["--surfaces", "1"],
    },
    Scenario {
        name: "16 surfaces",
        client: &["--surfaces", "16"],
    },
    Scenario {
        name: "64 surfaces",
        client: &["--surfaces", "64"],
    },
    Scenario {
        name: "64 surfaces, one 16x16 damage",
        client: &["--surfaces", "64", "--damage", "small"],
    },
    Scenario {
        name: "fullscreen 1920x1080",
        client: &["--surfaces", "0", "--main", "1920x1080", "--fullscreen"],
    },
    Scenario {
        name: "one 3840x2160 surface",
        client: &["--surfaces", "0", "--main", "3840x2160"],
    },
    Scenario {
        name: "memory: 64 imported 4096x4096",
        client: &["--surfaces", "64", "--size", "4096", "--static"],
    },
];

#[derive(Debug, clap::Parser)]
#[command(
    about = "Runs the same client workload against several compositors and compares their process cost",
    after_help = "COMMAND is run with `sh -c \"exec COMMAND\"` after replacing {socket}, {width}, {height} and \
                  {refresh}; it must exec the compositor, so that the measured pid is the compositor's."
)]
struct Args {
    /// NAME=COMMAND, repeated; the first is the one the ratios are for.
    #[arg(long = "compositor", value_name = "NAME=COMMAND", value_parser = parse_compositor, required = true)]
    compositors: Vec<(String, String)>,
    /// The client workload binary.
    #[arg(long, default_value = "target/release/bench-client")]
    client: PathBuf,
    /// Runs per scenario and compositor (median, min and max are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Measured seconds per run, after the client's warm-up.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Where logs, bench.json and bench.png go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Only the scenarios whose name contains this text.
    #[arg(long)]
    only: Option<String>,
    /// Output size WxH given to every compositor.
    #[arg(long, default_value = "1920x1080")]
    size: OutputSize,
    /// Output refresh rate (Hz) given to every compositor.
    #[arg(long, default_value_t = 60)]
    refresh: u32,
}

fn parse_compositor(v: &str) -> Result<(String, String), String> {
    let (name, cmd) = v
        .split_once('=')
        .ok_or_else(|| format!("{v:?}: expected NAME=COMMAND"))?;
    Ok((name.to_owned(), cmd.to_owned()))
}

/// CPU time in nanoseconds of `pid` and its descendants, every thread,
/// the ones that already exited included: each process's CPU-time clock
/// (`clock_getcpuclockid`), which the kernel keeps in nanoseconds. The
/// clock-tick figures of `/proc/<pid>/stat` would move in 10 ms steps, a
/// few hundredths of a millisecond per frame over a run.
fn cpu_ns(pid: u32) -> Result<u64> {
    let mut total = 0;
    let mut stack = vec![pid];
    let children = parent_map()?;
    while let Some(p) = stack.pop() {
        // A descendant may exit between the listing and the read: skipped.
        if let Some(ns) = process_cpu_ns(p) {
            total += ns;
        }
        stack.extend(children.get(&p).into_iter().flatten());
    }
    Ok(total)
}

/// One process's CPU time, all its threads, in nanoseconds.
fn process_cpu_ns(pid: u32) -> Option<u64> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    let mut clock: libc::clockid_t = 0;
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: plain libc calls with valid out-pointers.
    unsafe {
        if libc::clock_getcpuclockid(pid, &mut clock) != 0 || libc::clock_gettime(clock, &mut ts) != 0 {
            return None;
        }
    }
    Some(u64::try_from(ts.tv_sec).ok()? * 1_000_000_000 + u64::try_from(ts.tv_nsec).ok()?)
}

/// pid → child pids, for every process.
fn parent_map() -> Result<BTreeMap<u32, Vec<u32>>> {
    let mut map: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|v| v.parse::<u32>().ok()) {
            map.entry(ppid).or_default().push(pid);
        }
    }
    Ok(map)
}

/// A `/proc/<pid>/status` figure (KiB) summed over `pid` and its
/// descendants: `VmHWM` (peak resident memory, the client's shared buffers
/// included once the compositor maps them) or `RssAnon` (resident memory
/// the compositor owns: its heap, copies and staging).
fn status_kib(pid: u32, key: &str) -> Result<u64> {
    let children = parent_map()?;
    let mut stack = vec![pid];
    let mut total = 0;
    while let Some(p) = stack.pop() {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) {
            total += status
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
        stack.extend(children.get(&p).into_iter().flatten());
    }
    Ok(total)
}

/// One run's figures.
#[derive(Debug, Clone, Copy, Serialize)]
struct Run {
    /// Which round of the alternation it ran in (0-based).
    round: usize,
    cpu_ms_per_frame: f64,
    fps: f64,
    latency_median_ms: f64,
    latency_p99_ms: f64,
    rss_mib: f64,
    private_mib: f64,
}

struct Started {
    child: Child,
    _runtime: tempfile::TempDir,
    runtime: PathBuf,
    socket: String,
}

fn start_compositor(template: &str, args: &Args, log: &Path) -> Result<Started> {
    let runtime = tempfile::tempdir()?;
    let socket = "bench-0".to_owned();
    let cmd = template
        .replace("{socket}", &socket)
        .replace("{width}", &args.size.width.to_string())
        .replace("{height}", &args.size.height.to_string())
        .replace("{refresh}", &args.refresh.to_string());
    let logf = std::fs::File::create(log)?;
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {cmd}"))
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env_remove("WAYLAND_DISPLAY")
        .stdout(logf.try_clone()?)
        .stderr(logf)
        .spawn()
        .with_context(|| format!("starting {cmd}"))?;
    let path = runtime.path().join(&socket);
    let deadline = Instant::now() + Duration::from_secs(60);
    // The socket exists before the compositor accepts; a connection that the
    // compositor answers (the registry comes back) means it is up.
    loop {
        if let Ok(stream) = UnixStream::connect(&path) {
            if testkit::client::Client::connect_to(&path).is_ok() {
                drop(stream);
                break;
            }
        }
        if Instant::now() > deadline {
            bail!(
                "{cmd}: no socket at {} after 60 s (log: {})",
                path.display(),
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Started {
        child,
        runtime: runtime.path().to_owned(),
        _runtime: runtime,
        socket,
    })
}

fn stop(mut s: Started) {
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = s.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = s.child.kill();
    let _ = s.child.wait();
}

fn run_once(args: &Args, template: &str, (scenario, round): (&Scenario, usize), log: &Path) -> Result<Run> {
    let comp = start_compositor(template, args, log)?;
    let pid = comp.child.id();
    let result = (|| -> Result<Run> {
        let mut client = Command::new(&args.client)
            .args(scenario.client)
            .args(["--seconds", &args.seconds.to_string()])
            .env("XDG_RUNTIME_DIR", &comp.runtime)
            .env("WAYLAND_DISPLAY", &comp.socket)
            .stdout(Stdio::piped())
            .spawn()
            .context("starting bench-client")?;
        let out = BufReader::new(client.stdout.take().context("client stdout")?);
        let (mut t0, mut c0, mut private_kib) = (None, 0, 0);
        let mut result = None;
        for line in out.lines() {
            let line = line?;
            if line == "MEASURE" {
                c0 = cpu_ns(pid)?;
                t0 = Some(Instant::now());
            } else if line.starts_with('{') {
                let c1 = cpu_ns(pid)?;
                private_kib = status_kib(pid, "RssAnon")?;
                let json: serde_json::Value = serde_json::from_str(&line)?;
                result = Some((c1 - c0, t0.context("no MEASURE line")?.elapsed(), json));
            }
        }
        let status = client.wait()?;
        let (ns, _wall, json) = result.with_context(|| format!("bench-client gave no result ({status})"))?;
        let presented = json["presented"].as_f64().unwrap_or(0.0);
        if presented == 0.0 {
            bail!("no frame was presented");
        }
        Ok(Run {
            round,
            cpu_ms_per_frame: ns as f64 / 1e6 / presented,
            fps: json["fps"].as_f64().unwrap_or(0.0),
            latency_median_ms: json["latency_ms"]["median"].as_f64().unwrap_or(f64::NAN),
            latency_p99_ms: json["latency_ms"]["p99"].as_f64().unwrap_or(f64::NAN),
            rss_mib: status_kib(pid, "VmHWM")? as f64 / 1024.0,
            private_mib: private_kib as f64 / 1024.0,
        })
    })();
    stop(comp);
    result
}

/// Median, min and max of one figure over the runs.
#[derive(Debug, Clone, Copy, Serialize)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

fn spread(runs: &[Run], f: impl Fn(&Run) -> f64) -> Spread {
    spread_of(runs.iter().map(f).collect()).expect("a scenario's figures have at least one run")
}

/// Median (the upper one of an even count), min and max; `None` when empty.
fn spread_of(mut v: Vec<f64>) -> Option<Spread> {
    v.sort_by(|a, b| a.total_cmp(b));
    Some(Spread {
        median: *v.get(v.len() / 2)?,
        min: v[0],
        max: v[v.len() - 1],
    })
}

/// The order of the compositors (indices) in round `round` of `count`:
/// round 0 is 0, 1, 2 ..., round 1 starts with 1, and so on.
fn round_order(count: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..count).map(move |k| (round + k) % count)
}

/// CPU per frame of `ours` over `peer`, run by run: each of our runs
/// against the peer's run of the same round. The rounds alternate between
/// the compositors, so the two runs of a pair are back to back, and a
/// machine whose speed drifts over the bench weighs on both alike. Rounds
/// where either run failed are left out; `None` if none is left.
fn paired_cpu_ratio(ours: &[Run], peer: &[Run]) -> Option<Spread> {
    let ratios = ours
        .iter()
        .filter_map(|o| {
            let p = peer.iter().find(|p| p.round == o.round)?;
            Some(o.cpu_ms_per_frame / p.cpu_ms_per_frame)
        })
        .collect();
    spread_of(ratios)
}

#[derive(Debug, Serialize)]
struct Figures {
    cpu_ms_per_frame: Spread,
    fps: Spread,
    latency_median_ms: Spread,
    latency_p99_ms: Spread,
    rss_mib: Spread,
    private_mib: Spread,
    runs: Vec<Run>,
}

fn figures(runs: Vec<Run>) -> Figures {
    Figures {
        cpu_ms_per_frame: spread(&runs, |r| r.cpu_ms_per_frame),
        fps: spread(&runs, |r| r.fps),
        latency_median_ms: spread(&runs, |r| r.latency_median_ms),
        latency_p99_ms: spread(&runs, |r| r.latency_p99_ms),
        rss_mib: spread(&runs, |r| r.rss_mib),
        private_mib: spread(&runs, |r| r.private_mib),
        runs,
    }
}

fn machine_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mesa = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "mesa-vulkan-drivers"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, kernel {}, Mesa {mesa}", kernel.trim())
}

fn fmt(s: &Spread, digits: usize) -> String {
    format!("{:.d$} ({:.d$}–{:.d$})", s.median, s.min, s.max, d = digits)
}

fn main() -> Result<()> {
    let args = <Args as clap::Parser>::parse();
    std::fs::create_dir_all(&args.out)?;
    let names: Vec<String> = args.compositors.iter().map(|(n, _)| n.clone()).collect();
    let mut results: BTreeMap<String, BTreeMap<String, Figures>> = BTreeMap::new();
    let scenarios: Vec<&Scenario> = SCENARIOS
        .iter()
        .filter(|s| args.only.as_deref().is_none_or(|o| s.name.contains(o)))
        .collect();
    for scenario in &scenarios {
        // Runs alternate between the compositors (A B A B ...), so a
        // machine that slows down or speeds up during the bench weighs on
        // all of them alike, and each round starts with the next one, so
        // none always runs first or right after the same one.
        let mut runs: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
        for i in 0..args.runs {
            for (name, template) in round_order(args.compositors.len(), i).map(|c| &args.compositors[c]) {
                let log = args.out.join(format!(
                    "{name}-{}-{i}.log",
                    scenario.name.replace([' ', ',', ':'], "_")
                ));
                eprint!("{} / {name} / run {}: ", scenario.name, i + 1);
                match run_once(&args, template, (scenario, i), &log) {
                    Ok(r) => {
                        eprintln!("{:.3} ms CPU/frame, {:.1} fps", r.cpu_ms_per_frame, r.fps);
                        runs.entry(name).or_default().push(r);
                    }
                    Err(e) => eprintln!("FAILED: {e:#}"),
                }
            }
        }
        for (name, runs) in runs {
            results
                .entry(scenario.name.to_owned())
                .or_default()
                .insert(name.to_owned(), figures(runs));
        }
    }

    let machine = machine_line();
    let mut out = std::io::stdout().lock();
    writeln!(out, "machine: {machine}")?;
    writeln!(
        out,
        "every compositor ran the identical client workload: {} (same binary and arguments), \
         output {}x{} at {} Hz, {} s measured after a warm-up, {} run(s) each; median (min–max)\n",
        args.client.display(),
        args.size.width,
        args.size.height,
        args.refresh,
        args.seconds,
        args.runs
    )?;
    let ours = &names[0];
    write!(out, "| scenario | compositor | CPU ms/frame | fps | latency median ms | latency p99 ms | peak RSS MiB | private MiB |")?;
    for peer in &names[1..] {
        write!(out, " CPU ÷ {peer} | paired ÷ {peer} |")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "|---|---|---|---|---|---|---|---|{}",
        "---|".repeat(2 * (names.len() - 1))
    )?;
    let mut paired: BTreeMap<&str, BTreeMap<&str, Spread>> = BTreeMap::new();
    for scenario in &scenarios {
        let Some(by) = results.get(scenario.name) else { continue };
        for name in &names {
            let Some(f) = by.get(name) else { continue };
            write!(
                out,
                "| {} | {name} | {} | {} | {} | {} | {} | {} |",
                scenario.name,
                fmt(&f.cpu_ms_per_frame, 3),
                fmt(&f.fps, 1),
                fmt(&f.latency_median_ms, 1),
                fmt(&f.latency_p99_ms, 1),
                fmt(&f.rss_mib, 0),
                fmt(&f.private_mib, 0)
            )?;
            for peer in &names[1..] {
                let (mut ratio, mut pair) = (String::new(), String::new());
                if let (true, Some(p)) = (name == ours, by.get(peer)) {
                    ratio = format!("{:.2}×", f.cpu_ms_per_frame.median / p.cpu_ms_per_frame.median);
                    if let Some(r) = paired_cpu_ratio(&f.runs, &p.runs) {
                        pair = format!("{:.2}× ({:.2}–{:.2})", r.median, r.min, r.max);
                        paired.entry(scenario.name).or_default().insert(peer, r);
                    }
                }
                write!(out, " {ratio} | {pair} |")?;
            }
            writeln!(out)?;
        }
    }
    let json = serde_json::json!({
        "machine": machine,
        "compositors": names,
        "results": results,
        "paired_cpu_ratio": paired,
    });
    std::fs::write(args.out.join("bench.json"), serde_json::to_string_pretty(&json)? + "\n")?;
    chart(&args.out.join("bench.png"), &names, &scenarios, &results)?;
    writeln!(
        out,
        "\nwrote {}, {}",
        args.out.join("bench.json").display(),
        args.out.join("bench.png").display()
    )?;
    Ok(())
}

/// Grouped bar charts, one group per scenario, one bar per compositor: CPU
/// per presented frame above, private resident memory below.
fn chart(
    path: &Path,
    names: &[String],
    scenarios: &[&Scenario],
    results: &BTreeMap<String, BTreeMap<String, Figures>>,
) -> Result<()> {
    use plotters::prelude::*;
    const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let font = std::fs::read(FONT).with_context(|| format!("the chart's font {FONT} (package fonts-dejavu-core)"))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into_boxed_slice()))
        .map_err(|_| anyhow::anyhow!("registering the chart font {FONT}"))?;
    let (w, h) = (1400u32, 1000u32);
    let mut pixels = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (top, bottom) = root.split_vertically(h / 2);
        let panels: [(_, &str, fn(&Figures) -> f64); 2] = [
            (top, "compositor process CPU per presented frame (ms, median)", |f| {
                f.cpu_ms_per_frame.median
            }),
            (bottom, "compositor private resident memory (MiB, median)", |f| {
                f.private_mib.median
            }),
        ];
        for (area, caption, value) in panels {
            bars(&area, caption, names, scenarios, results, value).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let file = std::fs::File::create(path)?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(&pixels)?;
    Ok(())
}

type Area<'a> = plotters::drawing::DrawingArea<plotters::backend::BitMapBackend<'a>, plotters::coord::Shift>;

/// One panel of `chart`: a bar per compositor in each scenario's group, the
/// scenario's name under its group.
fn bars(
    area: &Area<'_>,
    caption: &str,
    names: &[String],
    scenarios: &[&Scenario],
    results: &BTreeMap<String, BTreeMap<String, Figures>>,
    value: fn(&Figures) -> f64,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let max = results
        .values()
        .flat_map(|by| by.values().map(value))
        .fold(0.0f64, f64::max)
        .max(0.001);
    let groups = scenarios.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..groups, 0.0..max * 1.15)?;
    chart.configure_mesh().disable_x_mesh().x_labels(0).draw()?;
    let colors = [RGBColor(40, 90, 200), RGBColor(220, 110, 30), RGBColor(60, 160, 70)];
    let n = names.len() as f64;
    for (i, name) in names.iter().enumerate() {
        let color = colors[i % colors.len()];
        let series = scenarios.iter().enumerate().filter_map(|(g, s)| {
            let f = results.get(s.name)?.get(name)?;
            let x0 = g as f64 + 0.1 + 0.8 * i as f64 / n;
            Some(Rectangle::new([(x0, 0.0), (x0 + 0.8 / n, value(f))], color.filled()))
        });
        chart
            .draw_series(series)?
            .label(name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    let style = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    // backend_coord is in the whole bitmap's pixels, draw_text in the panel's.
    let (bx, by) = area.get_base_pixel();
    for (g, s) in scenarios.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(g as f64 + 0.5, 0.0));
        let (x, y) = (x - bx, y - by);
        // Two lines at most: the part before a ',' or ':' and the rest.
        let (first, rest) = s.name.split_once([',', ':']).unwrap_or((s.name, ""));
        area.draw_text(first, &style, (x, y + 6))?;
        area.draw_text(rest.trim(), &style, (x, y + 22))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(round: usize, cpu_ms_per_frame: f64) -> Run {
        Run {
            round,
            cpu_ms_per_frame,
            fps: 60.0,
            latency_median_ms: 16.0,
            latency_p99_ms: 17.0,
            rss_mib: 100.0,
            private_mib: 20.0,
        }
    }

    #[test]
    fn each_round_starts_with_the_next_compositor() {
        let rounds: Vec<Vec<usize>> = (0..4).map(|r| round_order(3, r).collect()).collect();
        assert_eq!(rounds, [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 1, 2]]);
    }

    #[test]
    fn paired_ratio_pairs_runs_of_the_same_round() {
        // The machine slows down over the bench: the ratio of the medians
        // (0.6 / 0.8 = 0.75) mixes rounds, the pairs (0.5 each) do not.
        let ours = [run(0, 0.2), run(1, 0.6), run(2, 1.0)];
        let peer = [run(0, 0.4), run(1, 1.2), run(2, 2.0)];
        let r = paired_cpu_ratio(&ours, &peer).unwrap();
        assert_eq!((r.median, r.min, r.max), (0.5, 0.5, 0.5));
    }

    #[test]
    fn paired_ratio_leaves_out_rounds_where_a_run_failed() {
        // Round 1 failed for the peer: our run of round 2 is not paired
        // with the peer's run of round 2's neighbour.
        let ours = [run(0, 1.0), run(1, 5.0), run(2, 3.0)];
        let peer = [run(0, 2.0), run(2, 1.0)];
        let r = paired_cpu_ratio(&ours, &peer).unwrap();
        assert_eq!((r.min, r.max), (0.5, 3.0));
        assert!(paired_cpu_ratio(&ours, &[]).is_none());
    }
}
