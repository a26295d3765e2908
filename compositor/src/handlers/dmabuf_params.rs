//! zwp_linux_buffer_params_v1 checks that run before smithay's own handling.
//!
//! smithay 0.7 validates most params errors itself, but two inputs get past
//! it: a negative width or height on `create`/`create_immed` is reported and
//! then still handed to `Dmabuf::builder`, which panics (taking every client
//! down); and a plane set that lacks plane 0 or leaves a gap (only plane 1
//! added) is never reported as `incomplete`. This wrapper records which plane
//! indices each params object received and raises `invalid_dimensions` or
//! `incomplete` itself, for that client only, before smithay sees the request.
//!
//! It also charges each params object to its client's `params` budget
//! (`crate::limits`).

use std::collections::HashMap;

use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::{
    zwp_linux_buffer_params_v1::{self, ZwpLinuxBufferParamsV1},
    zwp_linux_dmabuf_v1::{self, ZwpLinuxDmabufV1},
};
use smithay::reexports::wayland_server::backend::{ClientId, ObjectId};
use smithay::reexports::wayland_server::{Client, DataInit, Dispatch, DisplayHandle, Resource};
use smithay::wayland::dmabuf::{DmabufData, DmabufParamsData, DmabufState};

use crate::limits::{charge, Budget, Charge};
use crate::state::State;

/// Plane indices added per params object (bit i = plane i), and the
/// `params` charges of each client's live params objects.
///
/// A params object's charge is taken when the client creates it (through
/// [`ZwpLinuxDmabufV1`]'s `create_params`, whose new object we cannot name
/// yet) and given back when any of that client's params objects is
/// destroyed: the charges are interchangeable, so one list per client is
/// enough.
#[derive(Debug, Default)]
pub struct ParamsPlanes {
    planes: HashMap<ObjectId, u32>,
    charges: HashMap<ClientId, Vec<Charge>>,
}

/// Planes a format needs at least: its planes in the importer's table; 1
/// for a format the importer does not take (refused at import anyway).
fn planes_for_format(code: u32) -> u32 {
    importer::format::format_info_raw(code).map_or(1, |f| f.planes.len() as u32)
}

/// The error to raise for a create request, if any.
fn create_error(
    mask: u32,
    width: i32,
    height: i32,
    format: u32,
) -> Option<(zwp_linux_buffer_params_v1::Error, String)> {
    use zwp_linux_buffer_params_v1::Error;
    if width < 1 || height < 1 {
        return Some((Error::InvalidDimensions, format!("invalid dimensions {width}x{height}")));
    }
    // Planes must be 0..n without gaps; an empty set is smithay's to report.
    let gap = mask != 0 && (mask & (mask + 1)) != 0;
    let missing = mask != 0 && mask.count_ones() < planes_for_format(format);
    if gap || missing || (mask != 0 && mask & 1 == 0) {
        return Some((
            Error::Incomplete,
            format!("planes {mask:#b} do not cover format {format:#x}"),
        ));
    }
    None
}

impl ParamsPlanes {
    fn record(&mut self, id: ObjectId, plane: u32) {
        if plane < 32 {
            *self.planes.entry(id).or_default() |= 1 << plane;
        }
    }

    fn mask(&self, id: &ObjectId) -> u32 {
        self.planes.get(id).copied().unwrap_or(0)
    }

    /// Params objects charged to clients (all clients), for leak checks.
    pub fn charged(&self) -> usize {
        self.charges.values().map(Vec::len).sum()
    }

    fn destroyed(&mut self, client: &ClientId, id: &ObjectId) {
        self.planes.remove(id);
        if let Some(charges) = self.charges.get_mut(client) {
            charges.pop();
            if charges.is_empty() {
                self.charges.remove(client);
            }
        }
    }
}

/// `create_params` is charged to the client (`crate::limits`); everything
/// else, and the object itself, is smithay's.
impl Dispatch<ZwpLinuxDmabufV1, DmabufData> for State {
    fn request(
        state: &mut State,
        client: &Client,
        resource: &ZwpLinuxDmabufV1,
        request: zwp_linux_dmabuf_v1::Request,
        data: &DmabufData,
        dh: &DisplayHandle,
        init: &mut DataInit<'_, State>,
    ) {
        if let zwp_linux_dmabuf_v1::Request::CreateParams { .. } = &request {
            // Past the limit the client is disconnected; smithay still
            // creates the object, which wayland-server requires.
            if let Some(charge) = charge(dh, client, Budget::Params, 1) {
                state.params_planes.charges.entry(client.id()).or_default().push(charge);
            }
        }
        <DmabufState as Dispatch<ZwpLinuxDmabufV1, DmabufData, State>>::request(
            state, client, resource, request, data, dh, init,
        );
    }
}

impl Dispatch<ZwpLinuxBufferParamsV1, DmabufParamsData> for State {
    fn request(
        state: &mut State,
        client: &Client,
        params: &ZwpLinuxBufferParamsV1,
        request: zwp_linux_buffer_params_v1::Request,
        data: &DmabufParamsData,
        dh: &DisplayHandle,
        init: &mut DataInit<'_, State>,
    ) {
        use zwp_linux_buffer_params_v1::Request;
        match &request {
            Request::Add { plane_idx, .. } => state.params_planes.record(params.id(), *plane_idx),
            Request::Create {
                width, height, format, ..
            }
            | Request::CreateImmed {
                width, height, format, ..
            } => {
                if let Some((err, msg)) = create_error(state.params_planes.mask(&params.id()), *width, *height, *format)
                {
                    params.post_error(err, msg);
                    return;
                }
            }
            _ => {}
        }
        <DmabufState as Dispatch<ZwpLinuxBufferParamsV1, DmabufParamsData, State>>::request(
            state, client, params, request, data, dh, init,
        );
    }

    fn destroyed(state: &mut State, client: ClientId, params: &ZwpLinuxBufferParamsV1, data: &DmabufParamsData) {
        state.params_planes.destroyed(&client, &params.id());
        <DmabufState as Dispatch<ZwpLinuxBufferParamsV1, DmabufParamsData, State>>::destroyed(
            state, client, params, data,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XR24: u32 = 0x3432_5258;

    #[test]
    fn negative_sizes_are_invalid_dimensions() {
        assert!(matches!(
            create_error(1, -64, 64, XR24),
            Some((zwp_linux_buffer_params_v1::Error::InvalidDimensions, _))
        ));
        assert!(matches!(
            create_error(1, 64, 0, XR24),
            Some((zwp_linux_buffer_params_v1::Error::InvalidDimensions, _))
        ));
    }

    #[test]
    fn lone_plane_one_is_incomplete() {
        assert!(matches!(
            create_error(0b10, 64, 64, XR24),
            Some((zwp_linux_buffer_params_v1::Error::Incomplete, _))
        ));
        assert!(create_error(0b1, 64, 64, XR24).is_none());
    }

    #[test]
    fn nv12_needs_two_planes() {
        let nv12 = drm_fourcc::DrmFourcc::Nv12 as u32;
        assert!(matches!(
            create_error(0b1, 64, 64, nv12),
            Some((zwp_linux_buffer_params_v1::Error::Incomplete, _))
        ));
        assert!(create_error(0b11, 64, 64, nv12).is_none());
        let yuv420 = drm_fourcc::DrmFourcc::Yuv420 as u32;
        assert!(create_error(0b11, 64, 64, yuv420).is_some());
        assert!(create_error(0b111, 64, 64, yuv420).is_none());
    }
}
