//! The compositor thread behind the WLCS hooks, also usable directly from
//! Rust tests: [`Server::start`] runs a headless compositor on a thread,
//! [`Handle::call`] runs a [`Command`] on it and waits until it is done.

use std::{
    collections::HashMap,
    os::{
        fd::{IntoRawFd, RawFd},
        unix::net::UnixStream,
    },
    sync::mpsc,
    thread::JoinHandle,
};

use anyhow::Context;
use calloop::{
    channel::{self, Event},
    EventLoop,
};
use compositor::{
    app,
    backend::headless::HeadlessOptions,
    cli::Cli,
    state::{Lifecycle, State},
};
use smithay::{
    reexports::wayland_server::{protocol::wl_surface::WlSurface, Client, Resource},
    utils::{Logical, Point},
};
use tracing::warn;

/// Output size of the WLCS compositor: large enough for every WLCS placement.
pub const OUTPUT_SIZE: (i32, i32) = (1920, 1080);

/// What the hooks ask the compositor thread to do.
pub enum Command {
    /// Adds a client on the server end of a socketpair; the client end's fd
    /// number (as WLCS will see it from `wl_display_get_fd`) identifies it.
    NewClient {
        stream: UnixStream,
        client_fd: RawFd,
    },
    /// Moves the toplevel of `surface_id` (a protocol id of the client on
    /// `client_fd`) so that its surface's top-left is at (x, y).
    PositionWindow {
        client_fd: RawFd,
        surface_id: u32,
        x: i32,
        y: i32,
    },
    PointerMoveAbsolute(Point<f64, Logical>),
    PointerMoveRelative(Point<f64, Logical>),
    PointerButton {
        button: u32,
        pressed: bool,
    },
    /// An evdev key code, for Rust tests (WLCS has no keyboard device).
    Key {
        code: u32,
        pressed: bool,
    },
    TouchDown {
        slot: u32,
        pos: Point<f64, Logical>,
    },
    TouchMove {
        slot: u32,
        pos: Point<f64, Logical>,
    },
    TouchUp {
        slot: u32,
    },
    /// Runs a closure on the compositor state (tests inspect it this way).
    Inspect(Box<dyn FnOnce(&mut State) + Send>),
    Exit,
}

/// One command and where to say it is done.
struct Call {
    command: Command,
    done: mpsc::SyncSender<()>,
}

/// Sends commands to a running compositor thread.
#[derive(Clone)]
pub struct Handle {
    sender: Option<channel::Sender<Call>>,
}

impl Handle {
    /// Runs `command` on the compositor thread and waits for it; a no-op
    /// once the compositor is gone.
    pub fn call(&self, command: Command) {
        let Some(sender) = &self.sender else { return };
        let (done, wait) = mpsc::sync_channel(1);
        if sender.send(Call { command, done }).is_ok() {
            let _ = wait.recv();
        }
    }

    /// A connected client socket; returns the client end's fd (owned by the caller).
    pub fn create_client_socket(&self) -> anyhow::Result<RawFd> {
        let (server_end, client_end) = UnixStream::pair().context("socketpair")?;
        let client_fd = client_end.into_raw_fd();
        self.call(Command::NewClient {
            stream: server_end,
            client_fd,
        });
        Ok(client_fd)
    }
}

/// A compositor that can be started and stopped repeatedly.
#[derive(Default)]
pub struct Server {
    running: Option<(Handle, JoinHandle<()>)>,
}

impl Server {
    /// Starts the compositor thread and waits until it runs its event loop.
    pub fn start(&mut self) -> anyhow::Result<()> {
        self.stop();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("wlcs-compositor".into())
            .spawn(move || {
                if let Err(err) = run(ready_tx.clone()) {
                    let _ = ready_tx.send(Err(err));
                }
            })
            .context("spawning the compositor thread")?;
        let sender = ready_rx.recv().context("compositor thread died during start-up")??;
        self.running = Some((Handle { sender: Some(sender) }, thread));
        Ok(())
    }

    /// A handle to the running compositor (inert if none runs).
    pub fn handle(&self) -> Handle {
        self.running
            .as_ref()
            .map(|(h, _)| h.clone())
            .unwrap_or(Handle { sender: None })
    }

    /// Stops the compositor thread and waits for it to finish.
    pub fn stop(&mut self) {
        if let Some((handle, thread)) = self.running.take() {
            handle.call(Command::Exit);
            if thread.join().is_err() {
                warn!("compositor thread panicked");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

type Ready = mpsc::SyncSender<anyhow::Result<channel::Sender<Call>>>;

/// The compositor thread: set up, report ready, run until `Exit`.
fn run(ready: Ready) -> anyhow::Result<()> {
    let mut event_loop: EventLoop<'static, State> = EventLoop::try_new().context("creating the event loop")?;
    let options = Cli::from_env().context("the compositor's environment variables")?;
    let backend = app::create_headless_backend(
        &options.renderer_options(),
        HeadlessOptions {
            size: OUTPUT_SIZE,
            scale: 1,
            refresh_hz: 60,
        },
    )?;
    let mut state = app::init_headless(&event_loop, backend, Lifecycle::new(None, None))?;
    let (sender, receiver) = channel::channel::<Call>();
    let mut clients: HashMap<RawFd, Client> = HashMap::new();
    event_loop
        .handle()
        .insert_source(receiver, move |event, _, state| {
            if let Event::Msg(call) = event {
                handle_command(state, &mut clients, call.command);
                // Events the command queued must be on the wire before the
                // hook returns (the client roundtrips right after).
                app::after_dispatch(state);
                let _ = call.done.send(());
            }
        })
        .map_err(|e| anyhow::anyhow!("inserting the command channel: {e}"))?;
    let _ = ready.send(Ok(sender));
    event_loop
        .run(None, &mut state, app::after_dispatch)
        .context("running the event loop")?;
    Ok(())
}

fn handle_command(state: &mut State, clients: &mut HashMap<RawFd, Client>, command: Command) {
    match command {
        Command::NewClient { stream, client_fd } => match app::insert_client(state, stream, None) {
            Ok(client) => {
                clients.insert(client_fd, client);
            }
            Err(err) => warn!("{err:#}"),
        },
        Command::PositionWindow {
            client_fd,
            surface_id,
            x,
            y,
        } => position_window(state, clients, client_fd, surface_id, (x, y).into()),
        Command::PointerMoveAbsolute(pos) => state.pointer_motion_absolute(pos),
        Command::PointerMoveRelative(delta) => state.pointer_motion_relative(delta),
        Command::PointerButton { button, pressed } => state.pointer_button(button, pressed),
        Command::Key { code, pressed } => state.keyboard_key(code, pressed),
        Command::TouchDown { slot, pos } => state.touch_down(slot, pos),
        Command::TouchMove { slot, pos } => state.touch_motion(slot, pos),
        Command::TouchUp { slot } => state.touch_up(slot),
        Command::Inspect(f) => f(state),
        Command::Exit => {
            state.request_exit(0, "WLCS stop");
        }
    }
}

fn position_window(
    state: &mut State,
    clients: &HashMap<RawFd, Client>,
    client_fd: RawFd,
    surface_id: u32,
    pos: Point<i32, Logical>,
) {
    let Some(client) = clients.get(&client_fd) else {
        warn!(client_fd, "position_window_absolute for an unknown client");
        return;
    };
    let Ok(surface) = client.object_from_protocol_id::<WlSurface>(&state.display_handle, surface_id) else {
        warn!(surface_id, "position_window_absolute: no such wl_surface");
        return;
    };
    if !surface.is_alive() {
        return;
    }
    state.position_window(&surface, pos);
}

/// Logs to stderr, `warn` and up unless `WLCS_LOG` says otherwise; safe to
/// call for every server WLCS creates.
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("WLCS_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
