//! Compositor-wide state shared by every protocol handler and the backend.
//!
//! Everything the calloop callbacks touch lives in [`State`], so handlers get
//! plain `&mut self` access and no interior mutability is needed except where
//! wayland-server forces `Send + Sync` (the per-client [`ClientState`]).

use std::{
    os::fd::OwnedFd,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use anyhow::Context;
use smithay::{
    desktop::{PopupManager, Space, Window},
    input::{
        keyboard::XkbConfig,
        pointer::{CursorImageStatus, PointerHandle},
        Seat, SeatState,
    },
    reexports::{
        calloop::LoopSignal,
        wayland_server::{
            backend::{ClientData, ClientId, DisconnectReason},
            protocol::wl_surface::WlSurface,
            DisplayHandle,
        },
    },
    wayland::{
        compositor::{CompositorClientState, CompositorState},
        output::OutputManagerState,
        presentation::PresentationState,
        relative_pointer::RelativePointerManagerState,
        selection::{data_device::DataDeviceState, primary_selection::PrimarySelectionState},
        shell::xdg::{decoration::XdgDecorationState, XdgShellState},
        shm::ShmState,
    },
};
use tracing::{debug, info, warn};

use crate::{
    backend::Backend,
    handlers,
    limits::{ClientLimits, ClientUsage},
    spawn::ChildProcess,
};

/// Keyboard repeat settings; irrelevant headless but required by the seat.
const REPEAT_DELAY_MS: i32 = 200;
const REPEAT_RATE_HZ: i32 = 25;

/// The compositor's whole mutable world.
pub struct State {
    pub display_handle: DisplayHandle,
    pub loop_signal: LoopSignal,

    pub compositor_state: CompositorState,
    pub xdg_shell_state: XdgShellState,
    pub shm_state: ShmState,
    pub seat_state: SeatState<State>,
    pub seat: Seat<State>,
    /// The seat's pointer (it has one from the start).
    pub pointer: PointerHandle<State>,
    /// Held so the xdg-output global lives as long as the compositor.
    #[allow(dead_code)]
    pub output_manager_state: OutputManagerState,
    /// zwp_linux_dmabuf_v1: the global, its sampling device, what each
    /// client's params and buffers hold of its budget.
    pub linux_dmabuf: handlers::dmabuf::LinuxDmabuf,
    /// Held so the wp_presentation global lives as long as the compositor.
    #[allow(dead_code)]
    pub presentation_state: PresentationState,

    /// Clipboard, decorations, relative pointer, cursor.
    pub data_device_state: DataDeviceState,
    pub primary_selection_state: PrimarySelectionState,
    /// Held so the xdg-decoration global lives as long as the compositor.
    #[allow(dead_code)]
    pub decoration_state: XdgDecorationState,
    /// Held so the relative-pointer global lives as long as the compositor.
    #[allow(dead_code)]
    pub relative_pointer_state: RelativePointerManagerState,
    pub cursor_status: CursorImageStatus,
    /// Counters for `--stats`.
    pub shell_stats: crate::stats::ShellStats,
    /// Zero of the input event clock (`State::input_time_ms`).
    pub input_epoch: std::time::Instant,
    /// The surface and its global origin the last pointer motion was sent
    /// for (`shell::input`), so a surface moving under a still pointer is
    /// seen as a change.
    pub pointer_target: Option<(WlSurface, smithay::utils::Point<f64, smithay::utils::Logical>)>,

    /// Mapped toplevels; stacking order: mapping order, then raised on
    /// focus (see `shell`).
    pub space: Space<Window>,
    pub popups: PopupManager,
    pub placement: handlers::xdg_shell::Placement,
    /// Surfaces whose applied state waits for the next frame (frame
    /// callbacks, presentation feedback).
    pub awaiting_frame: crate::backend::AwaitingFrame,

    pub backend: Backend,
    pub lifecycle: Lifecycle,

    /// Acquire policy, the loop handle for fence sources, counters.
    pub buffer_sync: crate::buffer_sync::SyncState,
    /// wp_linux_drm_syncobj_v1, only where a render node supports it.
    pub syncobj_state: Option<crate::protocols::drm_syncobj::SyncobjState>,
    /// wp_color_representation_v1, where the device samples YUV through a
    /// Y'CbCr conversion (a client could not get what it asks for otherwise).
    pub color_representation: Option<crate::protocols::color_representation::ColorRepresentationState>,
    /// Large CPU-fallback copies on the worker, and the commits they hold.
    pub cpu_copies: crate::cpu_copy::CpuCopies,
    /// The commit request being handled, when it defers renderer-state
    /// updates (`handlers::renderer_state`).
    pub commit_pass: Option<handlers::renderer_state::CommitPass>,
    /// What each new client may hold (`crate::limits`).
    pub limits: ClientLimits,
    /// Held commits, watched for stalls (`crate::buffer_sync::hold`).
    pub held_commits: crate::buffer_sync::hold::StallWatch,
}

impl State {
    /// Creates every global and wires it to `backend`'s renderer and output.
    pub fn new(
        display_handle: DisplayHandle,
        loop_signal: LoopSignal,
        backend: Backend,
        lifecycle: Lifecycle,
    ) -> anyhow::Result<State> {
        let dh = &display_handle;
        let compositor_state = CompositorState::new_v6::<State>(dh);
        let xdg_shell_state = XdgShellState::new::<State>(dh);
        let shm_state = ShmState::new::<State>(dh, handlers::shm::extra_formats(backend.renderer()));
        let output_manager_state = OutputManagerState::new_with_xdg_output::<State>(dh);
        backend.output().create_global::<State>(dh);
        let linux_dmabuf = handlers::dmabuf::create_global(dh, backend.renderer(), backend.scanout_formats())?;
        let presentation_state = PresentationState::new::<State>(dh, backend.clock_id());
        // The explicit sync global (or none) and the GPU-wait capability.
        let syncobj_state = crate::buffer_sync::explicit::create_global(dh, backend.renderer().main_device());
        let color_representation = backend
            .renderer()
            .core()
            .importer()
            .samples_ycbcr()
            .then(|| crate::protocols::color_representation::ColorRepresentationState::new::<State>(dh));
        let buffer_sync = crate::buffer_sync::SyncState {
            gpu_wait: backend.renderer().core().semaphore_sync_fd().import,
            ..Default::default()
        };

        let mut seat_state = SeatState::new();
        let mut seat = seat_state.new_wl_seat(dh, "seat0");
        seat.add_keyboard(XkbConfig::default(), REPEAT_DELAY_MS, REPEAT_RATE_HZ)
            .context("creating the seat keyboard (xkb default keymap)")?;
        let pointer = seat.add_pointer();
        seat.add_touch();
        // Selections, decorations, relative pointer.
        let data_device_state = DataDeviceState::new::<State>(dh);
        let primary_selection_state = PrimarySelectionState::new::<State>(dh);
        let decoration_state = XdgDecorationState::new::<State>(dh);
        let relative_pointer_state = RelativePointerManagerState::new::<State>(dh);

        let mut space = Space::default();
        space.map_output(backend.output(), (0, 0));

        Ok(State {
            display_handle,
            loop_signal,
            compositor_state,
            xdg_shell_state,
            shm_state,
            seat_state,
            seat,
            pointer,
            output_manager_state,
            linux_dmabuf,
            presentation_state,
            data_device_state,
            primary_selection_state,
            decoration_state,
            relative_pointer_state,
            cursor_status: CursorImageStatus::default_named(),
            shell_stats: Default::default(),
            input_epoch: std::time::Instant::now(),
            pointer_target: None,
            space,
            popups: PopupManager::default(),
            placement: Default::default(),
            awaiting_frame: Default::default(),
            backend,
            lifecycle,
            buffer_sync,
            syncobj_state,
            color_representation,
            cpu_copies: Default::default(),
            commit_pass: None,
            limits: ClientLimits::default(),
            held_commits: Default::default(),
        })
    }

    /// Builds the per-client data for a freshly accepted connection.
    ///
    /// `pid` comes from the socket's peer credentials; the spawned child (or
    /// a process it started, e.g. via `sh -c`) is recognised by it so its
    /// disconnect can end the run.
    ///
    /// `socket` is a duplicate of the connection's fd, kept only to tell at
    /// disconnect whether the client hung up or stopped reading.
    pub fn client_state_for(&self, pid: Option<i32>, socket: Option<OwnedFd>) -> ClientState {
        let is_child = match (pid, self.lifecycle.child_pid()) {
            (Some(pid), Some(child)) => crate::spawn::is_same_or_descendant(pid, child),
            _ => false,
        };
        ClientState {
            compositor_state: CompositorClientState::default(),
            pid,
            child_connections: is_child.then(|| self.lifecycle.child_connections.clone()),
            usage: ClientUsage::new(self.limits),
            socket: Mutex::new(socket),
        }
    }

    /// True while nothing may be drawn: the run is ending, or the spawned
    /// client closed its connection(s) and its last frame must be what the
    /// screenshot shows.
    pub fn rendering_stopped(&self) -> bool {
        self.lifecycle.exit_code.is_some() || self.lifecycle.child_connections.all_closed()
    }

    /// Ends the event loop with `code` (the first request wins).
    pub fn request_exit(&mut self, code: i32, why: &str) {
        if self.lifecycle.exit_code.is_none() {
            info!(code, "exiting: {why}");
            self.lifecycle.exit_code = Some(code);
        }
        self.loop_signal.stop();
        self.loop_signal.wakeup();
    }

    /// Called after every loop iteration: reacts to the child's connection
    /// closing, which is only observable from inside client dispatch.
    pub fn after_dispatch(&mut self) {
        let closed = self.lifecycle.child_connections.all_closed();
        if closed != self.lifecycle.child_was_gone && self.lifecycle.exit_code.is_none() {
            self.lifecycle.child_was_gone = closed;
            if closed {
                info!("spawned client closed its connection; rendering stopped, waiting for it to exit");
            } else {
                info!("spawned client reconnected; rendering resumed");
            }
        }
        if let Some(code) = self.lifecycle.reaped_child_exit_code() {
            self.request_exit(code, "spawned client exited");
        }
    }
}

/// How and when the run ends.
#[derive(Default)]
pub struct Lifecycle {
    /// Set once the loop must stop; becomes the process exit status.
    pub exit_code: Option<i32>,
    /// Live connections of the spawned client, updated from [`ClientState`].
    pub child_connections: Arc<ChildConnections>,
    child_was_gone: bool,
    pub child: Option<ChildProcess>,
    /// `--exit-after-frames`.
    pub exit_after_frames: Option<u64>,
}

impl Lifecycle {
    pub fn new(child: Option<ChildProcess>, exit_after_frames: Option<u64>) -> Lifecycle {
        Lifecycle {
            child,
            exit_after_frames,
            ..Default::default()
        }
    }

    pub fn child_pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.pid())
    }

    /// Exit status of the child once it has been reaped.
    fn reaped_child_exit_code(&self) -> Option<i32> {
        self.child.as_ref().and_then(|c| c.exit_code())
    }
}

/// Counts the spawned client's open connections.
///
/// Toolkits and Vulkan WSI may open short-lived extra connections from the
/// same process, so "the client's connection closed" means the count dropped
/// to zero after at least one connection, not that any single one closed.
/// Atomics because wayland-server requires `ClientData: Send + Sync`.
#[derive(Default)]
pub struct ChildConnections {
    open: AtomicUsize,
    ever_connected: AtomicBool,
}

impl ChildConnections {
    fn opened(&self) {
        self.open.fetch_add(1, Ordering::SeqCst);
        self.ever_connected.store(true, Ordering::SeqCst);
    }

    fn closed(&self) {
        // Saturating: a close without a matching open must not wrap around.
        let _ = self
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// True once the child had connected and has no connection left.
    pub fn all_closed(&self) -> bool {
        self.ever_connected.load(Ordering::SeqCst) && self.open.load(Ordering::SeqCst) == 0
    }
}

/// Per-client data stored by wayland-server.
pub struct ClientState {
    pub compositor_state: CompositorClientState,
    pid: Option<i32>,
    /// Present only for the spawned child's connections.
    child_connections: Option<Arc<ChildConnections>>,
    /// What this client holds, against its limits (`crate::limits`).
    pub usage: Arc<ClientUsage>,
    /// A duplicate of the connection's fd until the client is gone.
    socket: Mutex<Option<OwnedFd>>,
}

impl ClientState {
    /// The peer's pid, from the socket's credentials.
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }
}

/// Why a connection that was not killed for a protocol error closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseCause {
    /// The peer hung up (or we cannot tell).
    HungUp,
    /// Its socket takes no more bytes: the client stopped reading, and
    /// wayland-server disconnects it once its own buffer is full too.
    StoppedReading,
    /// The socket is fine: wayland-server dropped it (an unreadable request).
    Dropped,
}

/// Reads [`CloseCause`] from our duplicate of the connection's socket.
fn close_cause(socket: Option<&OwnedFd>) -> CloseCause {
    use rustix::event::{poll, PollFd, PollFlags};
    let Some(socket) = socket else {
        return CloseCause::HungUp;
    };
    let mut fds = [PollFd::new(socket, PollFlags::OUT)];
    if poll(&mut fds, 0).is_err() {
        return CloseCause::HungUp;
    }
    let revents = fds[0].revents();
    if revents.intersects(PollFlags::HUP | PollFlags::ERR) {
        CloseCause::HungUp
    } else if !revents.contains(PollFlags::OUT) {
        CloseCause::StoppedReading
    } else {
        CloseCause::Dropped
    }
}

impl ClientData for ClientState {
    fn initialized(&self, client_id: ClientId) {
        debug!(?client_id, pid = ?self.pid, child = self.child_connections.is_some(), "client connected");
        if let Some(connections) = &self.child_connections {
            connections.opened();
        }
    }

    fn disconnected(&self, client_id: ClientId, reason: DisconnectReason) {
        // Closed whatever the reason: this data may outlive the connection
        // (anything still holding the `Client`), and the duplicate must not
        // keep its socket open.
        let socket = self.socket.lock().unwrap_or_else(|p| p.into_inner()).take();
        match &reason {
            DisconnectReason::ProtocolError(err) => {
                info!(?client_id, pid = ?self.pid, "client killed for protocol error: {err}")
            }
            DisconnectReason::ConnectionClosed => match close_cause(socket.as_ref()) {
                CloseCause::HungUp => debug!(?client_id, pid = ?self.pid, "client disconnected"),
                CloseCause::StoppedReading => warn!(
                    ?client_id,
                    pid = ?self.pid,
                    "client disconnected: it stopped reading and its socket buffer is full"
                ),
                CloseCause::Dropped => warn!(
                    ?client_id,
                    pid = ?self.pid,
                    "client disconnected: its connection could not be read"
                ),
            },
        }
        if let Some(connections) = &self.child_connections {
            // Checked by the frame timer before drawing, so this takes effect
            // before any later source in the same loop iteration renders.
            connections.closed();
        }
    }
}
