//! A tiny in-process Wayland server used to test the client library and the
//! test clients without the real compositor.
//!
//! It only does what the clients need: globals, configure on first commit,
//! frame callbacks answered on every commit, buffer release when a surface's
//! buffer is replaced, and the `plane_idx` dmabuf error, and a
//! `wp_color_representation_manager_v1` that announces BT.601/709/2020 in
//! both ranges and accepts every request. It renders nothing.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use rustix::event::{PollFd, PollFlags};
use wayland_protocols::wp::color_representation::v1::server::{
    wp_color_representation_manager_v1 as color_manager, wp_color_representation_surface_v1 as color_surface,
};
use wayland_protocols::wp::linux_dmabuf::zv1::server::{
    zwp_linux_buffer_params_v1 as params, zwp_linux_dmabuf_v1 as dmabuf,
};
use wayland_protocols::xdg::shell::server::{xdg_surface, xdg_toplevel, xdg_wm_base};
use wayland_server::backend::{ClientData, ObjectId};
use wayland_server::protocol::{
    wl_buffer, wl_callback, wl_compositor, wl_region, wl_subcompositor, wl_subsurface, wl_surface,
};
use wayland_server::{
    Client, DataInit, Dispatch, Display, DisplayHandle, GlobalDispatch, ListeningSocket, New, Resource,
};

pub const XRGB8888: u32 = u32::from_le_bytes(*b"XR24");

#[derive(Default)]
struct SurfaceState {
    pending: Option<wl_buffer::WlBuffer>,
    current: Option<wl_buffer::WlBuffer>,
    callbacks: Vec<wl_callback::WlCallback>,
    xdg: Option<xdg_surface::XdgSurface>,
    configured: bool,
}

#[derive(Default)]
struct State {
    surfaces: HashMap<ObjectId, SurfaceState>,
    serial: u32,
}

struct NoData;
impl ClientData for NoData {}

/// A running fake server; dropping it stops the thread.
pub struct FakeServer {
    pub dir: tempfile::TempDir,
    pub socket_name: String,
    stop: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    pub fn start() -> FakeServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket_name = "fake-wayland".to_owned();
        let path = dir.path().join(&socket_name);
        let listener = ListeningSocket::bind_absolute(path).expect("bind fake socket");
        let (stop_rx, stop_tx) = rustix::pipe::pipe().expect("pipe");
        let thread = std::thread::spawn(move || serve(listener, stop_rx));
        FakeServer {
            dir,
            socket_name,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join(&self.socket_name)
    }

    pub fn runtime_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        // Closing the pipe's write end wakes the server loop with POLLHUP.
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: ListeningSocket, stop: OwnedFd) {
    let mut display: Display<State> = Display::new().expect("display");
    let dh = display.handle();
    dh.create_global::<State, wl_compositor::WlCompositor, ()>(6, ());
    dh.create_global::<State, wl_subcompositor::WlSubcompositor, ()>(1, ());
    dh.create_global::<State, xdg_wm_base::XdgWmBase, ()>(5, ());
    dh.create_global::<State, dmabuf::ZwpLinuxDmabufV1, ()>(3, ());
    dh.create_global::<State, color_manager::WpColorRepresentationManagerV1, ()>(1, ());
    let mut state = State::default();
    loop {
        let (stop_ev, listen_ev) = {
            let mut fds = [
                PollFd::new(&stop, PollFlags::IN),
                PollFd::new(&listener, PollFlags::IN),
                PollFd::from_borrowed_fd(display.backend().poll_fd(), PollFlags::IN),
            ];
            rustix::event::poll(&mut fds, -1).expect("poll");
            (fds[0].revents(), fds[1].revents())
        };
        if !stop_ev.is_empty() {
            return;
        }
        if listen_ev.contains(PollFlags::IN) {
            while let Ok(Some(stream)) = listener.accept() {
                display
                    .handle()
                    .insert_client(stream, Arc::new(NoData))
                    .expect("insert client");
            }
        }
        display.dispatch_clients(&mut state).expect("dispatch");
        let _ = display.flush_clients();
    }
}

macro_rules! simple_global {
    ($iface:ty) => {
        impl GlobalDispatch<$iface, ()> for State {
            fn bind(_: &mut Self, _: &DisplayHandle, _: &Client, r: New<$iface>, _: &(), di: &mut DataInit<'_, Self>) {
                di.init(r, ());
            }
        }
    };
}
simple_global!(wl_compositor::WlCompositor);
simple_global!(wl_subcompositor::WlSubcompositor);
simple_global!(xdg_wm_base::XdgWmBase);

impl GlobalDispatch<dmabuf::ZwpLinuxDmabufV1, ()> for State {
    fn bind(
        _: &mut Self,
        _: &DisplayHandle,
        _: &Client,
        r: New<dmabuf::ZwpLinuxDmabufV1>,
        _: &(),
        di: &mut DataInit<'_, Self>,
    ) {
        let d = di.init(r, ());
        d.format(XRGB8888);
        d.modifier(XRGB8888, 0, 0);
    }
}

impl Dispatch<wl_compositor::WlCompositor, ()> for State {
    fn request(
        s: &mut Self,
        _: &Client,
        _: &wl_compositor::WlCompositor,
        req: wl_compositor::Request,
        _: &(),
        _: &DisplayHandle,
        di: &mut DataInit<'_, Self>,
    ) {
        match req {
            wl_compositor::Request::CreateSurface { id } => {
                let surf = di.init(id, ());
                s.surfaces.insert(surf.id(), SurfaceState::default());
            }
            wl_compositor::Request::CreateRegion { id } => {
                di.init(id, ());
            }
            _ => {}
        }
    }
}

impl Dispatch<wl_surface::WlSurface, ()> for State {
    fn request(
        s: &mut Self,
        _: &Client,
        surf: &wl_surface::WlSurface,
        req: wl_surface::Request,
        _: &(),
        _: &DisplayHandle,
        di: &mut DataInit<'_, Self>,
    ) {
        let serial = s.serial;
        let Some(st) = s.surfaces.get_mut(&surf.id()) else {
            return;
        };
        match req {
            wl_surface::Request::Attach { buffer, .. } => st.pending = buffer,
            wl_surface::Request::Frame { callback } => st.callbacks.push(di.init(callback, ())),
            wl_surface::Request::Commit => {
                if let Some(new) = st.pending.take() {
                    if let Some(old) = st.current.replace(new.clone()) {
                        if old != new {
                            old.release();
                        }
                    }
                }
                for cb in st.callbacks.drain(..) {
                    cb.done(0);
                }
                if let (Some(xdg), false) = (&st.xdg, st.configured) {
                    st.configured = true;
                    xdg.configure(serial);
                    s.serial += 1;
                }
            }
            _ => {}
        }
    }
}

impl Dispatch<xdg_wm_base::XdgWmBase, ()> for State {
    fn request(
        s: &mut Self,
        _: &Client,
        _: &xdg_wm_base::XdgWmBase,
        req: xdg_wm_base::Request,
        _: &(),
        _: &DisplayHandle,
        di: &mut DataInit<'_, Self>,
    ) {
        if let xdg_wm_base::Request::GetXdgSurface { id, surface } = req {
            let xdg = di.init(id, ());
            if let Some(st) = s.surfaces.get_mut(&surface.id()) {
                st.xdg = Some(xdg);
            }
        }
    }
}

impl Dispatch<xdg_surface::XdgSurface, ()> for State {
    fn request(
        _: &mut Self,
        _: &Client,
        _: &xdg_surface::XdgSurface,
        req: xdg_surface::Request,
        _: &(),
        _: &DisplayHandle,
        di: &mut DataInit<'_, Self>,
    ) {
        if let xdg_surface::Request::GetToplevel { id } = req {
            di.init(id, ()).configure(0, 0, Vec::new());
        }
    }
}

impl Dispatch<wl_subcompositor::WlSubcompositor, ()> for State {
    fn request(
        _: &mut Self,
        _: &Client,
        _: &wl_subcompositor::WlSubcompositor,
        req: wl_subcompositor::Request,
        _: &(),
        _: &DisplayHandle,
        di: &mut DataInit<'_, Self>,
    ) {
        if let wl_subcompositor::Request::GetSubsurface { id, .. } = req {
            di.init(id, ());
        }
    }
}

impl Dispatch<dmabuf::ZwpLinuxDmabufV1, ()> for State {
    fn request(
        _: &mut Self,
        _: &Client,
        _: &dmabuf::ZwpLinuxDmabufV1,
        req: dmabuf::Request,
        _: &(),
        _: &DisplayHandle,
        di: &mut DataInit<'_, Self>,
    ) {
        if let dmabuf::Request::CreateParams { params_id } = req {
            di.init(params_id, ());
        }
    }
}

impl Dispatch<params::ZwpLinuxBufferParamsV1, ()> for State {
    fn request(
        _: &mut Self,
        _: &Client,
        p: &params::ZwpLinuxBufferParamsV1,
        req: params::Request,
        _: &(),
        _: &DisplayHandle,
        di: &mut DataInit<'_, Self>,
    ) {
        match req {
            params::Request::Add { plane_idx, .. } if plane_idx >= 4 => {
                p.post_error(params::Error::PlaneIdx, "plane index out of range");
            }
            params::Request::CreateImmed { buffer_id, .. } => {
                di.init(buffer_id, ());
            }
            _ => {}
        }
    }
}

impl GlobalDispatch<color_manager::WpColorRepresentationManagerV1, ()> for State {
    fn bind(
        _: &mut Self,
        _: &DisplayHandle,
        _: &Client,
        r: New<color_manager::WpColorRepresentationManagerV1>,
        _: &(),
        di: &mut DataInit<'_, Self>,
    ) {
        use color_surface::{AlphaMode, Coefficients, Range};
        let m = di.init(r, ());
        m.supported_alpha_mode(AlphaMode::PremultipliedElectrical);
        for c in [Coefficients::Bt601, Coefficients::Bt709, Coefficients::Bt2020] {
            for range in [Range::Limited, Range::Full] {
                m.supported_coefficients_and_ranges(c, range);
            }
        }
        m.done();
    }
}

impl Dispatch<color_manager::WpColorRepresentationManagerV1, ()> for State {
    fn request(
        _: &mut Self,
        _: &Client,
        _: &color_manager::WpColorRepresentationManagerV1,
        req: color_manager::Request,
        _: &(),
        _: &DisplayHandle,
        di: &mut DataInit<'_, Self>,
    ) {
        if let color_manager::Request::GetSurface { id, .. } = req {
            di.init(id, ());
        }
    }
}

macro_rules! ignore_requests {
    ($($m:ident :: $t:ident),*) => {$(
        impl Dispatch<$m::$t, ()> for State {
            fn request(_: &mut Self, _: &Client, _: &$m::$t, _: $m::Request, _: &(), _: &DisplayHandle, _: &mut DataInit<'_, Self>) {}
        }
    )*};
}
ignore_requests!(
    wl_region::WlRegion,
    wl_subsurface::WlSubsurface,
    xdg_toplevel::XdgToplevel,
    wl_buffer::WlBuffer,
    wl_callback::WlCallback,
    color_surface::WpColorRepresentationSurfaceV1
);
