//! Blocking Wayland test client: connection, globals and bounded event waits.
//!
//! Everything that waits does so on real events (socket readability via
//! `poll`) with a deadline, so a misbehaving compositor makes a test fail with
//! a message instead of hanging it.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rustix::event::{PollFd, PollFlags};
use wayland_client::backend::WaylandError;
use wayland_client::globals::{registry_queue_init, GlobalList, GlobalListContents};
use wayland_client::protocol::{
    wl_callback, wl_compositor, wl_output, wl_region, wl_registry, wl_subcompositor, wl_surface,
};
use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_dmabuf_v1::{self, ZwpLinuxDmabufV1};
use wayland_protocols::wp::presentation_time::client::wp_presentation::{self, WpPresentation};
use wayland_protocols::xdg::shell::client::xdg_wm_base::{self, XdgWmBase};

pub use wayland_client::backend::protocol::ProtocolError;

/// Default bound for every wait, overridable with `TEST_TIMEOUT_SECS` (slow
/// software rendering under a loaded CI machine may need more).
pub fn default_timeout() -> Duration {
    let secs = std::env::var("TEST_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
}

/// Event-derived state shared by all objects of one connection.
#[derive(Debug, Default)]
pub struct State {
    /// `zwp_linux_dmabuf_v1.format` events, in arrival order.
    pub dmabuf_formats: Vec<u32>,
    /// `zwp_linux_dmabuf_v1.modifier` events as `(fourcc, modifier)`.
    pub dmabuf_modifiers: Vec<(u32, u64)>,
    /// `wp_presentation.clock_id`: the clock presentation times are in.
    pub presentation_clock: Option<u32>,
    /// Surfaces on an output now: `wl_surface.enter` without a later `leave`.
    pub entered: std::collections::HashSet<wayland_client::backend::ObjectId>,
}

/// The globals a test client needs.
#[derive(Debug, Clone)]
pub struct Globals {
    pub compositor: wl_compositor::WlCompositor,
    pub subcompositor: wl_subcompositor::WlSubcompositor,
    pub wm_base: XdgWmBase,
    pub dmabuf: ZwpLinuxDmabufV1,
    pub presentation: Option<WpPresentation>,
    /// `wp_linux_drm_syncobj_manager_v1`: offered only where the compositor
    /// has a render node with syncobj timelines (the kernel VM tier).
    pub syncobj: Option<crate::explicit::SyncobjManager>,
    /// `wl_shm`, for tests that need a buffer that is not a dma-buf.
    pub shm: Option<wayland_client::protocol::wl_shm::WlShm>,
}

/// One connection to the compositor with its own event queue.
pub struct Client {
    pub conn: Connection,
    queue: EventQueue<State>,
    pub qh: QueueHandle<State>,
    pub state: State,
    pub globals: Globals,
    /// Bound for [`Client::dispatch_until`] callers that don't pass their own.
    pub timeout: Duration,
    /// The registry's globals, for binding what [`Globals`] leaves out.
    pub registry: GlobalList,
    /// `wp_color_representation_manager_v1`, bound on first use by
    /// [`Client::color_representation`].
    color_representation: Option<crate::color_representation::ColorRepresentationManager>,
}

impl Client {
    /// Connects using `WAYLAND_DISPLAY` / `XDG_RUNTIME_DIR` (or `WAYLAND_SOCKET`).
    pub fn connect() -> Result<Client> {
        let conn = Connection::connect_to_env().context("connect to the Wayland display from env")?;
        Client::from_connection(conn)
    }

    /// Connects to an explicit socket path; tests use this instead of mutating
    /// the process environment, which other test threads share.
    pub fn connect_to(socket: &Path) -> Result<Client> {
        let stream = UnixStream::connect(socket).with_context(|| format!("connect to {}", socket.display()))?;
        let conn = Connection::from_socket(stream).context("set up Wayland connection")?;
        Client::from_connection(conn)
    }

    fn from_connection(conn: Connection) -> Result<Client> {
        let (globals, queue) = registry_queue_init::<State>(&conn).context("read the registry")?;
        let qh = queue.handle();
        let bound = bind_globals(&globals, &qh)?;
        let mut client = Client {
            conn,
            queue,
            qh,
            state: State::default(),
            globals: bound,
            timeout: default_timeout(),
            registry: globals,
            color_representation: None,
        };
        // Collect the dmabuf format/modifier announcements sent on bind.
        client.roundtrip()?;
        Ok(client)
    }

    /// This connection's `wp_color_representation_manager_v1`, bound (and
    /// its announcements received) the first time it is asked for; fails
    /// if the compositor does not offer it. Clients that never call this
    /// never bind the protocol.
    pub fn color_representation(&mut self) -> Result<crate::color_representation::ColorRepresentationManager> {
        if let Some(manager) = &self.color_representation {
            return Ok(manager.clone());
        }
        let manager = crate::color_representation::ColorRepresentationManager::bind(self)?;
        self.color_representation = Some(manager.clone());
        Ok(manager)
    }

    /// Binds the (first) `wl_output`: the compositor tells a client which
    /// of its surfaces are on an output only through outputs it bound
    /// ([`State::entered`]).
    pub fn bind_output(&mut self) -> Result<wl_output::WlOutput> {
        let output = self
            .registry
            .bind::<wl_output::WlOutput, _, _>(&self.qh, 1..=4, ())
            .context("no wl_output global")?;
        self.roundtrip()?;
        Ok(output)
    }

    /// The protocol error that killed this connection, if any.
    pub fn protocol_error(&self) -> Option<ProtocolError> {
        self.conn.protocol_error()
    }

    /// Dispatches events until `done` returns true, failing after
    /// [`Client::timeout`] or on a connection/protocol error.
    pub fn dispatch_until(&mut self, what: &str, done: impl FnMut(&mut State) -> bool) -> Result<()> {
        self.dispatch_until_within(self.timeout, what, done)
    }

    /// [`Client::dispatch_until`] with an explicit bound.
    pub fn dispatch_until_within(
        &mut self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&mut State) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.queue
                .dispatch_pending(&mut self.state)
                .map_err(|e| self.describe(e.into(), what))?;
            if done(&mut self.state) {
                return Ok(());
            }
            match self.conn.flush() {
                Ok(()) => {}
                Err(WaylandError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(self.describe(e.into(), what)),
            }
            let Some(guard) = self.queue.prepare_read() else {
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("timed out after {timeout:?} waiting for {what}");
            }
            let mut fds = [PollFd::from_borrowed_fd(guard.connection_fd(), PollFlags::IN)];
            let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
            match rustix::event::poll(&mut fds, ms) {
                Ok(0) => bail!("timed out after {timeout:?} waiting for {what}"),
                Ok(_) => match guard.read() {
                    Ok(_) => {}
                    Err(WaylandError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(self.describe(e.into(), what)),
                },
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(anyhow!(e).context(format!("poll while waiting for {what}"))),
            }
        }
    }

    /// Adds the server's protocol error, when there is one, to a dispatch error.
    fn describe(&self, err: anyhow::Error, what: &str) -> anyhow::Error {
        match self.protocol_error() {
            Some(p) => anyhow!(
                "protocol error while waiting for {what}: {}@{} code {}: {}",
                p.object_interface,
                p.object_id,
                p.code,
                p.message
            ),
            None => err.context(format!("connection failed while waiting for {what}")),
        }
    }

    /// A bounded roundtrip (wl_display.sync) that also dispatches everything
    /// received before the reply.
    pub fn roundtrip(&mut self) -> Result<()> {
        let flag = Arc::new(AtomicBool::new(false));
        self.conn.display().sync(&self.qh, flag.clone());
        self.dispatch_until("wl_display.sync", |_| flag.load(Ordering::Acquire))
    }

    /// Waits (bounded) for the server to kill this connection with a protocol
    /// error and returns it. Fails if the connection stays healthy.
    pub fn expect_protocol_error(&mut self) -> Result<ProtocolError> {
        let flag = Arc::new(AtomicBool::new(false));
        self.conn.display().sync(&self.qh, flag.clone());
        // A sync reply means the server processed the bad request without
        // complaint; one more round guards against the error arriving late.
        let mut syncs = 0;
        loop {
            let res = self.dispatch_until("a protocol error", |_| flag.load(Ordering::Acquire));
            if let Some(err) = self.protocol_error() {
                return Ok(err);
            }
            res?;
            syncs += 1;
            if syncs == 2 {
                bail!("the compositor accepted the request: no protocol error after two roundtrips");
            }
            flag.store(false, Ordering::Release);
            self.conn.display().sync(&self.qh, flag.clone());
        }
    }

    /// Waits (bounded) for a callback flag created by e.g. `Window::frame`.
    pub fn wait_flag(&mut self, what: &str, flag: &AtomicBool) -> Result<()> {
        self.dispatch_until(what, |_| flag.load(Ordering::Acquire))
    }
}

fn bind_globals(globals: &GlobalList, qh: &QueueHandle<State>) -> Result<Globals> {
    Ok(Globals {
        compositor: globals.bind(qh, 4..=6, ()).context("wl_compositor v4+ missing")?,
        subcompositor: globals.bind(qh, 1..=1, ()).context("wl_subcompositor missing")?,
        wm_base: globals.bind(qh, 1..=5, ()).context("xdg_wm_base missing")?,
        dmabuf: globals.bind(qh, 1..=3, ()).context("zwp_linux_dmabuf_v1 missing")?,
        presentation: globals.bind(qh, 1..=1, ()).ok(),
        syncobj: globals.bind(qh, 1..=1, ()).ok(),
        shm: globals.bind(qh, 1..=1, ()).ok(),
    })
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for State {
    fn event(
        _: &mut Self,
        _: &wl_registry::WlRegistry,
        _: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // Globals appearing later are irrelevant to the tests.
    }
}

impl Dispatch<XdgWmBase, ()> for State {
    fn event(_: &mut Self, wm: &XdgWmBase, event: xdg_wm_base::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {
        if let xdg_wm_base::Event::Ping { serial } = event {
            wm.pong(serial);
        }
    }
}

impl Dispatch<ZwpLinuxDmabufV1, ()> for State {
    fn event(
        state: &mut Self,
        _: &ZwpLinuxDmabufV1,
        event: zwp_linux_dmabuf_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            zwp_linux_dmabuf_v1::Event::Format { format } => state.dmabuf_formats.push(format),
            zwp_linux_dmabuf_v1::Event::Modifier {
                format,
                modifier_hi,
                modifier_lo,
            } => {
                let modifier = (u64::from(modifier_hi) << 32) | u64::from(modifier_lo);
                state.dmabuf_modifiers.push((format, modifier));
            }
            _ => {}
        }
    }
}

impl Dispatch<WpPresentation, ()> for State {
    fn event(
        state: &mut Self,
        _: &WpPresentation,
        event: wp_presentation::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wp_presentation::Event::ClockId { clk_id } = event {
            state.presentation_clock = Some(clk_id);
        }
    }
}

/// Frame and sync callbacks set their flag when done.
impl Dispatch<wl_callback::WlCallback, Arc<AtomicBool>> for State {
    fn event(
        _: &mut Self,
        _: &wl_callback::WlCallback,
        event: wl_callback::Event,
        flag: &Arc<AtomicBool>,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = event {
            flag.store(true, Ordering::Release);
        }
    }
}

/// `wl_surface.enter`/`leave` keep [`State::entered`] (one output: a
/// surface is on it or not).
impl Dispatch<wl_surface::WlSurface, ()> for State {
    fn event(
        state: &mut Self,
        surface: &wl_surface::WlSurface,
        event: wl_surface::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            wl_surface::Event::Enter { .. } => {
                state.entered.insert(surface.id());
            }
            wl_surface::Event::Leave { .. } => {
                state.entered.remove(&surface.id());
            }
            _ => {}
        }
    }
}

wayland_client::delegate_noop!(State: wl_compositor::WlCompositor);
wayland_client::delegate_noop!(State: ignore wl_output::WlOutput);
wayland_client::delegate_noop!(State: wl_subcompositor::WlSubcompositor);
wayland_client::delegate_noop!(State: wl_region::WlRegion);
