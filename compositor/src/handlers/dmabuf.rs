//! zwp_linux_dmabuf_v1: client dma-bufs are validated by importing them into the
//! Vulkan renderer at creation time, so a buffer the GPU cannot sample fails
//! `create`/`create_immed` instead of breaking a later frame.

use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_feedback_v1::TrancheFlags;
use smithay::{
    backend::{
        allocator::{dmabuf::Dmabuf, format::FormatSet, Buffer},
        renderer::ImportDma,
    },
    reexports::wayland_server::{
        backend::ClientId,
        protocol::wl_buffer::{self, WlBuffer},
        Client, DataInit, Dispatch, DisplayHandle, Resource as _,
    },
    wayland::dmabuf::{DmabufFeedbackBuilder, DmabufGlobal, DmabufHandler, DmabufState, ImportNotifier},
};
use tracing::{debug, info, warn};

use crate::{
    limits::{charge, Budget, Charge},
    render::VkRenderer,
    state::State,
};

/// Creates the dmabuf global matching what the renderer can say about itself.
///
/// With a known DRM render node we advertise v5 with default feedback naming
/// it; on the DRM backend a scan-out tranche comes first, with the pairs both
/// the primary plane (`IN_FORMATS`) and the renderer take. Without a render
/// node (lavapipe) there is no honest `main_device` to send, and Mesa clients
/// would try to open a bogus node, so we fall back to v3's plain format +
/// modifier list as Weston does.
pub fn create_global(
    dh: &DisplayHandle,
    renderer: &VkRenderer,
    scanout: Option<(libc::dev_t, FormatSet)>,
) -> anyhow::Result<(DmabufState, DmabufGlobal)> {
    let mut state = DmabufState::new();
    let formats = renderer.dmabuf_formats();
    let format_count = formats.iter().count();
    let global = match renderer.main_device() {
        Some(device) => {
            let mut builder = DmabufFeedbackBuilder::new(device, formats.iter().copied());
            if let Some((card, plane)) = scanout {
                let both: Vec<_> = plane.iter().filter(|f| formats.contains(f)).copied().collect();
                info!(card, formats = both.len(), "dma-buf feedback: scan-out tranche");
                builder = builder.add_preference_tranche(card, Some(TrancheFlags::Scanout), both);
            }
            let feedback = builder
                .build()
                .map_err(|e| anyhow::anyhow!("building default dmabuf feedback: {e}"))?;
            let global = state.create_global_with_default_feedback::<State>(dh, &feedback);
            info!(
                version = 5,
                device, format_count, "zwp_linux_dmabuf_v1 global created with default feedback"
            );
            global
        }
        None => {
            let global = state.create_global::<State>(dh, formats);
            info!(
                version = 3,
                format_count, "zwp_linux_dmabuf_v1 global created (no DRM device known)"
            );
            global
        }
    };
    if format_count == 0 {
        warn!("renderer reports no dma-buf formats; clients cannot use linux-dmabuf");
    }
    Ok((state, global))
}

impl DmabufHandler for State {
    fn dmabuf_state(&mut self) -> &mut DmabufState {
        &mut self.dmabuf_state
    }

    fn dmabuf_imported(&mut self, _global: &DmabufGlobal, dmabuf: Dmabuf, notifier: ImportNotifier) {
        // The buffer and its plane fds count against the client's budget
        // (crate::limits); past it the client is gone and nothing is imported.
        let Some(charges) = notifier
            .client()
            .and_then(|client| charge_buffer(&self.display_handle, &client, &dmabuf))
        else {
            notifier.failed();
            return;
        };
        match self.backend.renderer_mut().import_new(&dmabuf) {
            Ok(_texture) => {
                debug!(format = ?dmabuf.format(), size = ?dmabuf.size(), "dmabuf import ok");
                // Err only means the client died meanwhile; nothing to do.
                if let Ok(buffer) = notifier.successful::<State>() {
                    self.dmabuf_charges.insert(buffer.id(), charges);
                }
            }
            Err(err) => {
                warn!(format = ?dmabuf.format(), size = ?dmabuf.size(), "dmabuf import failed: {err}");
                // create -> `failed` event; create_immed -> invalid_wl_buffer
                // protocol error for that client only.
                notifier.failed();
            }
        }
    }
}

/// One `dmabufs` unit and one `fds` unit per plane, or `None` once the
/// client was disconnected for passing a limit.
fn charge_buffer(dh: &DisplayHandle, client: &Client, dmabuf: &Dmabuf) -> Option<[Charge; 2]> {
    let planes = u32::try_from(dmabuf.num_planes()).unwrap_or(u32::MAX);
    let buffer = charge(dh, client, Budget::Dmabufs, 1)?;
    let fds = charge(dh, client, Budget::Fds, planes)?;
    Some([buffer, fds])
}

/// dma-buf wl_buffers are smithay's; their charges go with them.
impl Dispatch<WlBuffer, Dmabuf> for State {
    fn request(
        state: &mut State,
        client: &Client,
        resource: &WlBuffer,
        request: wl_buffer::Request,
        data: &Dmabuf,
        dh: &DisplayHandle,
        init: &mut DataInit<'_, State>,
    ) {
        <DmabufState as Dispatch<WlBuffer, Dmabuf, State>>::request(state, client, resource, request, data, dh, init);
    }

    fn destroyed(state: &mut State, client: ClientId, resource: &WlBuffer, data: &Dmabuf) {
        state.dmabuf_charges.remove(&resource.id());
        <DmabufState as Dispatch<WlBuffer, Dmabuf, State>>::destroyed(state, client, resource, data);
    }
}

// zwp_linux_dmabuf_v1 requests and params requests pass through
// `dmabuf_params` first (see that module), dma-buf wl_buffers through the
// impl above; the rest goes straight to smithay.
type ZwpLinuxDmabufV1 =
    smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1;
type ZwpLinuxDmabufFeedbackV1 =
    smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1;
smithay::reexports::wayland_server::delegate_global_dispatch!(State: [ZwpLinuxDmabufV1: smithay::wayland::dmabuf::DmabufGlobalData] => DmabufState);
smithay::reexports::wayland_server::delegate_dispatch!(State: [ZwpLinuxDmabufFeedbackV1: smithay::wayland::dmabuf::DmabufFeedbackData] => DmabufState);
