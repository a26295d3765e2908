//! Reusable start-up of the compositor on a calloop event loop, shared by the
//! `compositor` binary and in-process embedders (the WLCS integration in
//! `wlcs/`, headless), so both run exactly the same globals, shell and frame
//! clock.

use std::{os::unix::net::UnixStream, sync::Arc};

use anyhow::Context;
use smithay::reexports::{
    calloop::{generic::Generic, EventLoop, Interest, Mode, PostAction},
    wayland_server::{Client, Display},
};
use tracing::{info, warn};

use crate::{
    backend::{
        drm,
        headless::{self, HeadlessBackend, HeadlessOptions},
        Backend,
    },
    render::{RendererOptions, VkRenderer},
    state::{Lifecycle, State},
};

/// Creates the Vulkan renderer and the offscreen output.
pub fn create_headless_backend(renderer: &RendererOptions, output: HeadlessOptions) -> anyhow::Result<HeadlessBackend> {
    let renderer = VkRenderer::new(renderer).map_err(|e| anyhow::anyhow!("creating the Vulkan renderer: {e}"))?;
    info!("Vulkan device: {}", renderer.device_summary());
    HeadlessBackend::new(renderer, output)
}

/// Builds the compositor state on `event_loop`: every global, client dispatch
/// and the frame clock. Sockets, signals and clients are the caller's.
pub fn init_headless(
    event_loop: &EventLoop<'static, State>,
    backend: HeadlessBackend,
    lifecycle: Lifecycle,
) -> anyhow::Result<State> {
    let frame_interval = headless::frame_interval(&backend);
    let state = init_state(event_loop, Backend::Headless(backend), lifecycle)?;
    headless::start_frame_clock(&event_loop.handle(), frame_interval)?;
    Ok(state)
}

/// [`init_headless`] for the DRM/KMS backend: opens the session and the card,
/// sets the output up, and starts the page-flip-driven frame clock.
pub fn init_drm(
    event_loop: &EventLoop<'static, State>,
    renderer: &RendererOptions,
    options: &drm::DrmOptions,
    lifecycle: Lifecycle,
) -> anyhow::Result<State> {
    let handle = event_loop.handle();
    let (backend, sources) = drm::create(&handle, renderer, options)?;
    let mut state = init_state(event_loop, Backend::Drm(Box::new(backend)), lifecycle)?;
    drm::insert_sources(&handle, &mut state, sources)?;
    Ok(state)
}

/// What every backend shares: globals, sync sources, the CPU copy worker
/// and client dispatch.
fn init_state(event_loop: &EventLoop<'static, State>, backend: Backend, lifecycle: Lifecycle) -> anyhow::Result<State> {
    let display: Display<State> = Display::new().context("creating the wayland display")?;
    let mut state = State::new(display.handle(), event_loop.get_signal(), backend, lifecycle)?;
    // Fence and acquire-point sources go into this loop.
    state.buffer_sync.loop_handle = Some(event_loop.handle());
    // CPU fallback: large copies run on a worker that wakes this loop.
    crate::cpu_copy::start(&event_loop.handle(), &mut state)?;
    insert_display_source(event_loop, display)?;
    Ok(state)
}

/// What the event loop runs after every dispatch: exit rules, then flushing
/// the events handlers queued for clients.
pub fn after_dispatch(state: &mut State) {
    state.after_dispatch();
    if let Err(err) = state.display_handle.flush_clients() {
        warn!("flushing clients: {err}");
    }
}

/// Adds a client on an already connected stream (a socketpair end handed to
/// an in-process test client). `pid` is the peer's, if known.
pub fn insert_client(state: &mut State, stream: UnixStream, pid: Option<i32>) -> anyhow::Result<Client> {
    let socket = stream.try_clone().map(std::os::fd::OwnedFd::from).ok();
    let client_state = state.client_state_for(pid, socket);
    state
        .display_handle
        .insert_client(stream, Arc::new(client_state))
        .context("adding a client")
}

/// Dispatches client requests whenever any client socket is readable.
fn insert_display_source(event_loop: &EventLoop<'static, State>, display: Display<State>) -> anyhow::Result<()> {
    event_loop
        .handle()
        .insert_source(
            Generic::new(display, Interest::READ, Mode::Level),
            |_, display, state| {
                // SAFETY: the display is never dropped or replaced through this reference.
                let display = unsafe { display.get_mut() };
                if let Err(err) = display.dispatch_clients(state) {
                    warn!("dispatching clients: {err}");
                }
                Ok(PostAction::Continue)
            },
        )
        .map_err(|e| anyhow::anyhow!("inserting the display source: {e}"))?;
    Ok(())
}
