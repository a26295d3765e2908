//! The WLCS server-integration ABI (`wlcs/display_server.h`, display server
//! v3; pointer and touch v1) over the headless compositor.
//!
//! WLCS dlopens `libwlcs_integration.so` and calls `wlcs_server_integration`.
//! Each `start` runs a fresh compositor ([`compositor::app::init_headless`],
//! the same globals and shell as the binary) on its own thread; every other
//! hook is a [`Command`] sent to that thread's event loop, and the hook
//! blocks until the command has been handled. Blocking matters: WLCS moves
//! the pointer and then does a client roundtrip, expecting the enter event
//! to come before the roundtrip's reply.

pub mod server;

use std::ffi::{c_char, c_int, c_void};

use server::{Command, Server};
use smithay::utils::Point;

/// A wl_fixed_t (24.8 fixed point) as f64.
fn fixed(v: c_int) -> f64 {
    f64::from(v) / 256.0
}

#[repr(C)]
pub struct WlcsExtensionDescriptor {
    name: *const c_char,
    version: u32,
}
// SAFETY: points only at 'static C strings.
unsafe impl Sync for WlcsExtensionDescriptor {}

#[repr(C)]
pub struct WlcsIntegrationDescriptor {
    version: u32,
    num_extensions: usize,
    supported_extensions: *const WlcsExtensionDescriptor,
}
// SAFETY: points only at the 'static EXTENSIONS array.
unsafe impl Sync for WlcsIntegrationDescriptor {}

macro_rules! ext {
    ($name:literal, $version:literal) => {
        WlcsExtensionDescriptor {
            name: concat!($name, "\0").as_ptr() as *const c_char,
            version: $version,
        }
    };
}

/// The protocols the compositor implements, at the versions it advertises.
/// WLCS skips tests needing anything not listed.
static EXTENSIONS: [WlcsExtensionDescriptor; 13] = [
    ext!("wl_compositor", 6),
    ext!("wl_subcompositor", 1),
    ext!("wl_shm", 1),
    ext!("wl_seat", 9),
    ext!("wl_output", 4),
    ext!("wl_data_device_manager", 3),
    ext!("xdg_wm_base", 6),
    ext!("zxdg_output_manager_v1", 3),
    ext!("zxdg_decoration_manager_v1", 1),
    ext!("zwp_linux_dmabuf_v1", 3),
    ext!("wp_presentation", 2),
    ext!("zwp_primary_selection_device_manager_v1", 1),
    ext!("zwp_relative_pointer_manager_v1", 1),
];

/// Not implemented, so not listed: wl_shell (deprecated), wp_viewporter,
/// layer-shell, pointer constraints, text input, xdg-activation, ...
static DESCRIPTOR: WlcsIntegrationDescriptor = WlcsIntegrationDescriptor {
    version: 1,
    num_extensions: EXTENSIONS.len(),
    supported_extensions: &EXTENSIONS as *const _ as *const WlcsExtensionDescriptor,
};

#[repr(C)]
pub struct WlcsDisplayServer {
    version: u32,
    start: unsafe extern "C" fn(*mut WlcsDisplayServer),
    stop: unsafe extern "C" fn(*mut WlcsDisplayServer),
    create_client_socket: unsafe extern "C" fn(*mut WlcsDisplayServer) -> c_int,
    position_window_absolute: unsafe extern "C" fn(*mut WlcsDisplayServer, *mut c_void, *mut c_void, c_int, c_int),
    create_pointer: unsafe extern "C" fn(*mut WlcsDisplayServer) -> *mut WlcsPointer,
    create_touch: unsafe extern "C" fn(*mut WlcsDisplayServer) -> *mut WlcsTouch,
    get_descriptor: unsafe extern "C" fn(*const WlcsDisplayServer) -> *const WlcsIntegrationDescriptor,
    start_on_this_thread: Option<unsafe extern "C" fn(*mut WlcsDisplayServer, *mut c_void)>,
}

#[repr(C)]
pub struct WlcsServerIntegration {
    version: u32,
    create_server: unsafe extern "C" fn(c_int, *const *const c_char) -> *mut WlcsDisplayServer,
    destroy_server: unsafe extern "C" fn(*mut WlcsDisplayServer),
}

#[repr(C)]
pub struct WlcsPointer {
    version: u32,
    move_absolute: unsafe extern "C" fn(*mut WlcsPointer, c_int, c_int),
    move_relative: unsafe extern "C" fn(*mut WlcsPointer, c_int, c_int),
    button_up: unsafe extern "C" fn(*mut WlcsPointer, c_int),
    button_down: unsafe extern "C" fn(*mut WlcsPointer, c_int),
    destroy: unsafe extern "C" fn(*mut WlcsPointer),
}

#[repr(C)]
pub struct WlcsTouch {
    version: u32,
    touch_down: unsafe extern "C" fn(*mut WlcsTouch, c_int, c_int),
    touch_move: unsafe extern "C" fn(*mut WlcsTouch, c_int, c_int),
    touch_up: unsafe extern "C" fn(*mut WlcsTouch),
    destroy: unsafe extern "C" fn(*mut WlcsTouch),
}

/// WLCS's display server handle; `base` first so the pointers convert.
#[repr(C)]
struct DisplayServerImpl {
    base: WlcsDisplayServer,
    server: Server,
}

#[repr(C)]
struct PointerImpl {
    base: WlcsPointer,
    server: server::Handle,
}

#[repr(C)]
struct TouchImpl {
    base: WlcsTouch,
    server: server::Handle,
    slot: u32,
}

#[link(name = "wayland-client")]
extern "C" {
    fn wl_display_get_fd(display: *mut c_void) -> c_int;
    fn wl_proxy_get_id(proxy: *mut c_void) -> u32;
}

#[no_mangle]
pub static wlcs_server_integration: WlcsServerIntegration = WlcsServerIntegration {
    version: 1,
    create_server,
    destroy_server,
};

unsafe extern "C" fn create_server(_argc: c_int, _argv: *const *const c_char) -> *mut WlcsDisplayServer {
    server::init_logging();
    let server = Box::new(DisplayServerImpl {
        base: WlcsDisplayServer {
            version: 3,
            start,
            stop,
            create_client_socket,
            position_window_absolute,
            create_pointer,
            create_touch,
            get_descriptor,
            start_on_this_thread: None,
        },
        server: Server::default(),
    });
    Box::into_raw(server).cast()
}

unsafe fn server<'a>(ptr: *mut WlcsDisplayServer) -> &'a mut Server {
    // SAFETY (caller): ptr came from create_server and is not yet destroyed.
    &mut (*ptr.cast::<DisplayServerImpl>()).server
}

unsafe extern "C" fn destroy_server(ptr: *mut WlcsDisplayServer) {
    let mut server = Box::from_raw(ptr.cast::<DisplayServerImpl>());
    server.server.stop();
}

unsafe extern "C" fn start(ptr: *mut WlcsDisplayServer) {
    if let Err(err) = server(ptr).start() {
        // WLCS has no way to report this; failing loudly beats hanging.
        eprintln!("wlcs-integration: compositor failed to start: {err:#}");
        std::process::abort();
    }
}

unsafe extern "C" fn stop(ptr: *mut WlcsDisplayServer) {
    server(ptr).stop();
}

unsafe extern "C" fn create_client_socket(ptr: *mut WlcsDisplayServer) -> c_int {
    match server(ptr).handle().create_client_socket() {
        Ok(fd) => fd,
        Err(err) => {
            eprintln!("wlcs-integration: create_client_socket: {err:#}");
            -1
        }
    }
}

unsafe extern "C" fn position_window_absolute(
    ptr: *mut WlcsDisplayServer,
    display: *mut c_void,
    surface: *mut c_void,
    x: c_int,
    y: c_int,
) {
    let client_fd = wl_display_get_fd(display);
    let surface_id = wl_proxy_get_id(surface);
    server(ptr).handle().call(Command::PositionWindow {
        client_fd,
        surface_id,
        x,
        y,
    });
}

unsafe extern "C" fn get_descriptor(_ptr: *const WlcsDisplayServer) -> *const WlcsIntegrationDescriptor {
    &DESCRIPTOR
}

unsafe extern "C" fn create_pointer(ptr: *mut WlcsDisplayServer) -> *mut WlcsPointer {
    let pointer = Box::new(PointerImpl {
        base: WlcsPointer {
            version: 1,
            move_absolute: pointer_move_absolute,
            move_relative: pointer_move_relative,
            button_up: pointer_button_up,
            button_down: pointer_button_down,
            destroy: pointer_destroy,
        },
        server: server(ptr).handle(),
    });
    Box::into_raw(pointer).cast()
}

unsafe fn pointer<'a>(ptr: *mut WlcsPointer) -> &'a PointerImpl {
    &*ptr.cast::<PointerImpl>()
}

unsafe extern "C" fn pointer_move_absolute(ptr: *mut WlcsPointer, x: c_int, y: c_int) {
    pointer(ptr)
        .server
        .call(Command::PointerMoveAbsolute(Point::from((fixed(x), fixed(y)))));
}

unsafe extern "C" fn pointer_move_relative(ptr: *mut WlcsPointer, dx: c_int, dy: c_int) {
    pointer(ptr)
        .server
        .call(Command::PointerMoveRelative(Point::from((fixed(dx), fixed(dy)))));
}

unsafe extern "C" fn pointer_button_up(ptr: *mut WlcsPointer, button: c_int) {
    pointer(ptr).server.call(Command::PointerButton {
        button: button as u32,
        pressed: false,
    });
}

unsafe extern "C" fn pointer_button_down(ptr: *mut WlcsPointer, button: c_int) {
    pointer(ptr).server.call(Command::PointerButton {
        button: button as u32,
        pressed: true,
    });
}

unsafe extern "C" fn pointer_destroy(ptr: *mut WlcsPointer) {
    drop(Box::from_raw(ptr.cast::<PointerImpl>()));
}

unsafe extern "C" fn create_touch(ptr: *mut WlcsDisplayServer) -> *mut WlcsTouch {
    static NEXT_SLOT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let touch = Box::new(TouchImpl {
        base: WlcsTouch {
            version: 1,
            touch_down,
            touch_move,
            touch_up,
            destroy: touch_destroy,
        },
        server: server(ptr).handle(),
        slot: NEXT_SLOT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    });
    Box::into_raw(touch).cast()
}

unsafe fn touch<'a>(ptr: *mut WlcsTouch) -> &'a TouchImpl {
    &*ptr.cast::<TouchImpl>()
}

// Touch coordinates: wlcs/touch.h declares them wl_fixed_t, but the test
// harness of Debian's wlcs 1.5.0 (`Touch::down_at`/`move_to`) passes plain
// integers. Measured: a touch at (91, 15) arrived as 91/256 when read as
// wl_fixed_t, and all 83 touch cases of the input-region suites failed.
unsafe extern "C" fn touch_down(ptr: *mut WlcsTouch, x: c_int, y: c_int) {
    let t = touch(ptr);
    t.server.call(Command::TouchDown {
        slot: t.slot,
        pos: Point::from((f64::from(x), f64::from(y))),
    });
}

unsafe extern "C" fn touch_move(ptr: *mut WlcsTouch, x: c_int, y: c_int) {
    let t = touch(ptr);
    t.server.call(Command::TouchMove {
        slot: t.slot,
        pos: Point::from((f64::from(x), f64::from(y))),
    });
}

unsafe extern "C" fn touch_up(ptr: *mut WlcsTouch) {
    let t = touch(ptr);
    t.server.call(Command::TouchUp { slot: t.slot });
}

unsafe extern "C" fn touch_destroy(ptr: *mut WlcsTouch) {
    drop(Box::from_raw(ptr.cast::<TouchImpl>()));
}
