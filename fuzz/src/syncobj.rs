//! The fuzzed client's side of `wp_linux_drm_syncobj_v1`: timelines it
//! creates on the render node and imports into the compositor (or fds that
//! are not timelines), syncobj surface objects, acquire and release points
//! (small, zero, huge, on any timeline), points it signals from the CPU, and
//! destroys in any order. Buffers are udmabufs where `/dev/udmabuf` exists,
//! so acquire points are bridged into real dma-buf reservations.
//!
//! Needs a render node with syncobj timelines: the kernel VM tier.

use std::os::fd::{AsFd, OwnedFd};

use importer::sync::{RenderNode, Syncobj};
use testkit::kernel::udmabuf::Udmabuf;

use crate::session::{Ids, Input, NewIds, ProtocolClient};
use crate::wire::{Arg, Wire};

/// Requests of this mix beyond the shared surface and buffer ones.
const OPS: u8 = 7;

/// The client's syncobj objects and the kernel objects behind them.
pub struct SyncobjClient {
    node: RenderNode,
    udmabuf: Option<Udmabuf>,
    /// The bound `wp_linux_drm_syncobj_manager_v1` (0 until bound).
    manager: u32,
    /// Syncobjs this client created; it signals their points.
    syncobjs: Vec<Syncobj>,
    /// `wp_linux_drm_syncobj_timeline_v1` objects.
    timelines: Ids,
    /// `wp_linux_drm_syncobj_surface_v1` objects.
    surfaces: Ids,
}

impl SyncobjClient {
    /// Opens the render node the compositor's global also uses.
    ///
    /// Panics where there is none: the target only runs in the kernel VM tier.
    pub fn open() -> SyncobjClient {
        let node = RenderNode::find(|caps| caps.explicit_sync())
            .expect("the drm_syncobj target needs a render node with syncobj timelines (the kernel VM tier)");
        SyncobjClient {
            node,
            udmabuf: Udmabuf::open().ok(),
            manager: 0,
            syncobjs: Vec::new(),
            timelines: Ids::default(),
            surfaces: Ids::default(),
        }
    }
}

impl ProtocolClient for SyncobjClient {
    fn global(&self) -> (&'static str, u32) {
        ("wp_linux_drm_syncobj_manager_v1", 1)
    }

    fn manager(&mut self) -> &mut u32 {
        &mut self.manager
    }

    fn ops(&self) -> u8 {
        OPS
    }

    /// Wraps a sealed memfd of `size` bytes as a udmabuf, where possible.
    fn dmabuf(&self, size: usize) -> Option<OwnedFd> {
        self.udmabuf.as_ref()?.create(size).ok().map(|b| b.dmabuf)
    }

    /// One request of this mix (`op` < [`OPS`]) for the wl_surfaces `wl_surfaces`.
    fn op(&mut self, op: u8, wire: &mut Wire, input: &mut Input<'_>, ids: &mut NewIds<'_>, wl_surfaces: &mut Ids) {
        if self.manager == 0 {
            return;
        }
        match op {
            0 => {
                let Some(surface) = wl_surfaces.pick(input) else { return };
                let id = ids.next();
                wire.send(self.manager, 1, &[Arg::Object(id), Arg::Object(surface)]); // get_surface
                self.surfaces.0.push(id);
            }
            1 => self.import_timeline(wire, input, ids),
            2 | 3 => {
                let (Some(s), Some(t)) = (self.surfaces.pick(input), self.timelines.pick(input)) else {
                    return;
                };
                let point = point(input);
                // set_acquire_point (1) or set_release_point (2)
                let args = [Arg::Object(t), Arg::Uint((point >> 32) as u32), Arg::Uint(point as u32)];
                wire.send(s, u16::from(op) - 1, &args);
            }
            4 => {
                if !self.syncobjs.is_empty() {
                    let i = usize::from(input.u8()) % self.syncobjs.len();
                    let _ = self.syncobjs[i].signal(point(input));
                }
            }
            5 => {
                if let Some(s) = self.surfaces.take(input) {
                    wire.send(s, 0, &[]);
                }
            }
            _ => {
                if let Some(t) = self.timelines.take(input) {
                    wire.send(t, 0, &[]);
                }
            }
        }
    }
}

impl SyncobjClient {
    /// `import_timeline` with a fresh timeline, one imported before, or an
    /// fd that is not a syncobj.
    fn import_timeline(&mut self, wire: &mut Wire, input: &mut Input<'_>, ids: &mut NewIds<'_>) {
        let fd = match input.u8() % 8 {
            0 => crate::session::buffer_fd(input),
            1 if !self.syncobjs.is_empty() => {
                let i = usize::from(input.u8()) % self.syncobjs.len();
                self.syncobjs[i].export().expect("exporting a syncobj")
            }
            _ => {
                let syncobj = Syncobj::create(&self.node, false).expect("DRM_IOCTL_SYNCOBJ_CREATE");
                let fd = syncobj.export().expect("exporting a syncobj");
                self.syncobjs.push(syncobj);
                fd
            }
        };
        let id = ids.next();
        wire.send(self.manager, 2, &[Arg::Object(id), Arg::Fd(fd.as_fd())]);
        self.timelines.0.push(id);
    }
}

/// A timeline point: mostly small, sometimes 0, 2^32 or u64::MAX.
fn point(input: &mut Input<'_>) -> u64 {
    match input.u8() {
        0 => 0,
        1 => u64::MAX,
        2 => 1 << 32,
        b => u64::from(b % 16),
    }
}
