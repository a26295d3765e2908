//! Fuzzing the compositor's buffer and surface handling with libFuzzer
//! (`scripts/fuzz.sh` builds the targets with coverage instrumentation on
//! stable Rust).
//!
//! The protocol targets run one real compositor per process, in-process and
//! headless ([`Harness`]), with its real protocol handlers and renderer
//! (lavapipe on the host). Each fuzz input is one client lifetime: a socket
//! pair joins the compositor, binds the globals, sends the requests the
//! bytes describe ([`session`]), sees a frame drawn, and disconnects. After
//! each input the harness checks that the client's dma-buf buffers and
//! params objects are no longer charged, and that the compositor still runs.

mod color_representation;
pub mod session;
mod syncobj;
pub mod wire;

use std::os::unix::net::UnixStream;
use std::time::Duration;

use compositor::{
    app,
    backend::headless::{self, HeadlessOptions},
    render::RendererOptions,
    state::{Lifecycle, State},
};
use smithay::reexports::calloop::EventLoop;

pub use session::Mix;
use session::{Input, Session};
use wire::Wire;

/// Requests sent between two rounds of dispatch.
const BATCH: usize = 8;

/// An in-process headless compositor.
pub struct Harness {
    event_loop: EventLoop<'static, State>,
    state: State,
}

impl Harness {
    /// A 256×256 headless compositor on the default Vulkan device. Logs
    /// go to stderr only when `RUST_LOG` is set (to replay one input).
    pub fn new() -> Harness {
        if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .try_init();
        }
        let event_loop: EventLoop<'static, State> = EventLoop::try_new().expect("creating the event loop");
        let backend = app::create_headless_backend(
            &RendererOptions::default(),
            HeadlessOptions {
                size: (256, 256),
                scale: 1,
                refresh_hz: 60,
            },
        )
        .expect("creating the headless backend");
        let state = app::init_headless(&event_loop, backend, Lifecycle::new(None, None)).expect("compositor state");
        Harness { event_loop, state }
    }

    /// Lets the compositor handle what is pending, without waiting.
    fn pump(&mut self) {
        for _ in 0..3 {
            self.event_loop
                .dispatch(Some(Duration::ZERO), &mut self.state)
                .expect("event loop dispatch");
            app::after_dispatch(&mut self.state);
        }
    }

    /// One client lifetime driven by `data`.
    pub fn run(&mut self, data: &[u8], mix: Mix) {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        app::insert_client(&mut self.state, theirs, None).expect("inserting the client");
        let mut session = Session::new(Wire::new(ours).expect("non-blocking socket"), mix);
        session.get_registry();
        self.pump();
        session.bind_globals();
        self.pump();
        let mut input = Input::new(data);
        while !input.done() && !session.wire.closed {
            for _ in 0..BATCH {
                session.op(&mut input);
            }
            self.pump();
            session.read_events();
        }
        // One frame with whatever the client left on screen.
        headless::on_frame_tick(&mut self.state);
        self.pump();
        drop(session);
        self.pump();
        assert!(
            self.state.linux_dmabuf.buffer_charges.is_empty(),
            "a disconnected client's dma-buf buffers are still charged: {}",
            self.state.linux_dmabuf.buffer_charges.len()
        );
        assert_eq!(
            self.state.linux_dmabuf.params_charges.charged(),
            0,
            "a disconnected client's params objects are still charged"
        );
        assert!(
            self.state.lifecycle.exit_code.is_none(),
            "the compositor decided to exit"
        );
    }
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

thread_local! {
    /// Leaked on purpose: libFuzzer ends the process with `exit`, and
    /// tearing a compositor down inside thread-local destructors would touch
    /// thread-locals (tracing, calloop) already gone.
    static HARNESS: std::cell::OnceCell<&'static std::cell::RefCell<Harness>> = const { std::cell::OnceCell::new() };
}

/// Runs `data` against this process's compositor (made on first use).
pub fn run(data: &[u8], mix: Mix) {
    HARNESS.with(|h| {
        h.get_or_init(|| Box::leak(Box::new(std::cell::RefCell::new(Harness::new()))))
            .borrow_mut()
            .run(data, mix)
    });
}
