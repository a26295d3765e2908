//! DRM/KMS backend: a libseat session, the seat's card node (udev), atomic
//! modesetting on one connector, and frames rendered by our Vulkan renderer
//! straight into scan-out dma-bufs, flipped by page flips that drive the
//! frame clock.
//!
//! * [`session`]: libseat, udev discovery and hotplug logging, libinput.
//! * [`output`]: which connector, mode and CRTC (pure, unit-tested).
//! * [`scanout`]: the two scan-out buffers (GBM or dumb + PRIME), their
//!   framebuffers and Vulkan imports, and the offscreen-copy fallback.
//! * [`direct`]: direct scan-out of a fullscreen client buffer instead of a
//!   composited frame (`drm.direct_scanout_frames`).
//!
//! DOC: the frame clock
//!
//! A frame is rendered into the buffer that is *not* being scanned out and
//! queued with an atomic page flip (a full modeset commit for the first
//! frame and after a VT switch back). The display engine must not scan out a
//! half-rendered buffer, and the loop never blocks on the GPU: where the
//! device exports the frame's completion as a sync_file, it goes with the
//! commit as the plane's `IN_FENCE_FD` and the kernel waits
//! (`drm.in_fence_flips`); otherwise (and for the copy fallback, which reads
//! the frame back on the CPU) the rendered frame is parked and a 1 ms timer
//! polls its VkFence, queueing it once signaled (`drm.fence_polls`). The page-flip event (vblank) then marks it as
//! the front buffer, counts a frame (`frames`, `drm.page_flips`), sends
//! presentation feedback with the kernel's timestamp and sequence, sends
//! frame callbacks, and renders the next frame. While nothing can be queued
//! (rendering stopped, a frame failed) a one-refresh timer retries instead
//! (`drm.timer_ticks`); while the session is paused nothing runs until its
//! activation starts the next frame. A flip that completes much sooner
//! than the mode's refresh interval (no vblank pacing in the driver:
//! virtio-gpu) starts the next frame from a timer at the interval
//! (`drm.paced_by_timer`).

pub mod direct;
pub mod output;
pub mod scanout;
pub mod session;

pub use scanout::DrmAllocator;

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use smithay::{
    backend::{
        allocator::Fourcc,
        drm::{DrmDevice, DrmDeviceFd, DrmEvent, DrmEventMetadata, DrmEventTime, DrmSurface, PlaneState},
        renderer::{
            element::{Id, RenderElementStates},
            Bind, ExportMem,
        },
        session::{libseat::LibSeatSession, Event as SessionEvent, Session},
    },
    desktop::{Space, Window},
    output::Output,
    reexports::{
        calloop::{
            timer::{TimeoutAction, Timer},
            LoopHandle,
        },
        input::Libinput,
        rustix::fs::OFlags,
        wayland_protocols::wp::presentation_time::server::wp_presentation_feedback,
        wayland_server::protocol::wl_surface::WlSurface,
    },
    utils::{Clock, ClockSource, DeviceFd, Monotonic, Physical, Rectangle, Size, Time},
    wayland::presentation::Refresh,
};
use tracing::{debug, error, info, warn};

use super::Backend;
use crate::{
    render::{damage::DamageTracker, VkRenderer, VkTarget},
    screenshot::RgbaImage,
    state::State,
};

/// Frames in a row that may fail before the compositor gives up.
const MAX_CONSECUTIVE_FAILURES: u32 = 120;

/// What the command line asks of the drm backend.
#[derive(Debug, Clone)]
pub struct DrmOptions {
    pub device: Option<PathBuf>,
    pub allocator: DrmAllocator,
    pub scale: i32,
}

/// `"drm"` in `--stats`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct DrmStats {
    /// Card node driven, and the session that opened it.
    pub device: String,
    pub session: String,
    /// `gbm` or `dumb`.
    pub allocator: String,
    /// Frames rendered straight into the scan-out buffers (imported dma-bufs).
    pub zero_copy: bool,
    /// The Vulkan device that renders, and whether it is the card's device
    /// (null: no device reported a DRM node). When it is not, every frame is
    /// copied into the scan-out buffer (`copied_frames`).
    pub render_device: String,
    pub renders_on_kms_device: Option<bool>,
    /// Flips that showed one of our composited buffers, and flips that
    /// showed a client's buffer directly (`direct`), with no composition.
    pub composited_frames: u64,
    pub direct_scanout_frames: u64,
    /// Client dma-bufs that could have been scanned out but the KMS device
    /// refused to import (composited instead; each counted once).
    pub direct_scanout_refused: u64,
    /// Frames copied by the CPU from the offscreen target into a scan-out
    /// buffer (fallback).
    pub copied_frames: u64,
    /// Atomic commits queued (page flips and modesets) and their completion
    /// events; every counted frame is one completed flip.
    pub flips_queued: u64,
    pub page_flips: u64,
    pub modesets: u64,
    /// Timer wake-ups that started a frame: pacing (below) or a retry while
    /// no flip could be queued.
    pub timer_ticks: u64,
    /// Flips that completed much sooner than the mode's refresh interval
    /// (drivers without vblank pacing, e.g. virtio-gpu): the next frame was
    /// started from a timer at the interval instead of right away.
    pub paced_by_timer: u64,
    /// Flips queued with the frame's sync_file as the plane's IN_FENCE_FD
    /// (the kernel waited for the GPU, not the loop).
    pub in_fence_flips: u64,
    /// 1 ms polls of a rendered frame's VkFence before it could be queued
    /// (devices without SYNC_FD export, and the copy fallback).
    pub fence_polls: u64,
    /// Session pause/activate (VT switches).
    pub session_pauses: u64,
    pub session_activations: u64,
    /// libinput devices seen.
    pub input_devices: u64,
    /// Mode driven: `WxH@Hz`, and the connector.
    pub mode: String,
    pub connector: String,
}

/// The KMS output and everything needed to draw into it.
///
/// Field order is drop order: the surface (clears its planes), then the
/// device (restores the CRTC state found at start, e.g. the console's), then
/// the framebuffers and buffers, then the fd (drops DRM master).
pub struct DrmBackend {
    surface: DrmSurface,
    drm: DrmDevice,
    scanout: scanout::Scanout,
    /// Held so the card fd (and DRM master) goes last.
    _drm_fd: DrmDeviceFd,
    pub renderer: VkRenderer,
    pub output: Output,
    /// Client buffers held until the frames that sampled them are done.
    pub releases: crate::buffer_sync::release::PendingReleases,
    pub stats: DrmStats,
    session: LibSeatSession,
    libinput: Option<Libinput>,
    loop_handle: LoopHandle<'static, State>,
    damage_tracker: DamageTracker,
    /// Which surfaces the output shows (wl_surface.enter/leave).
    pub(super) scene: super::OutputScene,
    clock: Clock<Monotonic>,
    frame_interval: Duration,
    /// What is being scanned out, and what is queued for the next flip.
    front: Option<Shown>,
    pending: Option<Shown>,
    /// The scan-out buffer rendered last.
    last_back: Option<usize>,
    /// Client framebuffers for direct scan-out, and the last frame's kind.
    direct: direct::DirectScanout,
    /// A flip queued when the session paused: it may have completed, so
    /// what it shows stays held until the first flip after activation.
    held_over_pause: Option<Shown>,
    /// Element states of the queued frame, for presentation feedback.
    pending_states: Option<Arc<RenderElementStates>>,
    /// A rendered frame whose GPU work is not done yet (see the module doc).
    rendered: Option<RenderedFrame>,
    needs_modeset: bool,
    /// When the previous page flip completed (pacing, see `on_page_flip`).
    last_flip: Option<std::time::Instant>,
    active: bool,
    timer_armed: bool,
    renders: u64,
    frames: u64,
    consecutive_failures: u32,
}

impl DrmBackend {
    /// The card and the pairs its primary plane scans out, as clients name
    /// them (`IN_FORMATS`, with LINEAR for formats listed without modifiers).
    pub fn scanout_formats(&self) -> (libc::dev_t, smithay::backend::allocator::format::FormatSet) {
        (
            self.drm.device_id(),
            direct::scanout_pairs(&self.surface.plane_info().formats),
        )
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn clock_id(&self) -> u32 {
        Monotonic::ID as u32
    }

    /// Reads the framebuffer being scanned out (through its dma-buf).
    pub fn screenshot(&mut self) -> anyhow::Result<RgbaImage> {
        match self.front.as_ref().context("no frame has been scanned out yet")? {
            Shown::Composited(i) => scanout::read_rgba(&self.scanout.buffers[*i].dmabuf),
            Shown::Client(frame) => scanout::read_rgba(&frame.dmabuf),
        }
    }

    /// The frame for `elements`: a client buffer scanned out directly
    /// where [`direct`] allows it, else `None` (composite), noting which.
    fn try_direct(
        &mut self,
        elements: &[crate::backend::scene::SceneElement],
        scale: smithay::utils::Scale<f64>,
    ) -> Option<RenderedFrame> {
        let chosen = if self.needs_modeset {
            Err(direct::Composited::Modeset)
        } else {
            let out = direct::Output {
                drm: &self._drm_fd,
                surface: &self.surface,
                plane_formats: &self.surface.plane_info().formats,
                size: self.scanout.size,
                scale,
            };
            self.direct.choose(&mut self.renderer, &self.releases, &out, elements)
        };
        match chosen {
            Ok(mut frame) => {
                self.direct.note(None);
                Some(RenderedFrame {
                    states: std::mem::take(&mut frame.states),
                    fence: None,
                    source: Source::Direct(Box::new(frame)),
                })
            }
            Err(reason) => {
                if self.direct.note(Some(reason)) {
                    // Our buffers missed every frame shown directly.
                    self.scanout.buffers.iter_mut().for_each(|buf| buf.rendered_at = None);
                    self.scanout.offscreen_rendered_at = None;
                }
                None
            }
        }
    }

    /// Renders the space into the back buffer, or picks a client buffer to
    /// scan out instead. Nothing waits for the GPU here.
    fn render(&mut self, space: &Space<Window>) -> anyhow::Result<RenderedFrame> {
        let scale = self.output.current_scale().fractional_scale();
        let elements = self.scene.elements(&mut self.renderer, space, &self.output)?;
        if let Some(frame) = self.try_direct(&elements, scale.into()) {
            self.scene.keep(elements);
            return Ok(frame);
        }
        let n = self.scanout.buffers.len();
        let back = match &self.front {
            Some(Shown::Composited(f)) => (f + 1) % n,
            _ => self.last_back.map_or(0, |b| (b + 1) % n),
        };
        self.last_back = Some(back);
        self.renders += 1;
        let now = self.renders;

        let zero_copy = self.scanout.zero_copy();
        let (w, h) = self.scanout.size;
        let (target, stamp): (&mut VkTarget, &mut Option<u64>) = if zero_copy {
            let buf = &mut self.scanout.buffers[back];
            (
                buf.target.as_mut().context("scan-out buffer not imported")?,
                &mut buf.rendered_at,
            )
        } else {
            let s = &mut self.scanout;
            (
                s.offscreen.as_mut().context("no offscreen target")?,
                &mut s.offscreen_rendered_at,
            )
        };
        let age = stamp.map_or(0, |at| (now - at) as usize);
        let mut framebuffer = self
            .renderer
            .bind(target)
            .map_err(|e| anyhow::anyhow!("binding the scan-out target: {e}"))?;
        let result = super::draw_output(
            &mut self.damage_tracker,
            &mut self.renderer,
            &mut self.releases,
            &mut framebuffer,
            age,
            &elements,
            &self.output,
        )?;
        *stamp = Some(now);
        let readback = if zero_copy {
            None
        } else {
            let region = Rectangle::from_size((w as i32, h as i32).into());
            Some(
                self.renderer
                    .copy_framebuffer(&framebuffer, region, Fourcc::Xrgb8888)
                    .map_err(|e| anyhow::anyhow!("reading the offscreen frame back: {e}"))?,
            )
        };
        self.scene.keep(elements);
        Ok(RenderedFrame {
            source: Source::Composited { back, readback },
            states: result.states,
            fence: result
                .sync
                .get::<crate::render::frame::VkSyncFence>()
                .map(|f| f.0.clone()),
        })
    }

    /// Whether `frame` may be queued now: its GPU work is done, or the
    /// kernel can wait for it (`IN_FENCE_FD`, zero-copy only).
    fn ready(frame: &RenderedFrame) -> bool {
        let readback = match &frame.source {
            // The kernel waits for the client's fences (IN_FENCE_FD).
            Source::Direct(_) => return true,
            Source::Composited { readback, .. } => readback,
        };
        if let Some(mapping) = readback {
            // The copy fallback reads the frame on the CPU: all of it must be done.
            return mapping.is_ready() && frame.fence.as_ref().is_none_or(|f| f.is_signaled());
        }
        match &frame.fence {
            None => true,
            Some(fence) => fence.is_signaled() || fence.sync_file().is_some(),
        }
    }

    /// Queues a frame with a page flip (or a modeset commit); for the copy
    /// fallback, first copies its (finished) read-back into the scan-out
    /// buffer.
    fn queue(&mut self, frame: RenderedFrame) -> anyhow::Result<()> {
        let (w, h) = self.scanout.size;
        let shown = match frame.source {
            Source::Composited { back, readback } => {
                if let Some(mapping) = &readback {
                    let bytes = self
                        .renderer
                        .map_texture(mapping)
                        .map_err(|e| anyhow::anyhow!("mapping the offscreen read-back: {e}"))?;
                    scanout::copy_into(&self.scanout.buffers[back].dmabuf, bytes)?;
                    self.stats.copied_frames += 1;
                }
                // Where the GPU may still be writing, the kernel waits for it.
                let in_fence = frame
                    .fence
                    .as_ref()
                    .filter(|f| readback.is_none() && !f.is_signaled())
                    .and_then(|f| f.sync_file());
                let fb = self.scanout.buffers[back].fb;
                self.commit(direct::plane_state(
                    &self.surface,
                    fb,
                    w,
                    h,
                    in_fence.map(|f| f.as_fd()),
                ))?;
                Shown::Composited(back)
            }
            Source::Direct(client) => {
                let fence = client.in_fence.as_ref().map(|f| f.as_fd());
                let plane = direct::plane_state(&self.surface, client.fb(), w, h, fence);
                if let Err(err) = self.commit(plane) {
                    // The retry composites: this buffer is not tried again.
                    self.direct.refuse(&client.dmabuf);
                    return Err(err.context("flipping to a client buffer"));
                }
                Shown::Client(client)
            }
        };
        self.pending = Some(shown);
        self.pending_states = Some(frame.states);
        Ok(())
    }

    /// Commits `plane`: a modeset the first time (and after a VT switch),
    /// a page flip otherwise.
    fn commit(&mut self, plane: PlaneState<'_>) -> anyhow::Result<()> {
        let fenced = plane.config.as_ref().is_some_and(|c| c.fence.is_some());
        if self.needs_modeset {
            self.surface.commit([plane], true).context("atomic modeset commit")?;
            self.needs_modeset = false;
            self.stats.modesets += 1;
            info!("modeset committed");
        } else {
            self.surface.page_flip([plane], true).context("atomic page flip")?;
        }
        if fenced {
            self.stats.in_fence_flips += 1;
        }
        self.stats.flips_queued += 1;
        Ok(())
    }
}

/// What a flip put (or will put) on the screen.
enum Shown {
    /// One of our scan-out buffers, by index.
    Composited(usize),
    /// A client's buffer, held while it is shown.
    Client(Box<direct::DirectFrame>),
}

/// Where a frame's pixels come from.
enum Source {
    /// Rendered into scan-out buffer `back` (or the offscreen target, with
    /// its read-back).
    Composited {
        back: usize,
        readback: Option<<VkRenderer as ExportMem>::TextureMapping>,
    },
    /// A client's buffer, scanned out as it is.
    Direct(Box<direct::DirectFrame>),
}

/// A frame ready to be queued once [`DrmBackend::ready`] says so.
struct RenderedFrame {
    source: Source,
    states: Arc<RenderElementStates>,
    fence: Option<Arc<importer::vulkan::ring::FrameFence>>,
}

impl Drop for DrmBackend {
    fn drop(&mut self) {
        info!(
            device = %self.stats.device,
            "releasing the DRM device: clearing our planes, restoring the CRTC state found at start, dropping master"
        );
    }
}

/// Opens the session and the card, picks the output, allocates and imports
/// the scan-out buffers. Event sources are added by [`insert_sources`].
pub fn create(
    handle: &LoopHandle<'static, State>,
    renderer_options: &crate::render::RendererOptions,
    opts: &DrmOptions,
) -> anyhow::Result<(DrmBackend, Sources)> {
    let (mut session, session_notifier) = session::open_session()?;
    let seat = session::udev_seat(&session.seat());
    let path = session::pick_device(&seat, opts.device.as_deref())?;
    let fd = session
        .open(
            &path,
            OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        )
        .with_context(|| format!("opening {} through the session", path.display()))?;
    let drm_fd = DrmDeviceFd::new(DeviceFd::from(fd));
    let (drm, drm_notifier) =
        DrmDevice::new(drm_fd.clone(), true).with_context(|| format!("initializing DRM on {}", path.display()))?;
    info!(
        device = %path.display(),
        atomic = drm.is_atomic(),
        driver = ?smithay::backend::udev::driver(drm.device_id()).ok().flatten(),
        "DRM device opened"
    );
    anyhow::ensure!(drm.is_atomic(), "{} has no atomic modesetting", path.display());

    // The device behind the card renders where it can (multi-GPU otherwise).
    let card = drm.device_id();
    let renderer_options = crate::render::RendererOptions {
        kms_node: Some((i64::from(libc::major(card)), i64::from(libc::minor(card)))),
        ..renderer_options.clone()
    };
    let renderer =
        VkRenderer::new(&renderer_options).map_err(|e| anyhow::anyhow!("creating the Vulkan renderer: {e}"))?;
    info!("Vulkan device: {}", renderer.device_summary());
    let mut renderer = renderer;

    let choice = output::probe(&drm)?;
    let (mw, mh) = choice.mode.size();
    let refresh_hz = choice.mode.vrefresh().max(1);
    info!(
        connector = %choice.name,
        crtc = ?choice.crtc,
        mode = %format!("{mw}x{mh}@{refresh_hz}"),
        "output chosen"
    );
    let mut drm = drm;
    let surface = drm
        .create_surface(choice.crtc, choice.mode, &[choice.connector])
        .context("creating the DRM surface (CRTC + primary plane)")?;
    let plane_formats = surface.plane_info().formats.clone();
    let scanout = scanout::Scanout::new(
        &drm_fd,
        &mut renderer,
        opts.allocator,
        (u32::from(mw), u32::from(mh)),
        &plane_formats,
    )?;

    let size = Size::<i32, Physical>::from((i32::from(mw), i32::from(mh)));
    let output = super::new_output(choice.name.clone(), "drm", choice.size_mm, size, refresh_hz, opts.scale);

    let stats = DrmStats {
        device: path.display().to_string(),
        session: format!(
            "libseat/{}",
            session::backend_name(
                std::env::var("LIBSEAT_BACKEND").ok().as_deref(),
                &session.seat(),
                std::path::Path::new("/run/seatd.sock").exists()
            )
        ),
        allocator: scanout.allocator.name().into(),
        zero_copy: scanout.zero_copy(),
        render_device: renderer.device_name(),
        renders_on_kms_device: renderer.renders_on_kms_device(),
        mode: format!("{mw}x{mh}@{refresh_hz}"),
        connector: choice.name.clone(),
        ..Default::default()
    };
    // libseat's noop backend has no VT and no pause/activate: it is active
    // from the start even when it has not said so yet.
    let noop = session.seat() == "noop";
    let active = session.is_active() || noop;
    if !active {
        info!("session not active yet; the first frame waits for its activation");
    }
    let backend = DrmBackend {
        surface,
        drm,
        scanout,
        _drm_fd: drm_fd,
        renderer,
        output,
        releases: Default::default(),
        stats,
        session,
        libinput: None,
        loop_handle: handle.clone(),
        damage_tracker: DamageTracker::default(),
        scene: Default::default(),
        clock: Clock::new(),
        frame_interval: Duration::from_secs(1) / refresh_hz,
        front: None,
        pending: None,
        last_back: None,
        direct: Default::default(),
        held_over_pause: None,
        pending_states: None,
        rendered: None,
        needs_modeset: true,
        last_flip: None,
        active,
        timer_armed: false,
        renders: 0,
        frames: 0,
        consecutive_failures: 0,
    };
    Ok((
        backend,
        Sources {
            session: session_notifier,
            drm: drm_notifier,
            seat,
        },
    ))
}

/// Event sources created with the backend, inserted once `State` exists.
pub struct Sources {
    session: smithay::backend::session::libseat::LibSeatSessionNotifier,
    drm: smithay::backend::drm::DrmDeviceNotifier,
    seat: String,
}

/// Page-flip events, session pause/activate, udev hotplug, libinput; then
/// the first frame.
pub fn insert_sources(handle: &LoopHandle<'static, State>, state: &mut State, sources: Sources) -> anyhow::Result<()> {
    handle
        .insert_source(sources.drm, |event, metadata, state| match event {
            DrmEvent::VBlank(_crtc) => on_page_flip(state, metadata.as_ref()),
            DrmEvent::Error(err) => error!("DRM event error: {err}"),
        })
        .map_err(|e| anyhow::anyhow!("inserting the DRM event source: {e}"))?;
    handle
        .insert_source(sources.session, |event, _, state| on_session_event(state, event))
        .map_err(|e| anyhow::anyhow!("inserting the session source: {e}"))?;
    let Backend::Drm(b) = &mut state.backend else {
        anyhow::bail!("insert_sources on a non-drm backend");
    };
    let dev_id = b.drm.device_id();
    if let Err(err) = session::watch_udev(handle, &sources.seat, dev_id) {
        warn!("no udev hotplug events: {err:#}");
    }
    match session::start_libinput(handle, &b.session, &sources.seat) {
        Ok(ctx) => b.libinput = Some(ctx),
        Err(err) => warn!("no libinput input: {err:#}"),
    }
    // A zero timer, not an idle callback: calloop blocks in poll before it
    // runs idles, and nothing else may wake the loop before the first flip.
    handle
        .insert_source(Timer::immediate(), |_, _, state| {
            if let Backend::Drm(b) = &state.backend {
                session::log_input_devices(b.stats.input_devices as u32);
            }
            next_frame(state);
            TimeoutAction::Drop
        })
        .map_err(|e| anyhow::anyhow!("inserting the first-frame timer: {e}"))?;
    Ok(())
}

fn on_page_flip(state: &mut State, metadata: Option<&DrmEventMetadata>) {
    let Backend::Drm(b) = &mut state.backend else { return };
    let Some(shown) = b.pending.take() else {
        debug!("page-flip event without a queued flip (after a session switch?)");
        return;
    };
    match &shown {
        Shown::Composited(_) => b.stats.composited_frames += 1,
        Shown::Client(_) => b.stats.direct_scanout_frames += 1,
    }
    // The buffer shown until now (a client's: released here) is replaced,
    // and so is whatever a flip queued before a session pause showed.
    b.front = Some(shown);
    b.held_over_pause = None;
    b.frames += 1;
    b.stats.page_flips += 1;
    let frame = b.frames;
    let time: Time<Monotonic> = match metadata.map(|m| m.time) {
        Some(DrmEventTime::Monotonic(t)) => t.into(),
        _ => b.clock.now(),
    };
    let seq = metadata.map_or(frame, |m| u64::from(m.sequence));
    let refresh = Refresh::fixed(b.frame_interval);
    let states = b.pending_states.take().unwrap_or_default();
    if frame == 1 {
        info!("first frame scanned out");
    }
    super::frame_shown(
        state,
        &states,
        time,
        refresh,
        seq,
        wp_presentation_feedback::Kind::Vsync
            | wp_presentation_feedback::Kind::HwClock
            | wp_presentation_feedback::Kind::HwCompletion,
    );
    if state.lifecycle.exit_after_frames.is_some_and(|n| frame >= n) {
        state.request_exit(0, "--exit-after-frames reached");
        return;
    }
    // A driver that completes flips without waiting for a vblank (virtio-gpu
    // has no vblank interrupt) would make this loop spin and pace clients
    // far above the mode's refresh: start the next frame one refresh
    // interval after the previous flip instead.
    let Backend::Drm(b) = &mut state.backend else { return };
    let now = std::time::Instant::now();
    let early = b
        .last_flip
        .map(|prev| prev + b.frame_interval)
        .filter(|due| *due > now + b.frame_interval / 4);
    b.last_flip = Some(now);
    match early {
        Some(due) => {
            b.stats.paced_by_timer += 1;
            b.last_flip = Some(due - b.frame_interval); // keep the grid
            arm_timer(b, due - now);
        }
        None => next_frame(state),
    }
}

/// Renders and queues the next frame, or arms the retry timer.
fn next_frame(state: &mut State) {
    if state.lifecycle.exit_code.is_some() {
        return;
    }
    super::housekeeping(state);
    let stopped = state.rendering_stopped();
    let Backend::Drm(b) = &mut state.backend else { return };
    if b.pending.is_some() || b.rendered.is_some() {
        return; // its page-flip event (or the fence poll) calls us again
    }
    if !b.active {
        // Paused (VT switched away): nothing can be shown until the session
        // is activated again, and activation calls us. No retry timer, so
        // the loop sleeps instead of waking at the refresh rate meanwhile.
        b.scene.forget();
        return;
    }
    if stopped {
        b.scene.forget();
        let interval = b.frame_interval;
        arm_timer(b, interval);
        return;
    }
    super::scene::drop_dead_windows(&mut state.space);
    state.popups.cleanup();
    let Backend::Drm(b) = &mut state.backend else { return };
    let queued = b.render(&state.space).and_then(|frame| {
        super::injected_device_loss(&b.renderer)?;
        if DrmBackend::ready(&frame) {
            b.queue(frame)
        } else {
            b.rendered = Some(frame);
            poll_rendered_frame(b);
            Ok(())
        }
    });
    let candidate = b
        .direct
        .candidate
        .clone()
        .and_then(|id| toplevel_with_id(&state.space, &id));
    state.scanout_candidate(candidate.as_ref());
    on_queue_result(state, queued);
}

/// The toplevel surface whose render element is `id`.
fn toplevel_with_id(space: &Space<Window>, id: &Id) -> Option<WlSurface> {
    space
        .elements()
        .filter_map(|w| w.toplevel().map(|t| t.wl_surface().clone()))
        .find(|s| Id::from_wayland_resource(s) == *id)
}

/// Counts a frame that failed to render or queue; gives up after too many.
fn on_queue_result(state: &mut State, result: anyhow::Result<()>) {
    if result.is_err() && super::device_lost(state) {
        super::on_device_lost(state);
        return;
    }
    let Backend::Drm(b) = &mut state.backend else { return };
    match result {
        Ok(()) => b.consecutive_failures = 0,
        Err(err) => {
            b.consecutive_failures += 1;
            if b.consecutive_failures == 1 {
                warn!("frame failed to render or queue: {err:#}");
            }
            if b.consecutive_failures >= MAX_CONSECUTIVE_FAILURES {
                error!("{} consecutive frames failed: {err:#}", b.consecutive_failures);
                state.request_exit(1, "drm output keeps failing");
                return;
            }
            let interval = b.frame_interval;
            arm_timer(b, interval);
        }
    }
}

/// Polls the parked frame's VkFence every millisecond (non-blocking
/// `vkGetFenceStatus`) and queues the frame once it signaled.
fn poll_rendered_frame(b: &mut DrmBackend) {
    let res = b
        .loop_handle
        .insert_source(Timer::from_duration(Duration::from_millis(1)), |_, _, state| {
            let Backend::Drm(b) = &mut state.backend else {
                return TimeoutAction::Drop;
            };
            b.stats.fence_polls += 1;
            let Some(frame) = b.rendered.take() else {
                return TimeoutAction::Drop;
            };
            if !DrmBackend::ready(&frame) {
                b.rendered = Some(frame);
                return TimeoutAction::ToDuration(Duration::from_millis(1));
            }
            let queued = if b.active { b.queue(frame) } else { Ok(()) };
            on_queue_result(state, queued);
            TimeoutAction::Drop
        });
    if let Err(e) = res {
        error!("arming the frame-fence poll: {e}");
    }
}

/// Runs [`next_frame`] after `delay` (at most one such timer at a time).
fn arm_timer(b: &mut DrmBackend, delay: Duration) {
    if b.timer_armed {
        return;
    }
    b.timer_armed = true;
    let res = b.loop_handle.insert_source(Timer::from_duration(delay), |_, _, state| {
        if let Backend::Drm(b) = &mut state.backend {
            b.timer_armed = false;
            b.stats.timer_ticks += 1;
        }
        next_frame(state);
        TimeoutAction::Drop
    });
    if let Err(e) = res {
        b.timer_armed = false;
        error!("arming the frame retry timer: {e}");
    }
}

/// VT switches: pause drops master and stops input; activate takes them
/// back and re-commits the whole state (modeset) with the next frame.
fn on_session_event(state: &mut State, event: SessionEvent) {
    let Backend::Drm(b) = &mut state.backend else { return };
    match event {
        SessionEvent::PauseSession => {
            info!("session paused (VT switch away): deactivating the DRM device and input");
            b.stats.session_pauses += 1;
            b.active = false;
            if let Some(li) = b.libinput.as_mut() {
                li.suspend();
            }
            b.drm.pause();
            // A flip queued before the switch may never complete, or may
            // have: keep its buffer until a later flip replaces it.
            b.held_over_pause = b.pending.take();
            b.pending_states = None;
        }
        SessionEvent::ActivateSession => {
            info!("session activated (VT switch back): reactivating the DRM device and input");
            b.stats.session_activations += 1;
            if let Some(li) = b.libinput.as_mut() {
                if li.resume().is_err() {
                    warn!("libinput: resume failed");
                }
            }
            if let Err(err) = b.drm.activate(false) {
                error!("reactivating the DRM device: {err}");
            }
            if let Err(err) = b.surface.reset_state() {
                warn!("re-reading the CRTC state: {err}");
            }
            b.active = true;
            b.needs_modeset = true;
            // Everything must be redrawn: the other session owned the screen.
            b.scanout.buffers.iter_mut().for_each(|buf| buf.rendered_at = None);
            b.scanout.offscreen_rendered_at = None;
            next_frame(state);
        }
    }
}

/// The `"drm"` stats, if this is the drm backend.
pub fn stats(backend: &Backend) -> Option<DrmStats> {
    match backend {
        Backend::Drm(b) => Some(DrmStats {
            direct_scanout_refused: b.direct.refused,
            ..b.stats.clone()
        }),
        Backend::Headless(_) => None,
    }
}
