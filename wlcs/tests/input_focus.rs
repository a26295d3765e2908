//! Synthetic input through the same entry points WLCS uses: a pointer click
//! on a window gives it keyboard focus and raises it, and a key press then
//! reaches that window (WLCS has no keyboard device, so this is our own test).
//! Also: Alt + left drag moves a window without the client seeing the click.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use wayland_client::{
    delegate_noop,
    protocol::{
        wl_buffer::WlBuffer, wl_compositor::WlCompositor, wl_keyboard, wl_pointer, wl_registry, wl_seat, wl_shm,
        wl_shm_pool::WlShmPool, wl_surface::WlSurface,
    },
    Connection, Dispatch, EventQueue, QueueHandle, WEnum,
};
use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};
use wlcs_integration::server::{Command, Server};

#[derive(Default)]
struct Client {
    compositor: Option<WlCompositor>,
    shm: Option<wl_shm::WlShm>,
    wm_base: Option<xdg_wm_base::XdgWmBase>,
    seat: Option<wl_seat::WlSeat>,
    keyboard: Option<wl_keyboard::WlKeyboard>,
    pointer: Option<wl_pointer::WlPointer>,
    configured: Vec<u32>,
    keyboard_focus: Option<WlSurface>,
    keys: Vec<(WlSurface, u32, bool)>,
    buttons: u32,
}

impl Dispatch<wl_registry::WlRegistry, ()> for Client {
    fn event(
        s: &mut Self,
        r: &wl_registry::WlRegistry,
        e: wl_registry::Event,
        _: &(),
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        if let wl_registry::Event::Global { name, interface, .. } = e {
            match interface.as_str() {
                "wl_compositor" => s.compositor = Some(r.bind(name, 4, qh, ())),
                "wl_shm" => s.shm = Some(r.bind(name, 1, qh, ())),
                "xdg_wm_base" => s.wm_base = Some(r.bind(name, 1, qh, ())),
                "wl_seat" => s.seat = Some(r.bind(name, 5, qh, ())),
                _ => {}
            }
        }
    }
}

impl Dispatch<wl_seat::WlSeat, ()> for Client {
    fn event(s: &mut Self, seat: &wl_seat::WlSeat, e: wl_seat::Event, _: &(), _: &Connection, qh: &QueueHandle<Self>) {
        if let wl_seat::Event::Capabilities {
            capabilities: WEnum::Value(caps),
        } = e
        {
            if caps.contains(wl_seat::Capability::Keyboard) && s.keyboard.is_none() {
                s.keyboard = Some(seat.get_keyboard(qh, ()));
            }
            if caps.contains(wl_seat::Capability::Pointer) && s.pointer.is_none() {
                s.pointer = Some(seat.get_pointer(qh, ()));
            }
        }
    }
}

impl Dispatch<wl_keyboard::WlKeyboard, ()> for Client {
    fn event(
        s: &mut Self,
        _: &wl_keyboard::WlKeyboard,
        e: wl_keyboard::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match e {
            wl_keyboard::Event::Enter { surface, .. } => s.keyboard_focus = Some(surface),
            wl_keyboard::Event::Leave { .. } => s.keyboard_focus = None,
            wl_keyboard::Event::Key { key, state, .. } => {
                let pressed = matches!(state, WEnum::Value(wl_keyboard::KeyState::Pressed));
                if let Some(focus) = s.keyboard_focus.clone() {
                    s.keys.push((focus, key, pressed));
                }
            }
            _ => {}
        }
    }
}

impl Dispatch<wl_pointer::WlPointer, ()> for Client {
    fn event(
        s: &mut Self,
        _: &wl_pointer::WlPointer,
        e: wl_pointer::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_pointer::Event::Button { .. } = e {
            s.buttons += 1;
        }
    }
}

impl Dispatch<xdg_wm_base::XdgWmBase, ()> for Client {
    fn event(
        _: &mut Self,
        wm: &xdg_wm_base::XdgWmBase,
        e: xdg_wm_base::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_wm_base::Event::Ping { serial } = e {
            wm.pong(serial);
        }
    }
}

impl Dispatch<xdg_surface::XdgSurface, u32> for Client {
    fn event(
        s: &mut Self,
        xs: &xdg_surface::XdgSurface,
        e: xdg_surface::Event,
        id: &u32,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_surface::Event::Configure { serial } = e {
            xs.ack_configure(serial);
            s.configured.push(*id);
        }
    }
}

delegate_noop!(Client: ignore WlCompositor);
delegate_noop!(Client: ignore WlSurface);
delegate_noop!(Client: ignore wl_shm::WlShm);
delegate_noop!(Client: ignore WlShmPool);
delegate_noop!(Client: ignore WlBuffer);
delegate_noop!(Client: ignore xdg_toplevel::XdgToplevel);

struct Window {
    surface: WlSurface,
    _xdg: (xdg_surface::XdgSurface, xdg_toplevel::XdgToplevel),
}

fn shm_buffer(client: &Client, qh: &QueueHandle<Client>, w: i32, h: i32) -> WlBuffer {
    let fd: OwnedFd = rustix::fs::memfd_create("input-test", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let len = (w * h * 4) as usize;
    let pixels: Vec<u8> = [0x40u8, 0x80, 0xc0, 0xff].iter().copied().cycle().take(len).collect();
    rustix::io::write(&fd, &pixels).unwrap();
    let pool = client.shm.as_ref().unwrap().create_pool(fd.as_fd(), len as i32, qh, ());
    let buffer = pool.create_buffer(0, w, h, w * 4, wl_shm::Format::Xrgb8888, qh, ());
    pool.destroy();
    buffer
}

fn map_window(client: &mut Client, queue: &mut EventQueue<Client>, id: u32) -> Window {
    let qh = queue.handle();
    let surface = client.compositor.as_ref().unwrap().create_surface(&qh, ());
    let xdg = client.wm_base.as_ref().unwrap().get_xdg_surface(&surface, &qh, id);
    let toplevel = xdg.get_toplevel(&qh, ());
    surface.commit();
    while !client.configured.contains(&id) {
        queue.blocking_dispatch(client).unwrap();
    }
    let buffer = shm_buffer(client, &qh, 100, 100);
    surface.attach(Some(&buffer), 0, 0);
    surface.damage_buffer(0, 0, 100, 100);
    surface.commit();
    queue.roundtrip(client).unwrap();
    Window {
        surface,
        _xdg: (xdg, toplevel),
    }
}

/// Window origins, from the compositor's point of view.
fn window_location(server: &Server, surface_protocol_id: u32) -> Option<(i32, i32)> {
    let (tx, rx) = std::sync::mpsc::channel();
    server.handle().call(Command::Inspect(Box::new(move |state| {
        use smithay::reexports::wayland_server::Resource;
        let loc = state
            .space
            .elements()
            .find(|w| {
                w.toplevel()
                    .is_some_and(|t| t.wl_surface().id().protocol_id() == surface_protocol_id)
            })
            .and_then(|w| state.space.element_location(w))
            .map(|p| (p.x, p.y));
        let _ = tx.send(loc);
    })));
    rx.recv().unwrap()
}

fn top_window(server: &Server) -> Option<u32> {
    let (tx, rx) = std::sync::mpsc::channel();
    server.handle().call(Command::Inspect(Box::new(move |state| {
        use smithay::reexports::wayland_server::Resource;
        let top = state
            .space
            .elements()
            .last()
            .and_then(|w| w.toplevel())
            .map(|t| t.wl_surface().id().protocol_id());
        let _ = tx.send(top);
    })));
    rx.recv().unwrap()
}

fn connect(server: &Server) -> (Client, EventQueue<Client>) {
    let fd = server.handle().create_client_socket().unwrap();
    // SAFETY: create_client_socket hands over ownership of a fresh fd.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    let conn = Connection::from_socket(stream).unwrap();
    let mut queue = conn.new_event_queue();
    let qh = queue.handle();
    conn.display().get_registry(&qh, ());
    let mut client = Client::default();
    queue.roundtrip(&mut client).unwrap();
    queue.roundtrip(&mut client).unwrap(); // seat capabilities -> keyboard/pointer
    (client, queue)
}

const BTN_LEFT: u32 = 0x110;
const KEY_A: u32 = 30;
const KEY_LEFTALT: u32 = 56;

#[test]
fn click_focuses_and_raises_then_key_reaches_the_window() {
    let mut server = Server::default();
    server.start().expect("compositor starts (Vulkan device needed)");
    let (mut client, mut queue) = connect(&server);
    let a = map_window(&mut client, &mut queue, 1);
    let b = map_window(&mut client, &mut queue, 2);
    queue.roundtrip(&mut client).unwrap();
    // The newest window has focus and is on top.
    assert_eq!(client.keyboard_focus.as_ref(), Some(&b.surface));

    let a_id = wayland_client::Proxy::id(&a.surface).protocol_id();
    let b_id = wayland_client::Proxy::id(&b.surface).protocol_id();
    assert_eq!(top_window(&server), Some(b_id));
    // Cascade: a at (32, 32), b at (96, 96); both 100x100. (50, 50) is only on a.
    assert_eq!(window_location(&server, a_id), Some((32, 32)));
    let h = server.handle();
    h.call(Command::PointerMoveAbsolute((50.0, 50.0).into()));
    h.call(Command::PointerButton {
        button: BTN_LEFT,
        pressed: true,
    });
    h.call(Command::PointerButton {
        button: BTN_LEFT,
        pressed: false,
    });
    queue.roundtrip(&mut client).unwrap();
    assert_eq!(
        client.keyboard_focus.as_ref(),
        Some(&a.surface),
        "click did not focus the window under the pointer"
    );
    assert_eq!(top_window(&server), Some(a_id), "click did not raise the window");
    assert_eq!(client.buttons, 2, "press and release reach the client");

    h.call(Command::Key {
        code: KEY_A,
        pressed: true,
    });
    h.call(Command::Key {
        code: KEY_A,
        pressed: false,
    });
    queue.roundtrip(&mut client).unwrap();
    assert_eq!(
        client.keys,
        vec![(a.surface.clone(), KEY_A, true), (a.surface.clone(), KEY_A, false)]
    );

    // Alt + drag moves a by (+100, +40) and the client sees no button.
    h.call(Command::Key {
        code: KEY_LEFTALT,
        pressed: true,
    });
    h.call(Command::PointerMoveAbsolute((60.0, 60.0).into()));
    h.call(Command::PointerButton {
        button: BTN_LEFT,
        pressed: true,
    });
    h.call(Command::PointerMoveAbsolute((160.0, 100.0).into()));
    h.call(Command::PointerButton {
        button: BTN_LEFT,
        pressed: false,
    });
    h.call(Command::Key {
        code: KEY_LEFTALT,
        pressed: false,
    });
    queue.roundtrip(&mut client).unwrap();
    assert_eq!(
        window_location(&server, a_id),
        Some((132, 72)),
        "Alt+drag did not move the window"
    );
    assert_eq!(client.buttons, 2, "the move's click must not reach the client");
    drop(b);
    server.stop();
}
