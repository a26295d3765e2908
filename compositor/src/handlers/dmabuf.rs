//! zwp_linux_dmabuf_v1: client dma-bufs are validated by importing them into the
//! Vulkan renderer at creation time, so a buffer the GPU cannot sample fails
//! `create`/`create_immed` instead of breaking a later frame.

use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_feedback_v1::TrancheFlags;
use smithay::{
    backend::{
        allocator::{dmabuf::Dmabuf, format::FormatSet, Buffer},
        renderer::ImportDma,
    },
    reexports::wayland_server::DisplayHandle,
    wayland::dmabuf::{DmabufFeedbackBuilder, DmabufGlobal, DmabufHandler, DmabufState, ImportNotifier},
};
use tracing::{debug, info, warn};

use crate::{render::VkRenderer, state::State};

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
        match self.backend.renderer_mut().import_new(&dmabuf) {
            Ok(_texture) => {
                debug!(format = ?dmabuf.format(), size = ?dmabuf.size(), "dmabuf import ok");
                // Err only means the client died meanwhile; nothing to do.
                let _ = notifier.successful::<State>();
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

// Everything but zwp_linux_buffer_params_v1 goes straight to smithay; params
// requests pass through `dmabuf_params` first (see that module).
type ZwpLinuxDmabufV1 =
    smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1;
type ZwpLinuxDmabufFeedbackV1 =
    smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1;
smithay::reexports::wayland_server::delegate_global_dispatch!(State: [ZwpLinuxDmabufV1: smithay::wayland::dmabuf::DmabufGlobalData] => DmabufState);
smithay::reexports::wayland_server::delegate_dispatch!(State: [ZwpLinuxDmabufV1: smithay::wayland::dmabuf::DmabufData] => DmabufState);
smithay::reexports::wayland_server::delegate_dispatch!(State: [smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer: Dmabuf] => DmabufState);
smithay::reexports::wayland_server::delegate_dispatch!(State: [ZwpLinuxDmabufFeedbackV1: smithay::wayland::dmabuf::DmabufFeedbackData] => DmabufState);
