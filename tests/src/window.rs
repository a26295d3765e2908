//! xdg_toplevel windows and subsurfaces for test clients.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use wayland_client::protocol::wl_buffer::WlBuffer;
use wayland_client::protocol::wl_subsurface::WlSubsurface;
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Connection, Dispatch, Proxy, QueueHandle};
use wayland_protocols::xdg::shell::client::xdg_surface::{self, XdgSurface};
use wayland_protocols::xdg::shell::client::xdg_toplevel::{self, XdgToplevel};

use crate::buffer::DmabufBuffer;
use crate::client::{Client, State};
use crate::color_representation::SurfaceRepresentation;
use crate::pixel::Representation;

/// xdg state of one window, updated from its event handlers.
#[derive(Debug, Default)]
pub struct WindowData {
    /// Number of xdg_surface.configure events received (and acked).
    configures: AtomicU32,
    closed: AtomicBool,
}

/// A mapped-on-first-buffer xdg_toplevel.
pub struct Window {
    pub surface: WlSurface,
    pub xdg_surface: XdgSurface,
    pub toplevel: XdgToplevel,
    /// The surface's `wp_color_representation_surface_v1`, once asked for.
    pub representation: SurfaceRepresentation,
    data: Arc<WindowData>,
}

impl Window {
    /// Creates the role objects, sets the title, does the initial empty
    /// commit and waits (bounded) for the first configure, which is acked by
    /// the event handler before this returns. The window maps on the first
    /// commit with a buffer.
    pub fn new(client: &mut Client, title: &str) -> Result<Window> {
        let data = Arc::new(WindowData::default());
        let surface = client.globals.compositor.create_surface(&client.qh, ());
        let xdg_surface = client
            .globals
            .wm_base
            .get_xdg_surface(&surface, &client.qh, data.clone());
        let toplevel = xdg_surface.get_toplevel(&client.qh, data.clone());
        toplevel.set_title(title.to_owned());
        toplevel.set_app_id("wl-tests".to_owned());
        surface.commit();
        let d = data.clone();
        client
            .dispatch_until("the first xdg_surface.configure", |_| {
                d.configures.load(Ordering::Acquire) > 0
            })
            .with_context(|| format!("window {title:?}"))?;
        Ok(Window {
            surface,
            xdg_surface,
            toplevel,
            representation: SurfaceRepresentation::default(),
            data,
        })
    }

    /// Asks for `representation` from the next commit on
    /// ([`SurfaceRepresentation::set`]: binds `wp_color_representation_v1`
    /// on first use; `None` drops a representation asked for before, and
    /// otherwise never touches the protocol).
    pub fn set_representation(&mut self, client: &mut Client, representation: Option<Representation>) -> Result<()> {
        self.representation.set(client, &self.surface, representation)
    }

    /// Attaches `buffer` at (0,0) and damages all of it (not committed yet).
    pub fn attach(&self, buffer: &DmabufBuffer) {
        attach_damaged(&self.surface, buffer);
    }

    /// Attaches any `wl_buffer` (an shm one) of `width`×`height` at (0,0)
    /// and damages all of it (not committed yet).
    pub fn attach_wl_buffer(&self, buffer: &WlBuffer, width: i32, height: i32) {
        attach_whole(&self.surface, buffer, width, height);
    }

    /// `xdg_surface.set_window_geometry` (double-buffered, applies on commit).
    ///
    /// Without it xdg-shell defines the geometry as the bounding box of the
    /// surface *and its subsurfaces*, so a subsurface at a negative offset
    /// would move where the compositor places the main surface.
    pub fn set_geometry(&self, width: u32, height: u32) {
        self.xdg_surface.set_window_geometry(0, 0, width as i32, height as i32);
    }

    /// Damages the whole current buffer again, so the next commit repaints.
    pub fn damage_all(&self) {
        self.surface.damage_buffer(0, 0, i32::MAX, i32::MAX);
    }

    /// Requests a frame callback for the next commit; the flag turns true on `done`.
    pub fn frame(&self, client: &Client) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.surface.frame(&client.qh, flag.clone());
        flag
    }

    /// Requests a frame callback, commits all pending state and blocks
    /// (bounded by the client's timeout) until the callback is done.
    pub fn wait_frame(&self, client: &mut Client) -> Result<()> {
        let flag = self.frame(client);
        self.surface.commit();
        client.wait_flag("wl_surface.frame done", &flag)
    }

    /// Whether `surface` is on the output after two frames this window
    /// commits and waits for, and a roundtrip (enter and leave go out with
    /// the frame that shows the change).
    pub fn shows_after_frames(&self, client: &mut Client, surface: &WlSurface) -> Result<bool> {
        self.wait_frame(client)?;
        self.wait_frame(client)?;
        client.roundtrip()?;
        Ok(client.state.entered.contains(&surface.id()))
    }

    /// Whether the compositor asked to close the window.
    pub fn closed(&self) -> bool {
        self.data.closed.load(Ordering::Acquire)
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        self.representation = SurfaceRepresentation::default();
        self.toplevel.destroy();
        self.xdg_surface.destroy();
        self.surface.destroy();
    }
}

fn attach_damaged(surface: &WlSurface, buffer: &DmabufBuffer) {
    attach_whole(surface, &buffer.buffer, buffer.width as i32, buffer.height as i32);
    buffer.mark_attached();
}

fn attach_whole(surface: &WlSurface, buffer: &WlBuffer, width: i32, height: i32) {
    surface.attach(Some(buffer), 0, 0);
    surface.damage_buffer(0, 0, width, height);
}

/// A wl_subsurface (synchronized by default, as the protocol specifies).
pub struct Subsurface {
    pub surface: WlSurface,
    pub subsurface: WlSubsurface,
    /// The surface's `wp_color_representation_surface_v1`, once asked for.
    pub representation: SurfaceRepresentation,
}

impl Subsurface {
    /// Creates a child of `parent`, stacked above it and above earlier siblings.
    pub fn new(client: &Client, parent: &WlSurface) -> Subsurface {
        let surface = client.globals.compositor.create_surface(&client.qh, ());
        let subsurface = client
            .globals
            .subcompositor
            .get_subsurface(&surface, parent, &client.qh, ());
        Subsurface {
            surface,
            subsurface,
            representation: SurfaceRepresentation::default(),
        }
    }

    /// Asks for `representation` from the next commit on; see
    /// [`Window::set_representation`].
    pub fn set_representation(&mut self, client: &mut Client, representation: Option<Representation>) -> Result<()> {
        self.representation.set(client, &self.surface, representation)
    }

    /// Position relative to the parent; applied on the parent's next commit.
    pub fn set_position(&self, x: i32, y: i32) {
        self.subsurface.set_position(x, y);
    }

    /// Synchronized mode: own commits are cached until the parent commits.
    pub fn set_sync(&self) {
        self.subsurface.set_sync();
    }

    /// Desynchronized mode: own commits apply immediately.
    pub fn set_desync(&self) {
        self.subsurface.set_desync();
    }

    /// Attaches and damages `buffer`, then commits this surface.
    pub fn attach_commit(&self, buffer: &DmabufBuffer) {
        attach_damaged(&self.surface, buffer);
        self.surface.commit();
    }
}

impl Drop for Subsurface {
    fn drop(&mut self) {
        self.representation = SurfaceRepresentation::default();
        self.subsurface.destroy();
        self.surface.destroy();
    }
}

impl Dispatch<XdgSurface, Arc<WindowData>> for State {
    fn event(
        _: &mut Self,
        xdg: &XdgSurface,
        event: xdg_surface::Event,
        data: &Arc<WindowData>,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_surface::Event::Configure { serial } = event {
            // The tests always draw their own fixed size, so any configure can
            // be acked immediately.
            xdg.ack_configure(serial);
            data.configures.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Dispatch<XdgToplevel, Arc<WindowData>> for State {
    fn event(
        _: &mut Self,
        _: &XdgToplevel,
        event: xdg_toplevel::Event,
        data: &Arc<WindowData>,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_toplevel::Event::Close = event {
            data.closed.store(true, Ordering::Release);
        }
    }
}

wayland_client::delegate_noop!(State: WlSubsurface);
