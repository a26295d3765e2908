//! `demo-client [--frames N] [--provider NAME]`: three animated windows, one
//! translucent, driven by frame callbacks and double-buffered.
//!
//! Each window owns two buffers and only redraws a buffer after the compositor
//! released it, the pattern a real client must follow with dma-bufs the
//! compositor may still be sampling from.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use testkit::buffer::DmabufBuffer;
use testkit::client::Client;
use testkit::pixel::{premultiply, Format};
use testkit::provider::{provider_by_name, provider_from_env, BufferProvider};
use testkit::window::Window;

struct Args {
    frames: u64,
    provider: Box<dyn BufferProvider>,
}

fn parse_args() -> Result<Args> {
    let mut frames = 120;
    let mut provider = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--frames" => {
                frames = args
                    .next()
                    .context("--frames needs a value")?
                    .parse()
                    .context("--frames")?
            }
            "--provider" => provider = Some(provider_by_name(&args.next().context("--provider needs a value")?)?),
            other => bail!("unknown argument {other:?} (usage: demo-client [--frames N] [--provider memfd])"),
        }
    }
    let provider = match provider {
        Some(p) => p,
        None => provider_from_env()?,
    };
    Ok(Args { frames, provider })
}

/// SMPTE-like colour bars with a bar that moves 3 px per frame.
fn pattern(frame: u64, width: u32, alpha: u8) -> impl Fn(u32, u32) -> [u8; 4] {
    const BARS: [[u8; 3]; 7] = [
        [235, 235, 235],
        [235, 235, 16],
        [16, 235, 235],
        [16, 235, 16],
        [235, 16, 235],
        [235, 16, 16],
        [16, 16, 235],
    ];
    let moving = (frame * 3 % u64::from(width)) as u32;
    move |x, y| {
        let rgb = if x >= moving && x < moving + 6 {
            if y % 2 == 0 {
                [255, 255, 255]
            } else {
                [0, 0, 0]
            }
        } else {
            BARS[(x * 7 / width) as usize]
        };
        premultiply(rgb, alpha)
    }
}

struct Animated {
    window: Window,
    format: Format,
    alpha: u8,
    buffers: [DmabufBuffer; 2],
    /// Index of the buffer currently attached.
    current: usize,
    frame: u64,
    done_flag: Arc<AtomicBool>,
}

impl Animated {
    fn new(
        client: &mut Client,
        provider: &dyn BufferProvider,
        title: &str,
        size: (u32, u32),
        format: Format,
        alpha: u8,
    ) -> Result<Animated> {
        let window = Window::new(client, title)?;
        let (w, h) = size;
        let first = pattern(0, w, alpha);
        let enc = |f: &dyn Fn(u32, u32) -> [u8; 4], x, y| format.encode(f(x, y));
        let a = DmabufBuffer::new(client, provider, w, h, format, w * 4, &|x, y| enc(&first, x, y))?;
        let b = DmabufBuffer::new(client, provider, w, h, format, w * 4, &|x, y| enc(&first, x, y))?;
        window.attach(&a);
        let done_flag = window.frame(client);
        window.surface.commit();
        Ok(Animated {
            window,
            format,
            alpha,
            buffers: [a, b],
            current: 0,
            frame: 0,
            done_flag,
        })
    }

    /// Draws the next frame into the spare buffer (waiting, bounded, for its
    /// release) and commits it with a new frame callback.
    fn advance(&mut self, client: &mut Client) -> Result<()> {
        let spare = 1 - self.current;
        if !self.buffers[spare].is_released() {
            let buf = &self.buffers[spare];
            let mut released = false;
            client.dispatch_until("wl_buffer.release", |_| {
                released = buf.is_released();
                released
            })?;
        }
        self.frame += 1;
        let (format, f) = (self.format, pattern(self.frame, self.buffers[spare].width, self.alpha));
        self.buffers[spare].fill(&|x, y| format.encode(f(x, y)));
        self.window.attach(&self.buffers[spare]);
        self.current = spare;
        self.done_flag = self.window.frame(client);
        self.window.surface.commit();
        Ok(())
    }
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let mut client = Client::connect()?;
    let p = &*args.provider;
    let mut windows = [
        Animated::new(&mut client, p, "demo bars", (200, 150), Format::Xrgb8888, 255)?,
        Animated::new(&mut client, p, "demo abgr", (180, 120), Format::Abgr8888, 255)?,
        Animated::new(&mut client, p, "demo translucent", (160, 120), Format::Argb8888, 150)?,
    ];
    while windows.iter().any(|w| w.frame < args.frames) {
        client.dispatch_until("a frame callback", |_| {
            windows
                .iter()
                .any(|w| w.frame < args.frames && w.done_flag.load(Ordering::Acquire))
        })?;
        for w in windows
            .iter_mut()
            .filter(|w| w.frame < args.frames && w.done_flag.load(Ordering::Acquire))
        {
            w.advance(&mut client)?;
        }
    }
    println!(
        "demo-client: {} frames per window with the {} provider",
        args.frames,
        p.name()
    );
    Ok(())
}
