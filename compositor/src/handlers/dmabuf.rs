//! zwp_linux_dmabuf_v1 for [`State`]: which device clients are told to
//! allocate for, what each client may hold, and the import itself. The
//! protocol is dispatched by `crate::protocols::linux_dmabuf`.
//!
//! DOC: the sampling device
//!
//! The device named in the sampling tranche (and as `main_device` to
//! version 4 and 5 clients) is, first found:
//! 1. the renderer's own DRM render node, when the driver reports it;
//! 2. for a renderer on the CPU (lavapipe), which imports any dma-buf by
//!    mapping it, the first render node in `/dev/dri`: a LINEAR buffer
//!    allocated there is sampled without a copy;
//! 3. none: the global is version 3, a plain format + modifier list, as
//!    Weston does; there is no honest device to name (this host).
//!
//! DOC: a buffer meant for another device
//!
//! A version 6 client may name, per buffer, a sampling device the
//! compositor did not advertise (one it cannot sample from, such as the
//! scan-out card or another GPU). That is not an error: the renderer is the
//! only device that samples, so the buffer is imported there by the usual
//! path order (zero-copy, else a copy) and shown if that works, `failed`
//! if it does not, exactly like a buffer with no device named. Such
//! buffers are counted (`linux_dmabuf.other_device` in `--stats`) and
//! logged at debug level.
//!
//! DOC: feedback, and the scan-out tranche
//!
//! The default feedback (and every surface's at first) is one sampling
//! tranche. On the DRM backend a second feedback starts with a scan-out
//! tranche for the card (the pairs both the primary plane and the renderer
//! take, flag `scanout`) before the same sampling tranche. A surface gets
//! it while it is the backend's direct scan-out candidate (it covers the
//! output, opaque: `backend::drm::direct`), whether or not its current
//! buffer fits the plane, so its client can allocate one that does; it
//! goes back to the default once another surface is the candidate or none
//! is. Each switch is logged and counted (`linux_dmabuf.scanout_feedback`).
//!
//! Buffers are imported at creation, so a buffer the renderer cannot
//! sample fails `create`/`create_immed` instead of breaking a later frame.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smithay::{
    backend::{
        allocator::{dmabuf::Dmabuf, format::FormatSet, Buffer},
        renderer::ImportDma,
    },
    reexports::wayland_server::{
        backend::ClientId,
        protocol::{wl_buffer::WlBuffer, wl_surface::WlSurface},
        Client, DisplayHandle, Resource as _, Weak,
    },
    wayland::buffer::BufferHandler,
};
use tracing::{debug, info, warn};

use crate::{
    limits::{charge, Budget, Charge},
    protocols::linux_dmabuf::{
        set_surface_feedback, Feedback, LinuxDmabufHandler, LinuxDmabufState, Tranche, TrancheKind,
    },
    render::VkRenderer,
    state::State,
};

/// `"linux_dmabuf"` in `--stats`: what clients said about devices.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct LinuxDmabufStats {
    /// The version the global advertises (3 without a device to name, 6).
    pub global_version: u32,
    /// Buffers whose params named the advertised sampling device.
    pub sampling_device: u64,
    /// Buffers whose params named another device (imported all the same).
    pub other_device: u64,
    /// Surfaces given the feedback with the scan-out tranche.
    pub scanout_feedback: u64,
}

/// The `params` charges of each client's live params objects. A charge is
/// taken at `create_params` and given back when any of that client's params
/// objects is destroyed: the charges are interchangeable.
#[derive(Debug, Default)]
pub struct ParamsCharges(HashMap<ClientId, Vec<Charge>>);

impl ParamsCharges {
    /// Params objects charged to clients (all clients), for leak checks.
    pub fn charged(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }
}

/// The linux-dmabuf global and what the handler keeps for it.
#[derive(Debug)]
pub struct LinuxDmabuf {
    /// Held so the global lives as long as the compositor.
    _global: LinuxDmabufState,
    /// The device named in the sampling tranche, if any.
    pub sampling_device: Option<libc::dev_t>,
    /// The default feedback, and the one with the scan-out tranche first
    /// (DRM backend).
    default_feedback: Option<Arc<Feedback>>,
    scanout_feedback: Option<Arc<Feedback>>,
    /// The surface that has the scan-out feedback.
    scanout_candidate: Option<Weak<WlSurface>>,
    pub params_charges: ParamsCharges,
    /// Live dma-buf wl_buffers and the charges they hold on their client's
    /// budget, dropped with the wl_buffer.
    pub buffer_charges: HashMap<smithay::reexports::wayland_server::backend::ObjectId, [Charge; 2]>,
    pub stats: LinuxDmabufStats,
}

/// Creates the global matching what the renderer can say about itself,
/// and on the DRM backend (`scanout`: the card and the pairs its primary
/// plane takes) the feedback for scan-out candidates (see the module doc).
pub fn create_global(
    dh: &DisplayHandle,
    renderer: &VkRenderer,
    scanout: Option<(libc::dev_t, FormatSet)>,
) -> anyhow::Result<LinuxDmabuf> {
    let formats: Vec<_> = renderer.dmabuf_formats().iter().copied().collect();
    if formats.is_empty() {
        warn!("renderer reports no dma-buf formats; clients cannot use linux-dmabuf");
    }
    let sampling_device = sampling_device(renderer);
    let (default_feedback, scanout_feedback) = match sampling_device {
        Some((device, source)) => {
            info!(
                major = libc::major(device),
                minor = libc::minor(device),
                source,
                "dma-buf feedback: sampling device"
            );
            let sampling = Tranche {
                device,
                kind: TrancheKind::Sampling,
                formats: formats.clone(),
            };
            let build = |tranches: &[Tranche]| {
                Feedback::new(device, tranches)
                    .map(Arc::new)
                    .map_err(|e| anyhow::anyhow!("building dma-buf feedback: {e}"))
            };
            let scanout = match scanout {
                Some((card, plane)) => {
                    let both: Vec<_> = formats.iter().filter(|f| plane.contains(f)).copied().collect();
                    if both.is_empty() {
                        info!(
                            card,
                            "dma-buf feedback: the primary plane takes none of our pairs; no scan-out tranche"
                        );
                        None
                    } else {
                        info!(
                            card,
                            formats = both.len(),
                            "dma-buf feedback: scan-out tranche for candidates"
                        );
                        let first = Tranche {
                            device: card,
                            kind: TrancheKind::Scanout,
                            formats: both,
                        };
                        Some(build(&[first, sampling.clone()])?)
                    }
                }
                None => None,
            };
            (Some(build(&[sampling])?), scanout)
        }
        None => (None, None),
    };
    let format_count = formats.len();
    let global = LinuxDmabufState::new::<State>(dh, formats, default_feedback.clone());
    info!(
        version = global.version(),
        format_count, "zwp_linux_dmabuf_v1 global created"
    );
    Ok(LinuxDmabuf {
        stats: LinuxDmabufStats {
            global_version: global.version(),
            ..Default::default()
        },
        _global: global,
        sampling_device: sampling_device.map(|(d, _)| d),
        default_feedback,
        scanout_feedback,
        scanout_candidate: None,
        params_charges: ParamsCharges::default(),
        buffer_charges: HashMap::new(),
    })
}

/// The sampling device and where it came from (see the module doc).
fn sampling_device(renderer: &VkRenderer) -> Option<(libc::dev_t, &'static str)> {
    if let Some(device) = crate::test_hooks::dmabuf_device() {
        return Some((device, "test hook"));
    }
    if let Some(device) = renderer.main_device() {
        return Some((device, "renderer"));
    }
    if !renderer.is_cpu() {
        return None;
    }
    first_render_node().map(|device| (device, "first render node (CPU renderer maps any dma-buf)"))
}

/// The device number of the first `/dev/dri/renderD*` by name.
fn first_render_node() -> Option<libc::dev_t> {
    let nodes = importer::sync::RenderNode::paths().ok()?;
    nodes
        .iter()
        .find_map(|p| rustix::fs::stat(p).ok().map(|st| st.st_rdev as libc::dev_t))
}

impl State {
    /// The backend's direct scan-out candidate this frame (`None`: no
    /// surface covers the output): it gets the scan-out feedback, the
    /// previous candidate the default one (see the module doc).
    pub fn scanout_candidate(&mut self, surface: Option<&WlSurface>) {
        let d = &mut self.linux_dmabuf;
        let (Some(default), Some(scanout)) = (&d.default_feedback, &d.scanout_feedback) else {
            return;
        };
        let previous = d.scanout_candidate.as_ref().and_then(|w| w.upgrade().ok());
        if previous.as_ref() == surface {
            return;
        }
        if let Some(previous) = &previous {
            set_surface_feedback(previous, default);
            debug!("dma-buf feedback: default again for the previous scan-out candidate");
        }
        if let Some(surface) = surface {
            set_surface_feedback(surface, scanout);
            d.stats.scanout_feedback += 1;
            info!("dma-buf feedback: scan-out tranche for the surface that covers the output");
        }
        d.scanout_candidate = surface.map(|s| s.downgrade());
    }
}

impl LinuxDmabufHandler for State {
    type Accepted = [Charge; 2];

    fn params_created(&mut self, dh: &DisplayHandle, client: &Client) {
        // Past the limit the client is disconnected; the object was created
        // anyway, as wayland-server requires.
        if let Some(charge) = charge(dh, client, Budget::Params, 1) {
            self.linux_dmabuf
                .params_charges
                .0
                .entry(client.id())
                .or_default()
                .push(charge);
        }
    }

    fn params_destroyed(&mut self, client: &ClientId) {
        let charges = &mut self.linux_dmabuf.params_charges.0;
        if let Some(list) = charges.get_mut(client) {
            list.pop();
            if list.is_empty() {
                charges.remove(client);
            }
        }
    }

    fn import_dmabuf(
        &mut self,
        dh: &DisplayHandle,
        client: &Client,
        dmabuf: &Dmabuf,
        sampling_device: Option<libc::dev_t>,
    ) -> Option<[Charge; 2]> {
        if let Some(device) = sampling_device {
            if Some(device) == self.linux_dmabuf.sampling_device {
                self.linux_dmabuf.stats.sampling_device += 1;
            } else {
                self.linux_dmabuf.stats.other_device += 1;
                debug!(
                    major = libc::major(device),
                    minor = libc::minor(device),
                    "buffer meant for a device we do not sample from: importing on the renderer"
                );
            }
        }
        // The buffer and its plane fds count against the client's budget
        // (crate::limits); past it the client is gone and nothing is imported.
        let charges = charge_buffer(dh, client, dmabuf)?;
        match self.backend.renderer_mut().import_new(dmabuf) {
            Ok(_texture) => {
                debug!(format = ?dmabuf.format(), size = ?dmabuf.size(), "dmabuf import ok");
                Some(charges)
            }
            Err(err) => {
                warn!(format = ?dmabuf.format(), size = ?dmabuf.size(), "dmabuf import failed: {err}");
                None
            }
        }
    }

    fn buffer_created(&mut self, buffer: &WlBuffer, charges: [Charge; 2]) {
        self.linux_dmabuf.buffer_charges.insert(buffer.id(), charges);
    }

    fn buffer_not_created(&mut self, dmabuf: &Dmabuf) {
        self.backend.renderer_mut().forget_dmabuf(dmabuf);
    }

    fn dmabuf_buffer_destroyed(&mut self, buffer: &WlBuffer) {
        self.linux_dmabuf.buffer_charges.remove(&buffer.id());
        self.buffer_destroyed(buffer);
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

crate::delegate_linux_dmabuf!(State);
