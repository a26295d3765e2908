//! Backends own the output and decide when frames are drawn.
//!
//! * [`headless`]: an offscreen target paced by a drift-free timer.
//! * [`drm`]: a KMS output through a libseat session, paced by page flips.
//!
//! [`Backend`] is what [`State`] holds; the shell, sync, stats and screenshot
//! code reach the renderer, the output and the release tracking through it
//! without knowing which backend runs. What happens after a frame is shown
//! (frame callbacks, presentation feedback) is shared here.

pub mod drm;
pub mod headless;
pub mod scene;
pub mod select;

use std::time::Duration;

use anyhow::Context;

use smithay::{
    backend::renderer::element::{Id, RenderElementStates},
    desktop::utils::{surface_presentation_feedback_flags_from_states, SurfacePresentationFeedback},
    output::Output,
    reexports::{
        wayland_protocols::wp::presentation_time::server::wp_presentation_feedback,
        wayland_server::{protocol::wl_surface::WlSurface, Resource},
    },
    utils::{ClockSource, Monotonic, Time},
    wayland::{
        compositor::{with_states, SurfaceAttributes},
        presentation::{PresentationFeedbackCachedState, Refresh},
    },
};

use tracing::{error, info};

use crate::{
    buffer_sync::release::PendingReleases,
    render::{
        damage::{DamageTracker, OutputMode, RenderedOutput},
        VkFramebuffer, VkRenderer,
    },
    screenshot::RgbaImage,
    state::State,
};

pub use drm::DrmBackend;
pub use headless::HeadlessBackend;
pub use scene::OutputScene;

/// A wl_output with one mode (`refresh_hz`), normal transform, integer
/// `scale`, at the origin of the global space.
pub fn new_output(
    name: String,
    model: &str,
    size_mm: (i32, i32),
    size: smithay::utils::Size<i32, smithay::utils::Physical>,
    refresh_hz: u32,
    scale: i32,
) -> Output {
    use smithay::output::{Mode, PhysicalProperties, Scale, Subpixel};
    let output = Output::new(
        name,
        PhysicalProperties {
            size: size_mm.into(),
            subpixel: Subpixel::Unknown,
            make: "compositor".into(),
            model: model.into(),
        },
    );
    let mode = Mode {
        size,
        refresh: (refresh_hz * 1000) as i32,
    };
    output.change_current_state(
        Some(mode),
        Some(smithay::utils::Transform::Normal),
        Some(Scale::Integer(scale)),
        Some((0, 0).into()),
    );
    output.set_preferred(mode);
    output
}

/// The running backend (one per process, so the headless variant's size does not matter).
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    Headless(HeadlessBackend),
    Drm(Box<DrmBackend>),
}

impl Backend {
    pub fn renderer(&self) -> &VkRenderer {
        match self {
            Backend::Headless(b) => &b.renderer,
            Backend::Drm(b) => &b.renderer,
        }
    }

    pub fn renderer_mut(&mut self) -> &mut VkRenderer {
        match self {
            Backend::Headless(b) => &mut b.renderer,
            Backend::Drm(b) => &mut b.renderer,
        }
    }

    pub fn output(&self) -> &Output {
        match self {
            Backend::Headless(b) => &b.output,
            Backend::Drm(b) => &b.output,
        }
    }

    /// Client buffers held until the frames that sampled them finished.
    pub fn releases(&self) -> &PendingReleases {
        match self {
            Backend::Headless(b) => &b.releases,
            Backend::Drm(b) => &b.releases,
        }
    }

    pub fn releases_mut(&mut self) -> &mut PendingReleases {
        match self {
            Backend::Headless(b) => &mut b.releases,
            Backend::Drm(b) => &mut b.releases,
        }
    }

    /// The KMS card and the formats its primary plane scans out (drm only).
    pub fn scanout_formats(&self) -> Option<(libc::dev_t, smithay::backend::allocator::format::FormatSet)> {
        match self {
            Backend::Headless(_) => None,
            Backend::Drm(b) => Some(b.scanout_formats()),
        }
    }

    /// Drops the render elements kept for the next frame, and the client
    /// buffers and textures they hold (rendering is over).
    pub fn forget_kept_elements(&mut self) {
        match self {
            Backend::Headless(b) => b.scene.forget(),
            Backend::Drm(b) => b.scene.forget(),
        }
    }

    /// Render elements built and reused so far.
    pub fn scene_stats(&self) -> scene::SceneStats {
        match self {
            Backend::Headless(b) => b.scene.stats(),
            Backend::Drm(b) => b.scene.stats(),
        }
    }

    /// Frames shown: rendered (headless) or scanned out after a page flip (drm).
    pub fn frames(&self) -> u64 {
        match self {
            Backend::Headless(b) => b.frames(),
            Backend::Drm(b) => b.frames(),
        }
    }

    /// Clock id advertised by wp_presentation (both use CLOCK_MONOTONIC).
    pub fn clock_id(&self) -> u32 {
        match self {
            Backend::Headless(b) => b.clock_id(),
            Backend::Drm(b) => b.clock_id(),
        }
    }

    /// What the output shows, as RGBA8: the headless target read back, or
    /// on drm the framebuffer being scanned out, read through its dma-buf.
    /// Blocking (GPU or CPU access): exit time only.
    pub fn screenshot(
        &mut self,
        space: &smithay::desktop::Space<smithay::desktop::Window>,
    ) -> anyhow::Result<RgbaImage> {
        match self {
            Backend::Headless(b) => {
                if b.frames() == 0 {
                    // Nothing was ever drawn; the target's contents are undefined.
                    tracing::info!("no frame rendered yet; rendering one for the screenshot");
                    b.render(space)?;
                }
                b.screenshot()
            }
            Backend::Drm(b) => b.screenshot(),
        }
    }
}

/// Exit status after the GPU device was lost (EX_TEMPFAIL: a session
/// manager may start the compositor again).
pub const EXIT_DEVICE_LOST: i32 = 75;

/// Whether the renderer's device was lost.
pub(crate) fn device_lost(state: &State) -> bool {
    state.backend.renderer().core().device_lost()
}

/// DOC: device loss
///
/// After `VK_ERROR_DEVICE_LOST` nothing made from the device works again.
/// The compositor does not rebuild the device: every client is disconnected
/// with the `wl_display` error `implementation` ("the compositor lost its
/// GPU device"), so none is left waiting for frames that never come, and
/// the compositor exits with [`EXIT_DEVICE_LOST`]. Nothing is re-imported;
/// `--screenshot` is not written (its read-back would need the device).
pub(crate) fn on_device_lost(state: &mut State) {
    error!(
        status = EXIT_DEVICE_LOST,
        "the GPU device was lost (VK_ERROR_DEVICE_LOST): disconnecting every client with an error and exiting"
    );
    let told = crate::display_error::post_all(
        &state.display_handle,
        crate::display_error::IMPLEMENTATION,
        "the compositor lost its GPU device and is exiting",
    );
    info!(clients = told, "clients told of the device loss");
    state.request_exit(EXIT_DEVICE_LOST, "GPU device lost");
}

/// Test builds: a device loss injected after a frame was submitted
/// (`COMPOSITOR_DEVICE_LOST_AT_FRAME`, `crate::test_hooks`), reported as
/// that frame's error. Always `Ok` without the hook.
pub(crate) fn injected_device_loss(renderer: &VkRenderer) -> anyhow::Result<()> {
    if !crate::test_hooks::device_lost_now() {
        return Ok(());
    }
    renderer.core().mark_device_lost();
    Err(importer::vulkan::VkError::Call {
        call: "vkQueueSubmit (injected by a test hook)",
        result: ash::vk::Result::ERROR_DEVICE_LOST,
    }
    .into())
}

/// Draws `elements` into `framebuffer`, which holds the picture of `age`
/// frames ago (0: unknown): only the damage since, over [`headless::CLEAR_COLOR`].
///
/// The client buffers the frame read wait in `releases` until the GPU is
/// done with them (or are released early where the frame's fence went into
/// their reservations), also when the frame failed after it was begun: what
/// it recorded was submitted all the same.
///
/// Locks: none may be a reservation. Submitting the frame locks the
/// reservations of the client buffers it drew itself
/// (`importer::renderer::RenderCore::submit_frame`); recording the
/// releases takes none.
pub(crate) fn draw_output(
    tracker: &mut DamageTracker,
    renderer: &mut VkRenderer,
    releases: &mut PendingReleases,
    framebuffer: &mut VkFramebuffer<'_>,
    age: usize,
    elements: &[crate::backend::scene::SceneElement],
    output: &Output,
) -> anyhow::Result<RenderedOutput> {
    let mode = OutputMode::of(output).context("the output has no mode")?;
    match tracker.render_output(renderer, framebuffer, age, elements, mode, headless::CLEAR_COLOR.into()) {
        Ok(result) => {
            releases.track_frame(renderer, picked(elements, &result.drawn), &result.sync);
            Ok(result)
        }
        Err(failure) => {
            if let Some(partial) = &failure.partial {
                releases.track_frame(renderer, picked(elements, &partial.read), &partial.sync);
            }
            Err(anyhow::Error::new(failure.error).context("rendering the output"))
        }
    }
}

/// The elements of `elements` at `indices`.
fn picked<'e, T>(elements: &'e [T], indices: &'e [usize]) -> impl Iterator<Item = &'e T> + 'e {
    indices.iter().map(move |&i| &elements[i])
}

/// Frame-tick housekeeping shared by the backends; never blocks.
pub(crate) fn housekeeping(state: &mut State) {
    // Release buffers of finished frames (non-blocking fence polls).
    state.backend.releases_mut().poll();
    // CPU copies held for surfaces that are gone.
    crate::cpu_copy::prune(state);
    // Reservations (docs/locking-rules.md, rule B3): destroy imports whose client dma-buf is gone
    // (invalidate under the lock, bury), then free what the graveyard's
    // fences allow. Both only try-lock or take one uncontended lock; neither
    // waits on a fence.
    let renderer = state.backend.renderer_mut();
    renderer.drop_dead_imports();
    renderer.poll_graveyard();
    // Log commits held past --stall-timeout; drop the fence watches of
    // surfaces that are gone (with what they hold of their client).
    state.held_commits.check(std::time::Instant::now());
    if let Some(handle) = state.buffer_sync.loop_handle.clone() {
        state.buffer_sync.watches.prune(&handle);
    }
}

/// DOC: frame callbacks and presentation feedback
///
/// A surface waits for a frame when its applied state holds frame callbacks
/// or presentation feedback. It is noted when that state is applied (by its
/// own commit, or a synchronized subsurface's with its parent's), so a frame
/// answers exactly the surfaces noted since the previous one instead of
/// walking every surface of every window.
///
/// * Frame callbacks go to every noted surface, each frame, visible or not,
///   so clients (idle witnesses, unmapped and role-less surfaces included)
///   keep being paced.
/// * Presentation feedback is `presented` for a surface the frame showed
///   (it has a render state: drawn, scanned out or under opaque content of
///   the same frame) and `discarded` for one it did not (off the output,
///   unmapped, without a buffer): its content update was never displayed.
#[derive(Debug, Default)]
pub struct AwaitingFrame {
    surfaces: Vec<WlSurface>,
}

impl AwaitingFrame {
    /// Notes `surface` if its just-applied state waits for a frame.
    pub fn note(&mut self, surface: &WlSurface) {
        let waits = with_states(surface, |states| {
            let mut attributes = states.cached_state.get::<SurfaceAttributes>();
            // `has` first: `get` would add the cache to every surface, and
            // smithay commits each cache with every state of its surface.
            !attributes.current().frame_callbacks.is_empty()
                || (states.cached_state.has::<PresentationFeedbackCachedState>()
                    && !states
                        .cached_state
                        .get::<PresentationFeedbackCachedState>()
                        .current()
                        .callbacks
                        .is_empty())
        });
        if waits && !self.surfaces.contains(surface) {
            self.surfaces.push(surface.clone());
        }
    }
}

/// A frame was shown at `time`: answers the surfaces waiting for it (see
/// [`AwaitingFrame`]), presentation feedback first.
pub(crate) fn frame_shown(
    state: &mut State,
    render_states: &RenderElementStates,
    time: Time<Monotonic>,
    refresh: Refresh,
    seq: u64,
    kind: wp_presentation_feedback::Kind,
) {
    let output = state.backend.output().clone();
    let time = Duration::from(time);
    let done_ms = time.as_millis() as u32;
    for surface in std::mem::take(&mut state.awaiting_frame.surfaces) {
        if !surface.is_alive() {
            continue;
        }
        let shown = render_states.states.contains_key(&Id::from_wayland_resource(&surface));
        let own = surface_presentation_feedback_flags_from_states(&surface, render_states);
        let callbacks = with_states(&surface, |states| {
            if let Some(mut feedback) = SurfacePresentationFeedback::from_states(states, own) {
                if shown {
                    feedback.presented(&output, Monotonic::ID as u32, time, refresh, seq, kind);
                } else {
                    feedback.discarded();
                }
            }
            std::mem::take(&mut states.cached_state.get::<SurfaceAttributes>().current().frame_callbacks)
        });
        for callback in callbacks {
            callback.done(done_ms);
        }
    }
}
