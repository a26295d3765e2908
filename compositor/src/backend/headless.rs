//! Headless backend: renders into an offscreen Vulkan target paced by a timer.
//!
//! The frame clock is a calloop timer re-armed to absolute deadlines
//! `start + n * interval`, so late wake-ups do not accumulate into drift; if a
//! frame overruns whole intervals, those ticks are skipped rather than queued.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smithay::{
    backend::{
        allocator::Fourcc,
        renderer::{element::RenderElementStates, Bind, Offscreen},
    },
    desktop::{Space, Window},
    output::Output,
    reexports::{
        calloop::{
            timer::{TimeoutAction, Timer},
            LoopHandle,
        },
        wayland_protocols::wp::presentation_time::server::wp_presentation_feedback,
    },
    utils::{Clock, ClockSource, Monotonic, Physical, Size, Transform},
    wayland::presentation::Refresh,
};
use tracing::{debug, error, info, warn};

use super::Backend;
use crate::{
    render::{damage::DamageTracker, VkRenderer, VkTarget},
    screenshot::RgbaImage,
    state::State,
};

/// Opaque RGB (32, 32, 32): a dark grey distinguishable from "nothing drawn"
/// (both backends clear to it).
pub const CLEAR_COLOR: [f32; 4] = [32.0 / 255.0, 32.0 / 255.0, 32.0 / 255.0, 1.0];

/// How many frames in a row may fail to render before we give up: a broken
/// renderer would otherwise spin forever producing nothing.
const MAX_CONSECUTIVE_FAILURES: u32 = 120;

/// Output geometry and timing requested on the command line.
#[derive(Debug, Clone, Copy)]
pub struct HeadlessOptions {
    pub size: (i32, i32),
    pub scale: i32,
    pub refresh_hz: u32,
}

/// The offscreen output and everything needed to draw into it.
pub struct HeadlessBackend {
    pub renderer: VkRenderer,
    pub output: Output,
    target: VkTarget,
    damage_tracker: DamageTracker,
    /// Which surfaces the output shows (wl_surface.enter/leave).
    pub(super) scene: super::OutputScene,
    clock: Clock<Monotonic>,
    frame_interval: Duration,
    size: Size<i32, Physical>,
    frames: u64,
    consecutive_failures: u32,
    /// Client buffers held until the frames that sampled them are done.
    pub releases: crate::buffer_sync::release::PendingReleases,
}

impl HeadlessBackend {
    pub fn new(mut renderer: VkRenderer, opts: HeadlessOptions) -> anyhow::Result<HeadlessBackend> {
        let size: Size<i32, Physical> = opts.size.into();
        let target = Offscreen::<VkTarget>::create_buffer(
            &mut renderer,
            Fourcc::Xrgb8888,
            size.to_logical(1).to_buffer(1, Transform::Normal),
        )
        .map_err(|e| anyhow::anyhow!("creating the {}x{} offscreen target: {e}", size.w, size.h))?;

        let output = super::new_output(
            "HEADLESS-1".into(),
            "headless",
            (0, 0),
            size,
            opts.refresh_hz,
            opts.scale,
        );

        Ok(HeadlessBackend {
            renderer,
            output,
            target,
            damage_tracker: DamageTracker::default(),
            scene: Default::default(),
            clock: Clock::new(),
            frame_interval: Duration::from_secs(1) / opts.refresh_hz,
            size,
            frames: 0,
            consecutive_failures: 0,
            releases: Default::default(),
        })
    }

    /// Clock id advertised by wp_presentation; feedback times use the same clock.
    pub fn clock_id(&self) -> u32 {
        Monotonic::ID as u32
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Draws the space into the offscreen target.
    ///
    /// After the first frame the target holds the previous frame, so age 1
    /// lets the damage tracker redraw only what changed.
    pub fn render(&mut self, space: &Space<Window>) -> anyhow::Result<Arc<RenderElementStates>> {
        let elements = self.scene.elements(&mut self.renderer, space, &self.output)?;
        let age = if self.frames == 0 { 0 } else { 1 };
        let mut framebuffer = self
            .renderer
            .bind(&mut self.target)
            .map_err(|e| anyhow::anyhow!("binding the offscreen target: {e}"))?;
        let result = super::draw_output(
            &mut self.damage_tracker,
            &mut self.renderer,
            &mut self.releases,
            &mut framebuffer,
            age,
            &elements,
            &self.output,
        )?;
        self.scene.keep(elements);
        Ok(result.states)
    }

    /// Reads the offscreen target back as tightly packed RGBA8.
    pub fn screenshot(&mut self) -> anyhow::Result<RgbaImage> {
        crate::screenshot::read_target(&mut self.renderer, &mut self.target, self.size)
    }
}

/// Starts the frame clock; the first frame is drawn right away.
pub fn start_frame_clock(handle: &LoopHandle<'static, State>, interval: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut tick: u64 = 0;
    handle
        .insert_source(Timer::from_deadline(start), move |now, _, state| {
            if !on_frame_tick(state) {
                return TimeoutAction::Drop;
            }
            let (next_tick, deadline) = next_deadline(start, interval, tick, now);
            if next_tick > tick + 1 {
                debug!(
                    skipped = next_tick - tick - 1,
                    "frame clock fell behind; skipping ticks"
                );
            }
            tick = next_tick;
            TimeoutAction::ToInstant(deadline)
        })
        .map_err(|e| anyhow::anyhow!("inserting the frame timer: {e}"))?;
    Ok(())
}

/// The first tick after `tick` whose deadline is still ahead of `now`.
fn next_deadline(start: Instant, interval: Duration, tick: u64, now: Instant) -> (u64, Instant) {
    let at = |n: u64| start + interval * u32::try_from(n).unwrap_or(u32::MAX);
    let mut next = tick + 1;
    if at(next) <= now {
        let behind = now.duration_since(start).as_nanos() / interval.as_nanos().max(1);
        next = u64::try_from(behind).unwrap_or(u64::MAX - 1) + 1;
    }
    (next, at(next))
}

/// One frame: draw, then tell clients it was shown. Returns false once the
/// clock should stop.
pub fn on_frame_tick(state: &mut State) -> bool {
    if state.lifecycle.exit_code.is_some() {
        return false;
    }
    super::housekeeping(state);
    if state.rendering_stopped() {
        state.backend.forget_kept_elements();
        // Keep ticking: the child may reconnect, which resumes rendering.
        return true;
    }
    super::scene::drop_dead_windows(&mut state.space);
    state.popups.cleanup();

    let Backend::Headless(backend) = &mut state.backend else {
        return false;
    };
    let rendered = backend.render(&state.space);
    let rendered = rendered.and_then(|states| super::injected_device_loss(&backend.renderer).map(|()| states));
    let render_states = match rendered {
        Ok(states) => {
            backend.consecutive_failures = 0;
            states
        }
        Err(err) => return on_render_failure(state, err),
    };
    backend.frames += 1;
    let frame = backend.frames;
    let (now, interval) = (backend.clock.now(), backend.frame_interval);

    super::frame_shown(
        state,
        &render_states,
        now,
        Refresh::fixed(interval),
        frame,
        wp_presentation_feedback::Kind::Vsync,
    );

    if frame == 1 {
        info!("first frame rendered");
    }
    if state.lifecycle.exit_after_frames.is_some_and(|n| frame >= n) {
        state.request_exit(0, "--exit-after-frames reached");
        return false;
    }
    true
}

fn on_render_failure(state: &mut State, err: anyhow::Error) -> bool {
    if super::device_lost(state) {
        super::on_device_lost(state);
        return false;
    }
    let Backend::Headless(backend) = &mut state.backend else {
        return false;
    };
    backend.consecutive_failures += 1;
    if backend.consecutive_failures == 1 {
        warn!("frame failed to render: {err:#}");
    }
    if backend.consecutive_failures >= MAX_CONSECUTIVE_FAILURES {
        error!(
            "{} consecutive frames failed to render: {err:#}",
            backend.consecutive_failures
        );
        state.request_exit(1, "renderer keeps failing");
        return false;
    }
    true
}

/// Interval between frames for the timer.
pub fn frame_interval(backend: &HeadlessBackend) -> Duration {
    backend.frame_interval
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_do_not_drift() {
        let start = Instant::now();
        let iv = Duration::from_millis(10);
        let (n, d) = next_deadline(start, iv, 0, start + Duration::from_millis(3));
        assert_eq!((n, d), (1, start + iv));
        // A late wake-up still targets the absolute grid.
        let (n, d) = next_deadline(start, iv, 1, start + Duration::from_millis(17));
        assert_eq!((n, d), (2, start + iv * 2));
        // Overrunning several intervals skips to the next future tick.
        let (n, d) = next_deadline(start, iv, 2, start + Duration::from_millis(55));
        assert_eq!((n, d), (6, start + iv * 6));
    }
}
