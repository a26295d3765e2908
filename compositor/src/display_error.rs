//! `wl_display.error` for a whole client: `no_memory` when it passes a
//! resource limit, `implementation` when the compositor cannot go on.
//!
//! wayland-server offers protocol errors on resources only, and has no
//! wl_display resource type; the client's wl_display is object 1, looked up
//! through the backend by interface name, and the error is posted on it, as
//! libwayland's `wl_client_post_no_memory` and
//! `wl_client_post_implementation_error` do. The client is disconnected once
//! the error is flushed.

use smithay::reexports::wayland_server::{
    backend::{
        protocol::{Interface, ProtocolError},
        ClientId, DisconnectReason,
    },
    DisplayHandle,
};

/// `wl_display.error.no_memory`.
pub const NO_MEMORY: u32 = 2;
/// `wl_display.error.implementation`.
pub const IMPLEMENTATION: u32 = 3;

static WL_DISPLAY: Interface = Interface {
    name: "wl_display",
    version: 1,
    requests: &[],
    events: &[],
    c_ptr: None,
};

/// Posts `code` with `message` on `client`'s wl_display, which disconnects it.
pub fn post(dh: &DisplayHandle, client: ClientId, code: u32, message: &str) {
    let handle = dh.backend_handle();
    let text = std::ffi::CString::new(message.replace('\0', " ")).unwrap_or_default();
    match handle.object_for_protocol_id(client.clone(), &WL_DISPLAY, 1) {
        Ok(display) => handle.post_error(display, code, text),
        // Not reachable for a live client; still disconnect it.
        Err(_) => handle.kill_client(
            client,
            DisconnectReason::ProtocolError(ProtocolError {
                code,
                object_id: 1,
                object_interface: "wl_display".into(),
                message: message.into(),
            }),
        ),
    }
}

/// Posts `code` with `message` on every connected client's wl_display.
pub fn post_all(dh: &DisplayHandle, code: u32, message: &str) -> usize {
    let mut clients = Vec::new();
    dh.backend_handle().with_all_clients(|id| clients.push(id));
    for client in &clients {
        post(dh, client.clone(), code, message);
    }
    clients.len()
}
