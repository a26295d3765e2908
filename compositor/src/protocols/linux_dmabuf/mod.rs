//! `zwp_linux_dmabuf_v1` up to version 6, our own dispatch (smithay 0.7
//! stops at version 5 and sends `main_device` to every client).
//!
//! DOC: the global and its versions
//!
//! * With a [`Feedback`] the global is version 6: clients binding 4 or 5
//!   get `main_device` and unflagged sampling tranches, clients binding 6
//!   get no `main_device`, a `sampling` flag on the renderer's tranches and
//!   may name a sampling device per buffer (`params`).
//! * Without one (no DRM device to name) it is version 3.
//! * Clients binding 3 or lower get the format list at bind: `modifier`
//!   events from version 3, `format` events before it (only for formats with
//!   a LINEAR or implicit modifier, which is all such clients can make).
//! * Surface feedback starts as the default feedback; the compositor may
//!   give a surface another one ([`surface`]), which its feedback objects
//!   are then sent.
//!
//! Buffers: see [`params`]. A created `wl_buffer` has the [`Dmabuf`] as its
//! user data, which is what smithay's renderer glue looks for.

mod feedback;
mod params;
mod surface;

use std::sync::Arc;

use smithay::backend::allocator::{dmabuf::Dmabuf, Format, Modifier};
use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::{
    zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1,
    zwp_linux_dmabuf_feedback_v1::{self, ZwpLinuxDmabufFeedbackV1},
    zwp_linux_dmabuf_v1::{self, ZwpLinuxDmabufV1},
};
use smithay::reexports::wayland_server::{
    backend::{ClientId, GlobalId},
    protocol::wl_buffer::{self, WlBuffer},
    Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource,
};

pub use feedback::{Feedback, FeedbackError, Tranche, TrancheKind};
pub use params::ParamsData;
pub use surface::{set_surface_feedback, FeedbackData};

/// The highest version offered (with feedback).
pub const VERSION: u32 = 6;
/// The version offered without feedback.
pub const VERSION_WITHOUT_FEEDBACK: u32 = 3;

/// What every object of the global shares.
#[derive(Debug)]
pub struct Shared {
    /// Every format + modifier pair the renderer imports.
    formats: Vec<Format>,
    feedback: Option<Arc<Feedback>>,
}

/// The global.
#[derive(Debug)]
pub struct LinuxDmabufState {
    _global: GlobalId,
    version: u32,
}

impl LinuxDmabufState {
    /// Creates the global: version 6 with `feedback`, version 3 without.
    pub fn new<D>(dh: &DisplayHandle, formats: Vec<Format>, feedback: Option<Arc<Feedback>>) -> LinuxDmabufState
    where
        D: GlobalDispatch<ZwpLinuxDmabufV1, Arc<Shared>> + 'static,
    {
        let version = if feedback.is_some() {
            VERSION
        } else {
            VERSION_WITHOUT_FEEDBACK
        };
        let shared = Arc::new(Shared { formats, feedback });
        LinuxDmabufState {
            _global: dh.create_global::<D, ZwpLinuxDmabufV1, _>(version, shared),
            version,
        }
    }

    /// The version the global advertises.
    pub fn version(&self) -> u32 {
        self.version
    }
}

/// What the compositor decides: budgets and the import itself.
pub trait LinuxDmabufHandler: Sized + 'static {
    /// What an accepted import gives the `wl_buffer` once it exists.
    type Accepted;

    /// A client created a params object (`create_params`).
    fn params_created(&mut self, dh: &DisplayHandle, client: &Client);
    /// One of `client`'s params objects is gone.
    fn params_destroyed(&mut self, client: &ClientId);
    /// Imports a dma-buf whose parameters passed every protocol check;
    /// `sampling_device` is what the client named, if anything. `None`
    /// refuses it (`failed`, or `invalid_wl_buffer` for `create_immed`).
    fn import_dmabuf(
        &mut self,
        dh: &DisplayHandle,
        client: &Client,
        dmabuf: &Dmabuf,
        sampling_device: Option<libc::dev_t>,
    ) -> Option<Self::Accepted>;
    /// The `wl_buffer` of an accepted import exists.
    fn buffer_created(&mut self, buffer: &WlBuffer, accepted: Self::Accepted);
    /// An accepted import got no `wl_buffer` (its client is gone): what the
    /// import holds may go.
    fn buffer_not_created(&mut self, dmabuf: &Dmabuf);
    /// A dma-buf `wl_buffer` is gone.
    fn dmabuf_buffer_destroyed(&mut self, buffer: &WlBuffer);
}

impl<D> GlobalDispatch<ZwpLinuxDmabufV1, Arc<Shared>, D> for LinuxDmabufState
where
    D: GlobalDispatch<ZwpLinuxDmabufV1, Arc<Shared>> + Dispatch<ZwpLinuxDmabufV1, Arc<Shared>> + 'static,
{
    fn bind(
        _state: &mut D,
        _dh: &DisplayHandle,
        _client: &Client,
        resource: New<ZwpLinuxDmabufV1>,
        shared: &Arc<Shared>,
        init: &mut DataInit<'_, D>,
    ) {
        let dmabuf = init.init(resource, shared.clone());
        if dmabuf.version() >= zwp_linux_dmabuf_v1::REQ_GET_DEFAULT_FEEDBACK_SINCE {
            return;
        }
        send_format_list(&dmabuf, &shared.formats);
    }
}

/// The list version 3 and older get at bind.
fn send_format_list(dmabuf: &ZwpLinuxDmabufV1, formats: &[Format]) {
    if dmabuf.version() >= zwp_linux_dmabuf_v1::EVT_MODIFIER_SINCE {
        for format in formats {
            let modifier = u64::from(format.modifier);
            dmabuf.modifier(format.code as u32, (modifier >> 32) as u32, modifier as u32);
        }
        return;
    }
    let mut sent: Vec<u32> = Vec::new();
    for format in formats {
        let code = format.code as u32;
        if matches!(format.modifier, Modifier::Linear | Modifier::Invalid) && !sent.contains(&code) {
            dmabuf.format(code);
            sent.push(code);
        }
    }
}

impl<D> Dispatch<ZwpLinuxDmabufV1, Arc<Shared>, D> for LinuxDmabufState
where
    D: Dispatch<ZwpLinuxDmabufV1, Arc<Shared>>
        + Dispatch<ZwpLinuxBufferParamsV1, ParamsData>
        + Dispatch<ZwpLinuxDmabufFeedbackV1, FeedbackData>
        + LinuxDmabufHandler,
{
    fn request(
        state: &mut D,
        client: &Client,
        _resource: &ZwpLinuxDmabufV1,
        request: zwp_linux_dmabuf_v1::Request,
        shared: &Arc<Shared>,
        dh: &DisplayHandle,
        init: &mut DataInit<'_, D>,
    ) {
        use zwp_linux_dmabuf_v1::Request;
        match request {
            Request::CreateParams { params_id } => {
                init.init(params_id, ParamsData::new(shared.clone()));
                state.params_created(dh, client);
            }
            // A global that takes feedback requests always has a feedback.
            Request::GetDefaultFeedback { id } => {
                let object = init.init(id, FeedbackData::default());
                if let Some(default) = &shared.feedback {
                    default.send(&object);
                }
            }
            Request::GetSurfaceFeedback { id, surface } => {
                let object = init.init(id, FeedbackData::for_surface(&surface));
                if let Some(default) = &shared.feedback {
                    surface::add_object(&surface, object, default);
                }
            }
            _ => {}
        }
    }
}

/// Feedback objects only take `destroy`; a surface's forgets them then.
impl<D> Dispatch<ZwpLinuxDmabufFeedbackV1, FeedbackData, D> for LinuxDmabufState
where
    D: Dispatch<ZwpLinuxDmabufFeedbackV1, FeedbackData>,
{
    fn request(
        _state: &mut D,
        _client: &Client,
        _resource: &ZwpLinuxDmabufFeedbackV1,
        _request: zwp_linux_dmabuf_feedback_v1::Request,
        _data: &FeedbackData,
        _dh: &DisplayHandle,
        _init: &mut DataInit<'_, D>,
    ) {
    }

    fn destroyed(_state: &mut D, _client: ClientId, object: &ZwpLinuxDmabufFeedbackV1, data: &FeedbackData) {
        surface::remove_object(data, object);
    }
}

/// Dma-buf `wl_buffer`s only take `destroy`; the handler hears of it.
impl<D> Dispatch<WlBuffer, Dmabuf, D> for LinuxDmabufState
where
    D: Dispatch<WlBuffer, Dmabuf> + LinuxDmabufHandler,
{
    fn request(
        _state: &mut D,
        _client: &Client,
        _buffer: &WlBuffer,
        _request: wl_buffer::Request,
        _data: &Dmabuf,
        _dh: &DisplayHandle,
        _init: &mut DataInit<'_, D>,
    ) {
    }

    fn destroyed(state: &mut D, _client: ClientId, buffer: &WlBuffer, _data: &Dmabuf) {
        state.dmabuf_buffer_destroyed(buffer);
    }
}

/// Wires every linux-dmabuf interface of `$ty` to [`LinuxDmabufState`].
#[macro_export]
macro_rules! delegate_linux_dmabuf {
    ($ty:ty) => {
        smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1:
                std::sync::Arc<$crate::protocols::linux_dmabuf::Shared>
        ] => $crate::protocols::linux_dmabuf::LinuxDmabufState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1:
                std::sync::Arc<$crate::protocols::linux_dmabuf::Shared>
        ] => $crate::protocols::linux_dmabuf::LinuxDmabufState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1:
                $crate::protocols::linux_dmabuf::ParamsData
        ] => $crate::protocols::linux_dmabuf::LinuxDmabufState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1:
                $crate::protocols::linux_dmabuf::FeedbackData
        ] => $crate::protocols::linux_dmabuf::LinuxDmabufState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer:
                smithay::backend::allocator::dmabuf::Dmabuf
        ] => $crate::protocols::linux_dmabuf::LinuxDmabufState);
    };
}
