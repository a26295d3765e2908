//! `bench`: import cost and per-frame compositor CPU cost, in one run.
//!
//! Prints four tables:
//! 1. dma-buf import time for 256×256 and 4096×4096 buffers (fresh imports,
//!    median of N), and their ratio. Zero-copy import does not touch the
//!    pixels, so the ratio should stay near 1 (goal ≤ 1.5×). The buffer path's
//!    import + first GPU copy is shown beside it as the non-zero-copy baseline.
//! 2. compositor thread CPU time per frame (our damage tracker and renderer,
//!    full redraw) for 1, 16 and 64 surfaces on a 1920×1080 output,
//!    with ratios against 1 surface. Wall time per frame including the GPU
//!    (lavapipe rasterizes on other threads) is shown for context.
//! 3. damage tracking alone for a window of 64 subsurfaces of which one
//!    committed, smithay's `OutputDamageTracker` against ours
//!    (`render::damage`): thread CPU per frame, averaged over thousands.
//! 4. CPU-fallback copy throughput (importer::cpu: map, SYNC bracket, row
//!    copy out of the client's buffer) against a plain memcpy of the same
//!    bytes, in the same run, and their ratio (goal ≥ 0.9).
//!
//! Run: `cargo run --release -p compositor --bin bench`.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use compositor::render::damage::{DamageTracker, OutputMode};
use compositor::render::{RendererOptions, VkRenderer};
use smithay::backend::allocator::dmabuf::{Dmabuf, DmabufFlags};
use smithay::backend::allocator::{Fourcc, Modifier};
use smithay::backend::renderer::damage::OutputDamageTracker;
use smithay::backend::renderer::element::solid::SolidColorRenderElement;
use smithay::backend::renderer::element::texture::{TextureBuffer, TextureRenderElement};
use smithay::backend::renderer::element::{Id, Kind};
use smithay::backend::renderer::{Bind, Color32F, ImportDma, Offscreen, Renderer};
use smithay::utils::{Physical, Rectangle, Size, Transform};

#[derive(Parser)]
struct Args {
    /// Fresh imports timed per buffer size.
    #[arg(long, default_value_t = 25)]
    imports: usize,
    /// Frames timed per surface count.
    #[arg(long, default_value_t = 60)]
    frames: usize,
}

/// A sealed memfd of `len` bytes with a non-trivial pattern (stands in for a dma-buf on hosts without udmabuf).
fn memfd(len: usize) -> Result<OwnedFd> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let fd = rustix::fs::memfd_create("bench-dmabuf", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    let chunk: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        rustix::io::write(&fd, &chunk[..n])?;
        left -= n;
    }
    rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW)?;
    Ok(fd)
}

fn dmabuf(fd: &OwnedFd, size: u32, stride: u32) -> Result<Dmabuf> {
    let mut b = Dmabuf::builder(
        (size as i32, size as i32),
        Fourcc::Xrgb8888,
        Modifier::Linear,
        DmabufFlags::empty(),
    );
    b.add_plane(fd.as_fd().try_clone_to_owned()?, 0, 0, stride);
    b.build().context("building the dmabuf")
}

/// An untransformed output of `size` at scale 1.
fn mode(size: Size<i32, Physical>) -> OutputMode {
    OutputMode {
        size,
        scale: 1.0.into(),
        transform: Transform::Normal,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median time of fresh imports of a `size`² buffer with `stride`.
fn time_imports(r: &mut VkRenderer, size: u32, stride: u32, n: usize) -> Result<Duration> {
    let fd = memfd((stride * size) as usize)?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let buf = dmabuf(&fd, size, stride)?;
        let t0 = Instant::now();
        let tex = r.import_dmabuf(&buf, None)?;
        times.push(t0.elapsed());
        drop(tex);
        drop(buf);
        r.cleanup_texture_cache()?;
    }
    Ok(median(times))
}

/// Median time of a buffer-path import plus the frame that performs its GPU copy.
fn time_buffer_path_first_use(r: &mut VkRenderer, size: u32, n: usize) -> Result<Duration> {
    let stride = size * 4 + 16;
    let fd = memfd((stride * size) as usize)?;
    let mut target = Offscreen::create_buffer(r, Fourcc::Xrgb8888, (64, 64).into())?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let buf = dmabuf(&fd, size, stride)?;
        let t0 = Instant::now();
        let tex = r.import_dmabuf(&buf, None)?;
        let element = TextureRenderElement::from_texture_buffer(
            (0.0, 0.0),
            &TextureBuffer::from_texture(r, tex, 1, Transform::Normal, None),
            None,
            None,
            Some((64, 64).into()),
            Kind::Unspecified,
        );
        let mut fb = r.bind(&mut target)?;
        let mut tracker = DamageTracker::default();
        let res = tracker.render_output(r, &mut fb, 0, &[element], mode((64, 64).into()), Color32F::BLACK)?;
        res.sync.wait().map_err(|_| anyhow::anyhow!("fence wait interrupted"))?;
        times.push(t0.elapsed());
        drop(fb);
        drop(buf);
        r.cleanup_texture_cache()?;
    }
    Ok(median(times))
}

struct FrameCost {
    cpu: Duration,
    wall: Duration,
}

/// Per-frame cost of composing `surfaces` 256×256 dma-buf surfaces at 1920×1080.
fn time_frames(r: &mut VkRenderer, surfaces: usize, frames: usize) -> Result<FrameCost> {
    let size: Size<i32, smithay::utils::Physical> = (1920, 1080).into();
    let mut target = Offscreen::create_buffer(r, Fourcc::Xrgb8888, (1920, 1080).into())?;
    let fd = memfd(256 * 256 * 4)?;
    let mut bufs = Vec::new();
    let mut elements = Vec::new();
    for i in 0..surfaces {
        let buf = dmabuf(&fd, 256, 256 * 4)?;
        let tex = r.import_dmabuf(&buf, None)?;
        let tb = TextureBuffer::from_texture(r, tex, 1, Transform::Normal, None);
        // A cascading grid with overlaps, like stacked windows.
        let (x, y) = ((i % 8) as f64 * 200.0, (i / 8) as f64 * 100.0);
        elements.push(TextureRenderElement::from_texture_buffer(
            (x, y),
            &tb,
            Some(0.9),
            None,
            None,
            Kind::Unspecified,
        ));
        bufs.push(buf);
    }
    let mut tracker = DamageTracker::default();
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    for i in 0..frames + 5 {
        let (c0, w0) = (thread_cpu(), Instant::now());
        // Each surface "commits" every frame: re-import (a cache hit) and redraw everything (age 0).
        for b in &bufs {
            r.import_dmabuf(b, None)?;
        }
        let mut fb = r.bind(&mut target)?;
        let clear = Color32F::new(0.125, 0.125, 0.125, 1.0);
        let res = tracker.render_output(r, &mut fb, 0, &elements, mode(size), clear)?;
        let c1 = thread_cpu();
        res.sync.wait().map_err(|_| anyhow::anyhow!("fence wait interrupted"))?;
        let w1 = Instant::now();
        if i >= 5 {
            cpu.push(c1 - c0);
            wall.push(w1 - w0);
        }
    }
    Ok(FrameCost {
        cpu: median(cpu),
        wall: median(wall),
    })
}

/// A window with 64 opaque 120×120 subsurfaces in a grid, front to back;
/// the first subsurface's commit counter is `commit`.
fn grid_elements(ids: &[Id], commit: usize) -> Vec<SolidColorRenderElement> {
    let opaque = Color32F::new(0.2, 0.4, 0.6, 1.0);
    let mut elements: Vec<SolidColorRenderElement> = ids[..64]
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let (x, y) = (8 + (i as i32 % 8) * 120, 8 + (i as i32 / 8) * 120);
            let geometry = Rectangle::new((x, y).into(), (120, 120).into());
            let commit = if i == 0 { commit } else { 0 };
            SolidColorRenderElement::new(id.clone(), geometry, commit, opaque, Kind::Unspecified)
        })
        .collect();
    let main = Rectangle::from_size((976, 976).into());
    elements.push(SolidColorRenderElement::new(
        ids[64].clone(),
        main,
        0,
        opaque,
        Kind::Unspecified,
    ));
    elements
}

/// Compositor-thread CPU per frame of working out the damage of that grid
/// when one subsurface committed (no drawing): smithay's
/// `OutputDamageTracker` and ours. Blocks of frames alternate between the
/// two, so a machine that slows down weighs on both.
fn time_damage(frames: usize) -> (Duration, Duration) {
    let ids: Vec<Id> = (0..65).map(|_| Id::new()).collect();
    let size: Size<i32, Physical> = (1920, 1080).into();
    let clear = Color32F::new(0.125, 0.125, 0.125, 1.0);
    let mut theirs = OutputDamageTracker::new(size, 1.0, Transform::Normal);
    let mut ours = DamageTracker::default();
    let first = grid_elements(&ids, 0);
    let _ = theirs.damage_output(0, &first);
    ours.plan(0, &first, mode(size), clear);
    let (mut t_theirs, mut t_ours, mut commit) = (Duration::ZERO, Duration::ZERO, 0);
    const BLOCK: usize = 100;
    for _ in 0..frames.div_ceil(BLOCK) {
        let frames: Vec<_> = (0..BLOCK)
            .map(|_| {
                commit += 1;
                grid_elements(&ids, commit)
            })
            .collect();
        let t0 = thread_cpu();
        for elements in &frames {
            let _ = theirs.damage_output(1, elements);
        }
        let t1 = thread_cpu();
        for elements in &frames {
            ours.plan(1, elements, mode(size), clear);
        }
        t_ours += thread_cpu() - t1;
        t_theirs += t1 - t0;
    }
    let n = (frames.div_ceil(BLOCK) * BLOCK) as u32;
    (t_theirs / n, t_ours / n)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut r = VkRenderer::new(&RendererOptions::default()).context("creating the Vulkan renderer")?;
    println!("device: {}", r.device_summary());
    println!(
        "cpu: {} ({} cores)",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "## dma-buf import (XRGB8888 LINEAR, memfd), median of {} fresh imports",
        args.imports
    );
    let before = r.import_stats();
    let small = time_imports(&mut r, 256, 256 * 4, args.imports)?;
    let large = time_imports(&mut r, 4096, 4096 * 4, args.imports)?;
    let after = r.import_stats();
    // Every timed import must have been a fresh zero-copy import, not a cache hit.
    anyhow::ensure!(
        after.zero_copy_image - before.zero_copy_image == 2 * args.imports as u64,
        "expected {} zero-copy imports, counters say {:?} -> {:?}",
        2 * args.imports,
        before,
        after
    );
    let small_buf = time_buffer_path_first_use(&mut r, 256, args.imports.min(10))?;
    let large_buf = time_buffer_path_first_use(&mut r, 4096, args.imports.min(10))?;
    println!("| size | zero-copy import (ms) | buffer path: import + first GPU copy (ms) |");
    println!("|---|---|---|");
    println!("| 256x256 | {:.3} | {:.3} |", ms(small), ms(small_buf));
    println!("| 4096x4096 | {:.3} | {:.3} |", ms(large), ms(large_buf));
    println!(
        "zero-copy imports performed: {} (counter)",
        after.zero_copy_image - before.zero_copy_image
    );
    println!(
        "ratio 4096/256 zero-copy: {:.2}x (goal <= 1.5x); buffer path: {:.2}x",
        ratio(large, small),
        ratio(large_buf, small_buf)
    );
    println!();
    println!(
        "## compositor CPU time per frame, 1920x1080, 256x256 dma-buf surfaces, full redraw, median of {} frames",
        args.frames
    );
    println!("| surfaces | compositor thread CPU (ms/frame) | ratio vs 1 | wall incl. GPU (ms/frame) |");
    println!("|---|---|---|---|");
    let base = time_frames(&mut r, 1, args.frames)?;
    for n in [1, 16, 64] {
        let c = if n == 1 {
            FrameCost {
                cpu: base.cpu,
                wall: base.wall,
            }
        } else {
            time_frames(&mut r, n, args.frames)?
        };
        println!(
            "| {n} | {:.3} | {:.2}x | {:.2} |",
            ms(c.cpu),
            ratio(c.cpu, base.cpu),
            ms(c.wall)
        );
    }
    println!();
    println!("## damage tracking, 64 subsurfaces in a window, one committed, no drawing, mean of 5000 frames");
    let (theirs, ours) = time_damage(5000);
    println!("| tracker | compositor thread CPU (µs/frame) |");
    println!("|---|---|");
    println!("| smithay OutputDamageTracker | {:.1} |", theirs.as_secs_f64() * 1e6);
    println!("| ours (render/damage) | {:.1} |", ours.as_secs_f64() * 1e6);
    println!("ours / smithay: {:.2}x", ratio(ours, theirs));
    println!();
    println!(
        "## CPU-fallback copy vs memcpy of the same bytes (the same sealed memfd mapped twice), median of {} copies",
        args.imports
    );
    println!("| buffer | stride | plane offset | CPU fallback (MiB/s) | memcpy (MiB/s) | ratio (goal >= 0.9) |");
    println!("|---|---|---|---|---|---|");
    for (w, h, stride, offset) in [(1920, 1080, 1920 * 4, 0), (3840, 2160, 3840 * 4 + 64, 4096 + 64)] {
        let (cpu, plain) = time_cpu_copy(w, h, stride, offset, args.imports)?;
        let bytes = w * 4 * h;
        println!(
            "| {w}x{h} | {stride} | {offset} | {:.0} | {:.0} | {:.2} |",
            mib_s(bytes, cpu),
            mib_s(bytes, plain),
            plain.as_secs_f64() / cpu.as_secs_f64().max(1e-12)
        );
    }
    Ok(())
}

/// MiB/s for `bytes` copied in `d`.
fn mib_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64().max(1e-12)
}

/// CPU-fallback copy (map once; per copy: the full access bracket and a row
/// copy into a staging-sized destination) against a plain row memcpy of the
/// same bytes: the same memfd, mapped separately, with no bracket, no pin and
/// no lock. Same source memory on both sides, so the ratio is the cost of the
/// fallback's rules, not of where the pages live. Medians of `n` copies each.
fn time_cpu_copy(width: usize, height: usize, stride: usize, offset: usize, n: usize) -> Result<(Duration, Duration)> {
    use importer::cpu::{copy_plane_rows, map_planes, with_cpu_access, CpuMapping, PlaneSource, PollReadable};
    use importer::reservation::Reservation;
    let fd = memfd(offset + stride * height)?;
    let res: Reservation<(), CpuMapping> = Reservation::new();
    let plane = PlaneSource {
        fd: fd.as_fd(),
        offset: offset as u64,
        stride: stride as u64,
        row_bytes: (width * 4) as u64,
        rows: height as u64,
    };
    map_planes(&mut res.lock(), &[plane])?;
    let mut dst = vec![0u8; width * 4 * height];
    let len = offset + stride * height;
    // SAFETY: a read-only shared mapping of a sealed memfd of `len` bytes; unmapped below.
    let base = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            rustix::mm::ProtFlags::READ,
            rustix::mm::MapFlags::SHARED,
            &fd,
            0,
        )?
    };
    // SAFETY: the mapping is `len` bytes and lives until the munmap below.
    let src = unsafe { std::slice::from_raw_parts(base.cast::<u8>().add(offset), len - offset) };
    let fences = PollReadable {
        timeout: Duration::from_millis(100),
    };
    let (mut cpu, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t0 = Instant::now();
        with_cpu_access(&res, &fences, |view| {
            copy_plane_rows(view, 0, width * 4, height, &mut dst, width * 4)
        })??;
        cpu.push(t0.elapsed());
        let t0 = Instant::now();
        // The same shape of copy as the fallback's: one call for a tight
        // plane (row-by-row copies of mid-sized rows can land on a slower
        // memcpy strategy), row by row otherwise.
        if stride == width * 4 {
            dst.copy_from_slice(&src[..width * 4 * height]);
        } else {
            for row in 0..height {
                dst[row * width * 4..(row + 1) * width * 4]
                    .copy_from_slice(&src[row * stride..row * stride + width * 4]);
            }
        }
        std::hint::black_box(&dst);
        plain.push(t0.elapsed());
    }
    // SAFETY: `src` is not used past this point.
    unsafe { rustix::mm::munmap(base, len)? };
    Ok((median(cpu), median(plain)))
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}
