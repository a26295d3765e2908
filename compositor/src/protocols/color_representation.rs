//! `wp_color_representation_v1`: how a surface's YUV values become colours.
//!
//! DOC: what is offered and what it does
//!
//! * Alpha mode: `premultiplied_electrical` only (what the renderer blends).
//! * Coefficients and range: `identity` + `full` (RGB formats), and BT.601,
//!   BT.709 and BT.2020 each with `limited` or `full` (YUV formats), sent
//!   once per bind ([`SUPPORTED`]). The renderer samples a YUV buffer through
//!   a Y'CbCr conversion made for the pair (`importer::vulkan::ycbcr`); a
//!   surface that states nothing gets BT.601 limited range.
//! * Chroma location: types 0–5 are accepted for 4:2:0 formats; the
//!   conversion sites chroma at the midpoint or cosited with even samples,
//!   as the type says where the device lists that siting (lavapipe lists
//!   cosited only, which is then used for every type; "bottom" sitings have
//!   no Vulkan equivalent and take the midpoint).
//!
//! The state is double-buffered: requests write the pending
//! [`SurfaceRepresentation`] (the renderer's surface state, read when the
//! surface's buffer is imported), applied by `wl_surface.commit`. It takes
//! effect with a committed buffer: the renderer reads it when it imports
//! one.
//!
//! DOC: errors
//!
//! `surface_exists` (a second object for one wl_surface), `alpha_mode`,
//! `coefficients` (a pair not offered), `chroma_location` (not a known
//! type), `inert` (a request once the wl_surface is gone), and at commit
//! `pixel_format`: identity with a YUV buffer, other coefficients with an
//! RGB buffer, a chroma location with a buffer that is not 4:2:0 YUV. The
//! check runs against the buffer the commit attaches, else the one the
//! surface last committed.

use std::cell::RefCell;

use importer::format::{format_info_raw, FormatInfo};
use smithay::reexports::wayland_protocols::wp::color_representation::v1::server::{
    wp_color_representation_manager_v1::{self, WpColorRepresentationManagerV1},
    wp_color_representation_surface_v1::{
        self, AlphaMode, ChromaLocation, Coefficients, Range, WpColorRepresentationSurfaceV1,
    },
};
use smithay::reexports::wayland_server::{
    protocol::{wl_buffer::WlBuffer, wl_surface::WlSurface},
    Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource, WEnum, Weak as WlWeak,
};
use smithay::wayland::compositor::{add_pre_commit_hook, with_states, BufferAssignment, SurfaceAttributes};

use crate::render::SurfaceRepresentation;

/// The (coefficients, range) pairs offered, in the order they are sent.
pub const SUPPORTED: [(Coefficients, Range); 7] = [
    (Coefficients::Identity, Range::Full),
    (Coefficients::Bt601, Range::Limited),
    (Coefficients::Bt601, Range::Full),
    (Coefficients::Bt709, Range::Limited),
    (Coefficients::Bt709, Range::Full),
    (Coefficients::Bt2020, Range::Limited),
    (Coefficients::Bt2020, Range::Full),
];

/// The global.
#[derive(Debug)]
pub struct ColorRepresentationState {
    _global: smithay::reexports::wayland_server::backend::GlobalId,
}

impl ColorRepresentationState {
    /// Creates the `wp_color_representation_manager_v1` global (version 1).
    pub fn new<D>(dh: &DisplayHandle) -> ColorRepresentationState
    where
        D: GlobalDispatch<WpColorRepresentationManagerV1, ()> + 'static,
    {
        ColorRepresentationState {
            _global: dh.create_global::<D, WpColorRepresentationManagerV1, ()>(1, ()),
        }
    }
}

/// Data of a `wp_color_representation_surface_v1`.
#[derive(Debug)]
pub struct RepresentationSurfaceData {
    surface: WlWeak<WlSurface>,
}

/// Per wl_surface: its live representation object (one at most) and the
/// format of the buffer it last committed, for the commit check.
#[derive(Debug, Default)]
struct Slot {
    object: Option<WpColorRepresentationSurfaceV1>,
    committed_format: Option<FormatInfo>,
}

type SurfaceSlot = RefCell<Slot>;

impl<D> GlobalDispatch<WpColorRepresentationManagerV1, (), D> for ColorRepresentationState
where
    D: Dispatch<WpColorRepresentationManagerV1, ()> + 'static,
{
    fn bind(
        _state: &mut D,
        _dh: &DisplayHandle,
        _client: &Client,
        resource: New<WpColorRepresentationManagerV1>,
        _data: &(),
        data_init: &mut DataInit<'_, D>,
    ) {
        let manager = data_init.init(resource, ());
        manager.supported_alpha_mode(AlphaMode::PremultipliedElectrical);
        for (coefficients, range) in SUPPORTED {
            manager.supported_coefficients_and_ranges(coefficients, range);
        }
        manager.done();
    }
}

impl<D> Dispatch<WpColorRepresentationManagerV1, (), D> for ColorRepresentationState
where
    D: Dispatch<WpColorRepresentationSurfaceV1, RepresentationSurfaceData> + 'static,
{
    fn request(
        _state: &mut D,
        _client: &Client,
        resource: &WpColorRepresentationManagerV1,
        request: wp_color_representation_manager_v1::Request,
        _data: &(),
        _dh: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        use wp_color_representation_manager_v1::{Error, Request};
        match request {
            Request::GetSurface { id, surface } => {
                let exists = with_states(&surface, |states| {
                    states
                        .data_map
                        .get::<SurfaceSlot>()
                        .is_some_and(|slot| slot.borrow().object.is_some())
                });
                if exists {
                    resource.post_error(
                        Error::SurfaceExists,
                        "the wl_surface already has a wp_color_representation_surface_v1",
                    );
                    return;
                }
                let object = data_init.init(
                    id,
                    RepresentationSurfaceData {
                        surface: surface.downgrade(),
                    },
                );
                let first = with_states(&surface, |states| {
                    let first = states.data_map.insert_if_missing(SurfaceSlot::default);
                    states.data_map.get::<SurfaceSlot>().unwrap().borrow_mut().object = Some(object);
                    first
                });
                if first {
                    add_pre_commit_hook::<D, _>(&surface, |_, _, surface| check_commit(surface));
                }
            }
            Request::Destroy => {}
            _ => unreachable!("wp_color_representation_manager_v1 has no other request"),
        }
    }
}

impl<D> Dispatch<WpColorRepresentationSurfaceV1, RepresentationSurfaceData, D> for ColorRepresentationState
where
    D: Dispatch<WpColorRepresentationSurfaceV1, RepresentationSurfaceData> + 'static,
{
    fn request(
        _state: &mut D,
        _client: &Client,
        resource: &WpColorRepresentationSurfaceV1,
        request: wp_color_representation_surface_v1::Request,
        data: &RepresentationSurfaceData,
        _dh: &DisplayHandle,
        _data_init: &mut DataInit<'_, D>,
    ) {
        use wp_color_representation_surface_v1::{Error, Request};
        let surface = data.surface.upgrade().ok();
        if let Request::Destroy = request {
            // The state goes back to the default at the next commit.
            if let Some(surface) = surface {
                with_states(&surface, |states| {
                    if let Some(slot) = states.data_map.get::<SurfaceSlot>() {
                        slot.borrow_mut().object = None;
                    }
                    *states.cached_state.get::<SurfaceRepresentation>().pending() = SurfaceRepresentation::default();
                });
            }
            return;
        }
        let Some(surface) = surface else {
            resource.post_error(Error::Inert, "the wl_surface was destroyed");
            return;
        };
        let update = match request {
            Request::SetAlphaMode { alpha_mode } => match alpha_mode {
                WEnum::Value(AlphaMode::PremultipliedElectrical) => return,
                other => {
                    resource.post_error(Error::AlphaMode, format!("alpha mode {other:?} is not offered"));
                    return;
                }
            },
            Request::SetCoefficientsAndRange { coefficients, range } => match (coefficients, range) {
                (WEnum::Value(c), WEnum::Value(r)) if SUPPORTED.contains(&(c, r)) => Update::Coefficients(c, r),
                (c, r) => {
                    resource.post_error(
                        Error::Coefficients,
                        format!("coefficients {c:?} with range {r:?} are not offered"),
                    );
                    return;
                }
            },
            Request::SetChromaLocation { chroma_location } => match chroma_location {
                WEnum::Value(location) => Update::Chroma(location),
                WEnum::Unknown(v) => {
                    resource.post_error(Error::ChromaLocation, format!("unknown chroma location {v}"));
                    return;
                }
            },
            _ => unreachable!("wp_color_representation_surface_v1 has no other request"),
        };
        with_states(&surface, |states| {
            let mut cached = states.cached_state.get::<SurfaceRepresentation>();
            let pending = cached.pending();
            let mut r = pending.stated.unwrap_or_default();
            match update {
                Update::Coefficients(c, range) => {
                    pending.coefficients = true;
                    r.model = model(c);
                    r.range = match range {
                        Range::Full => ash::vk::SamplerYcbcrRange::ITU_FULL,
                        _ => ash::vk::SamplerYcbcrRange::ITU_NARROW,
                    };
                }
                Update::Chroma(location) => r.chroma = Some(siting(location)),
            }
            pending.stated = Some(r);
        });
    }
}

/// A request's change to the pending state.
enum Update {
    Coefficients(Coefficients, Range),
    Chroma(ChromaLocation),
}

/// The Y'CbCr model of offered coefficients.
fn model(c: Coefficients) -> ash::vk::SamplerYcbcrModelConversion {
    use ash::vk::SamplerYcbcrModelConversion as M;
    match c {
        Coefficients::Identity => M::RGB_IDENTITY,
        Coefficients::Bt709 => M::YCBCR_709,
        Coefficients::Bt2020 => M::YCBCR_2020,
        _ => M::YCBCR_601,
    }
}

/// H.273's Chroma420SampleLocType as Vulkan chroma offsets (x, y); Vulkan
/// has no "bottom" siting, which takes the midpoint.
fn siting(location: ChromaLocation) -> (ash::vk::ChromaLocation, ash::vk::ChromaLocation) {
    use ash::vk::ChromaLocation as L;
    match location {
        ChromaLocation::Type0 => (L::COSITED_EVEN, L::MIDPOINT),
        ChromaLocation::Type2 => (L::COSITED_EVEN, L::COSITED_EVEN),
        ChromaLocation::Type3 => (L::MIDPOINT, L::COSITED_EVEN),
        ChromaLocation::Type4 => (L::COSITED_EVEN, L::MIDPOINT),
        _ => (L::MIDPOINT, L::MIDPOINT),
    }
}

/// The pre-commit check (module doc, "errors"); records the committed
/// buffer's format.
fn check_commit(surface: &WlSurface) {
    use wp_color_representation_surface_v1::Error;
    with_states(surface, |states| {
        let Some(slot) = states.data_map.get::<SurfaceSlot>() else {
            return;
        };
        let mut slot = slot.borrow_mut();
        let attached = match &states.cached_state.get::<SurfaceAttributes>().pending().buffer {
            Some(BufferAssignment::NewBuffer(buffer)) => Some(buffer_format(buffer)),
            Some(BufferAssignment::Removed) => Some(None),
            None => None,
        };
        if let Some(format) = attached {
            slot.committed_format = format;
        }
        let (Some(object), Some(format)) = (slot.object.clone(), slot.committed_format) else {
            return;
        };
        let pending = *states.cached_state.get::<SurfaceRepresentation>().pending();
        let Some(r) = pending.stated else { return };
        let identity = r.model == ash::vk::SamplerYcbcrModelConversion::RGB_IDENTITY;
        let four_two_zero = format.yuv && format.planes.get(1).is_some_and(|p| p.hsub == 2 && p.vsub == 2);
        let problem = if identity && format.yuv {
            Some("identity coefficients with a YUV buffer")
        } else if pending.coefficients && !identity && !format.yuv {
            Some("YUV coefficients with an RGB buffer")
        } else if r.chroma.is_some() && !four_two_zero {
            Some("a chroma location with a buffer that is not 4:2:0 YUV")
        } else {
            None
        };
        if let Some(problem) = problem {
            object.post_error(Error::PixelFormat, format!("{problem} ({:?})", format.fourcc));
        }
    });
}

/// The format of a committed buffer: a dma-buf's, or a shm buffer's (any
/// shm format the importer does not know counts as RGB).
fn buffer_format(buffer: &WlBuffer) -> Option<FormatInfo> {
    use smithay::wayland::shm::{shm_format_to_fourcc, with_buffer_contents};
    match smithay::wayland::dmabuf::get_dmabuf(buffer) {
        Ok(dmabuf) => format_info_raw(smithay::backend::allocator::Buffer::format(dmabuf).code as u32),
        Err(_) => with_buffer_contents(buffer, |_, _, data| shm_format_to_fourcc(data.format))
            .ok()
            .flatten()
            .and_then(importer::format::format_info)
            .or_else(|| importer::format::rgb_formats().next()),
    }
}

/// Wires the protocol's dispatch to `$ty`.
#[macro_export]
macro_rules! delegate_color_representation {
    ($ty:ty) => {
        smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::color_representation::v1::server::wp_color_representation_manager_v1::WpColorRepresentationManagerV1: ()
        ] => $crate::protocols::color_representation::ColorRepresentationState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::color_representation::v1::server::wp_color_representation_manager_v1::WpColorRepresentationManagerV1: ()
        ] => $crate::protocols::color_representation::ColorRepresentationState);
        smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            smithay::reexports::wayland_protocols::wp::color_representation::v1::server::wp_color_representation_surface_v1::WpColorRepresentationSurfaceV1: $crate::protocols::color_representation::RepresentationSurfaceData
        ] => $crate::protocols::color_representation::ColorRepresentationState);
    };
}
