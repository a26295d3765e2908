//! One fuzzed client: the input bytes, read as a sequence of requests over
//! the objects the client created so far (surfaces, params, buffers,
//! subsurfaces, xdg surfaces), sent in whatever order the bytes say.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};

use crate::color_representation::ColorClient;
use crate::syncobj::SyncobjClient;
use crate::wire::{Arg, Wire};

/// The shared requests a mix with a [`ProtocolClient`] draws from: the
/// kinds below this (surfaces, toplevels, buffers, attach, commit, damage,
/// frame callbacks), then this one for `ack_configure`, then the protocol's.
const SHARED_WITH_PROTOCOL: u8 = 14;
const ACK_CONFIGURE: u8 = 20;

/// The client side of one more protocol a mix exercises.
pub(crate) trait ProtocolClient {
    /// The global's interface and the version bound.
    fn global(&self) -> (&'static str, u32);
    /// Where the bound global's id goes (0 until bound).
    fn manager(&mut self) -> &mut u32;
    /// How many kinds of requests [`ProtocolClient::op`] sends.
    fn ops(&self) -> u8;
    /// Sends request kind `op` (< [`ProtocolClient::ops`]) about the client's
    /// `surfaces`.
    fn op(&mut self, op: u8, wire: &mut Wire, input: &mut Input<'_>, ids: &mut NewIds<'_>, surfaces: &mut Ids);
    /// A dma-buf of `size` bytes for a buffer plane, where the protocol
    /// wants real ones.
    fn dmabuf(&self, _size: usize) -> Option<OwnedFd> {
        None
    }
}

/// Hands out the client's next object ids.
pub(crate) struct NewIds<'a>(pub &'a mut u32);

impl NewIds<'_> {
    pub(crate) fn next(&mut self) -> u32 {
        let id = *self.0;
        *self.0 += 1;
        id
    }
}

/// Which requests a target draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// linux-dmabuf params and buffers, and enough surface requests to show them.
    DmabufParams,
    /// Everything: surfaces, subsurfaces, xdg toplevels, frame callbacks,
    /// buffers, destroys in any order.
    SurfaceCommits,
    /// linux-dmabuf buffers on surfaces with `wp_linux_drm_syncobj_v1`
    /// timelines and points (needs a render node: the kernel VM tier).
    DrmSyncobj,
    /// linux-dmabuf buffers on surfaces with `wp_color_representation_v1`
    /// coefficients, ranges, chroma locations and alpha modes.
    ColorRepresentation,
}

/// The fuzz input as a stream of small numbers; zeros once it runs out.
pub struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data, at: 0 }
    }

    pub fn done(&self) -> bool {
        self.at >= self.data.len()
    }

    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// A small signed value, sometimes an extreme one.
    pub fn int(&mut self) -> i32 {
        match self.u8() {
            0 => i32::MIN,
            1 => i32::MAX,
            2 => -1,
            b => i32::from(b) - 64,
        }
    }

    /// A size: mostly small and valid, sometimes zero, negative or huge.
    pub fn size(&mut self) -> i32 {
        match self.u8() {
            0 => 0,
            1 => -1,
            2 => i32::MAX,
            b => i32::from(b % 128) + 1,
        }
    }
}

/// Formats worth trying: what the compositor advertises, and some it does not.
const FORMATS: [u32; 7] = [
    drm_fourcc::DrmFourcc::Xrgb8888 as u32,
    drm_fourcc::DrmFourcc::Argb8888 as u32,
    drm_fourcc::DrmFourcc::Xbgr8888 as u32,
    drm_fourcc::DrmFourcc::Abgr8888 as u32,
    drm_fourcc::DrmFourcc::Nv12 as u32,
    drm_fourcc::DrmFourcc::Rgb565 as u32,
    0x2020_2020,
];

/// Live objects of one kind, by the client's ids.
#[derive(Default)]
pub(crate) struct Ids(pub(crate) Vec<u32>);

impl Ids {
    pub(crate) fn pick(&self, input: &mut Input<'_>) -> Option<u32> {
        (!self.0.is_empty()).then(|| self.0[usize::from(input.u8()) % self.0.len()])
    }

    pub(crate) fn take(&mut self, input: &mut Input<'_>) -> Option<u32> {
        if self.0.is_empty() {
            return None;
        }
        let i = usize::from(input.u8()) % self.0.len();
        Some(self.0.swap_remove(i))
    }
}

/// The globals the fuzzer binds, by interface.
#[derive(Default)]
pub struct Globals {
    pub compositor: u32,
    pub subcompositor: u32,
    pub dmabuf: u32,
    pub wm_base: u32,
}

/// The client's objects and the wire.
pub struct Session {
    pub wire: Wire,
    mix: Mix,
    next_id: u32,
    pub globals: Globals,
    surfaces: Ids,
    params: Ids,
    buffers: Ids,
    subsurfaces: Ids,
    xdg_surfaces: Ids,
    toplevels: Ids,
    /// The last configure serial of each xdg_surface.
    serials: HashMap<u32, u32>,
    /// The protocol the mix adds, if any.
    protocol: Option<Box<dyn ProtocolClient>>,
}

impl Session {
    pub fn new(wire: Wire, mix: Mix) -> Session {
        Session {
            wire,
            mix,
            next_id: 3,
            globals: Globals::default(),
            surfaces: Ids::default(),
            params: Ids::default(),
            buffers: Ids::default(),
            subsurfaces: Ids::default(),
            xdg_surfaces: Ids::default(),
            toplevels: Ids::default(),
            serials: HashMap::new(),
            protocol: match mix {
                Mix::DrmSyncobj => Some(Box::new(SyncobjClient::open())),
                Mix::ColorRepresentation => Some(Box::new(ColorClient::default())),
                _ => None,
            },
        }
    }

    fn new_id(&mut self) -> u32 {
        NewIds(&mut self.next_id).next()
    }

    /// `wl_display.get_registry` as object 2.
    pub fn get_registry(&mut self) {
        self.wire.send(1, 1, &[Arg::Object(2)]);
    }

    /// Binds the globals the registry announced, at versions we speak.
    pub fn bind_globals(&mut self) {
        let mut wanted: Vec<(u32, String, u32)> = Vec::new();
        for event in self.wire.events() {
            if event.object != 2 || event.opcode != 0 {
                continue;
            }
            let (Some(name), Some((interface, next))) = (event.word(0), event.string(1)) else {
                continue;
            };
            let version = event.word(next).unwrap_or(1);
            wanted.push((name, interface, version));
        }
        let extra = self.protocol.as_ref().map(|p| p.global());
        for (name, interface, version) in wanted {
            let max = match interface.as_str() {
                "wl_compositor" | "xdg_wm_base" => 6,
                "wl_subcompositor" => 1,
                "zwp_linux_dmabuf_v1" => 3,
                i if extra.is_some_and(|(e, _)| e == i) => extra.map_or(1, |(_, v)| v),
                _ => continue,
            };
            let id = self.new_id();
            self.wire.send(
                2,
                0,
                &[
                    Arg::Uint(name),
                    Arg::Str(&interface),
                    Arg::Uint(version.min(max)),
                    Arg::Object(id),
                ],
            );
            let slot = match interface.as_str() {
                "wl_compositor" => &mut self.globals.compositor,
                "xdg_wm_base" => &mut self.globals.wm_base,
                "wl_subcompositor" => &mut self.globals.subcompositor,
                "zwp_linux_dmabuf_v1" => &mut self.globals.dmabuf,
                _ => match self.protocol.as_mut() {
                    Some(client) => client.manager(),
                    None => continue,
                },
            };
            *slot = id;
        }
    }

    /// Reacts to what the compositor sent: pings, configure serials,
    /// buffers from `create`, errors.
    pub fn read_events(&mut self) {
        for event in self.wire.events() {
            match (event.object, event.opcode) {
                (1, 0) => self.wire.closed = true, // wl_display.error
                (o, 0) if o == self.globals.wm_base && o != 0 => {
                    if let Some(serial) = event.word(0) {
                        self.wire.send(o, 3, &[Arg::Uint(serial)]); // pong
                    }
                }
                (o, 0) if self.xdg_surfaces.0.contains(&o) => {
                    if let Some(serial) = event.word(0) {
                        self.serials.insert(o, serial);
                    }
                }
                (o, 0) if self.params.0.contains(&o) => {
                    if let Some(buffer) = event.word(0) {
                        self.buffers.0.push(buffer); // created(new_id)
                    }
                }
                _ => {}
            }
        }
    }

    /// Decodes and sends one request.
    pub fn op(&mut self, input: &mut Input<'_>) {
        let kinds = match self.mix {
            Mix::DmabufParams => 12,
            Mix::SurfaceCommits => 26,
            Mix::DrmSyncobj | Mix::ColorRepresentation => {
                SHARED_WITH_PROTOCOL + 1 + self.protocol.as_ref().map_or(0, |p| p.ops())
            }
        };
        let kind = match (input.u8() % kinds, self.protocol.as_mut()) {
            (SHARED_WITH_PROTOCOL, Some(_)) => ACK_CONFIGURE,
            (k, Some(client)) if k > SHARED_WITH_PROTOCOL => {
                let ids = &mut NewIds(&mut self.next_id);
                client.op(
                    k - SHARED_WITH_PROTOCOL - 1,
                    &mut self.wire,
                    input,
                    ids,
                    &mut self.surfaces,
                );
                return;
            }
            (k, _) => k,
        };
        match kind {
            0 => self.create_surface(),
            1 => self.create_params(),
            2 => self.params_add(input),
            3 => self.params_create_immed(input),
            4 => self.params_create(input),
            5 => {
                if let Some(p) = self.params.take(input) {
                    self.wire.send(p, 0, &[]);
                }
            }
            6 => {
                if let Some(b) = self.buffers.take(input) {
                    self.wire.send(b, 0, &[]);
                }
            }
            7 => self.attach(input),
            8 | 9 => {
                if let Some(s) = self.surfaces.pick(input) {
                    self.wire.send(s, 6, &[]); // commit
                }
            }
            10 => self.damage(input, 9),
            11 => self.toplevel(input),
            12 => self.damage(input, 2),
            13 => {
                if let Some(s) = self.surfaces.pick(input) {
                    let id = self.new_id();
                    self.wire.send(s, 3, &[Arg::Object(id)]); // frame
                }
            }
            14 => {
                if let Some(s) = self.surfaces.take(input) {
                    self.wire.send(s, 0, &[]); // wl_surface.destroy
                }
            }
            15 => self.subsurface(input),
            16 => {
                if let Some(s) = self.subsurfaces.pick(input) {
                    self.wire.send(s, 1, &[Arg::Int(input.int()), Arg::Int(input.int())]);
                }
            }
            17 => {
                if let (Some(s), Some(sibling)) = (self.subsurfaces.pick(input), self.surfaces.pick(input)) {
                    let opcode = 2 + u16::from(input.u8() % 2); // place_above / place_below
                    self.wire.send(s, opcode, &[Arg::Object(sibling)]);
                }
            }
            18 => {
                if let Some(s) = self.subsurfaces.pick(input) {
                    let opcode = 4 + u16::from(input.u8() % 2); // set_sync / set_desync
                    self.wire.send(s, opcode, &[]);
                }
            }
            19 => {
                if let Some(s) = self.subsurfaces.take(input) {
                    self.wire.send(s, 0, &[]);
                }
            }
            ACK_CONFIGURE => self.ack_configure(input),
            21 => {
                if let Some(t) = self.toplevels.take(input) {
                    self.wire.send(t, 0, &[]);
                }
            }
            22 => {
                if let Some(x) = self.xdg_surfaces.take(input) {
                    self.wire.send(x, 0, &[]);
                }
            }
            23 => {
                if let Some(s) = self.surfaces.pick(input) {
                    self.wire.send(s, 7, &[Arg::Int(input.int() & 7)]); // set_buffer_transform
                }
            }
            24 => {
                if let Some(s) = self.surfaces.pick(input) {
                    self.wire.send(s, 8, &[Arg::Int(input.int())]); // set_buffer_scale
                }
            }
            _ => {
                if let Some(s) = self.surfaces.pick(input) {
                    self.wire.send(s, 10, &[Arg::Int(input.int()), Arg::Int(input.int())]);
                    // offset
                }
            }
        }
    }

    fn create_surface(&mut self) {
        if self.globals.compositor == 0 {
            return;
        }
        let id = self.new_id();
        self.wire.send(self.globals.compositor, 0, &[Arg::Object(id)]);
        self.surfaces.0.push(id);
    }

    fn create_params(&mut self) {
        if self.globals.dmabuf == 0 {
            return;
        }
        let id = self.new_id();
        self.wire.send(self.globals.dmabuf, 1, &[Arg::Object(id)]);
        self.params.0.push(id);
    }

    fn params_add(&mut self, input: &mut Input<'_>) {
        let Some(p) = self.params.pick(input) else { return };
        // A protocol that wants real dma-bufs gets them for half the planes.
        let dmabuf = match self.protocol.as_ref() {
            Some(client) if input.u8() % 2 == 0 => client.dmabuf(usize::from(input.u16()) * 64 + 1),
            _ => None,
        };
        let fd = dmabuf.unwrap_or_else(|| buffer_fd(input));
        let plane = u32::from(input.u8() % 5);
        let offset = match input.u8() % 4 {
            0 => input.u32(),
            _ => u32::from(input.u16()) * 4,
        };
        let stride = match input.u8() % 4 {
            0 => input.u32(),
            _ => u32::from(input.u8()) * 16,
        };
        let (hi, lo) = match input.u8() % 4 {
            0 => (input.u32(), input.u32()),
            1 => (0x00ff_ffff, 0xffff_ffff), // DRM_FORMAT_MOD_INVALID
            _ => (0, 0),                     // LINEAR
        };
        self.wire.send(
            p,
            1,
            &[
                Arg::Fd(fd.as_fd()),
                Arg::Uint(plane),
                Arg::Uint(offset),
                Arg::Uint(stride),
                Arg::Uint(hi),
                Arg::Uint(lo),
            ],
        );
    }

    fn format(input: &mut Input<'_>) -> u32 {
        match input.u8() as usize {
            i if i < 200 => FORMATS[i % FORMATS.len()],
            _ => input.u32(),
        }
    }

    fn params_create_immed(&mut self, input: &mut Input<'_>) {
        let Some(p) = self.params.pick(input) else { return };
        let id = self.new_id();
        let (w, h, format, flags) = (
            input.size(),
            input.size(),
            Self::format(input),
            u32::from(input.u8() % 9),
        );
        self.wire.send(
            p,
            3,
            &[
                Arg::Object(id),
                Arg::Int(w),
                Arg::Int(h),
                Arg::Uint(format),
                Arg::Uint(flags),
            ],
        );
        self.buffers.0.push(id);
    }

    fn params_create(&mut self, input: &mut Input<'_>) {
        let Some(p) = self.params.pick(input) else { return };
        let (w, h, format, flags) = (
            input.size(),
            input.size(),
            Self::format(input),
            u32::from(input.u8() % 9),
        );
        self.wire
            .send(p, 2, &[Arg::Int(w), Arg::Int(h), Arg::Uint(format), Arg::Uint(flags)]);
    }

    fn attach(&mut self, input: &mut Input<'_>) {
        let Some(s) = self.surfaces.pick(input) else { return };
        let buffer = if input.u8() % 5 == 0 {
            0
        } else {
            self.buffers.pick(input).unwrap_or(0)
        };
        self.wire.send(s, 1, &[Arg::Object(buffer), Arg::Int(0), Arg::Int(0)]);
    }

    fn damage(&mut self, input: &mut Input<'_>, opcode: u16) {
        let Some(s) = self.surfaces.pick(input) else { return };
        let args = [
            Arg::Int(input.int()),
            Arg::Int(input.int()),
            Arg::Int(input.size()),
            Arg::Int(input.size()),
        ];
        self.wire.send(s, opcode, &args);
    }

    fn toplevel(&mut self, input: &mut Input<'_>) {
        if self.globals.wm_base == 0 {
            return;
        }
        let Some(s) = self.surfaces.pick(input) else { return };
        let xdg = self.new_id();
        self.wire
            .send(self.globals.wm_base, 2, &[Arg::Object(xdg), Arg::Object(s)]);
        self.xdg_surfaces.0.push(xdg);
        let top = self.new_id();
        self.wire.send(xdg, 1, &[Arg::Object(top)]);
        self.toplevels.0.push(top);
    }

    fn subsurface(&mut self, input: &mut Input<'_>) {
        if self.globals.subcompositor == 0 {
            return;
        }
        let (Some(s), Some(parent)) = (self.surfaces.pick(input), self.surfaces.pick(input)) else {
            return;
        };
        let id = self.new_id();
        self.wire.send(
            self.globals.subcompositor,
            1,
            &[Arg::Object(id), Arg::Object(s), Arg::Object(parent)],
        );
        self.subsurfaces.0.push(id);
    }

    fn ack_configure(&mut self, input: &mut Input<'_>) {
        let Some(x) = self.xdg_surfaces.pick(input) else { return };
        let serial = match self.serials.get(&x) {
            Some(&s) if input.u8() % 8 != 0 => s,
            _ => input.u32(),
        };
        self.wire.send(x, 4, &[Arg::Uint(serial)]);
    }
}

/// A buffer fd: mostly a memfd sealed against shrinking (what the host's
/// clients send), sometimes an unsealed one or one of size zero.
pub(crate) fn buffer_fd(input: &mut Input<'_>) -> OwnedFd {
    use rustix::fs::{MemfdFlags, SealFlags};
    let kind = input.u8();
    let size = u64::from(input.u16()) * 64;
    let fd =
        rustix::fs::memfd_create("fuzz-buffer", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).expect("memfd_create");
    let size = if kind % 7 == 0 { 0 } else { size };
    rustix::fs::ftruncate(&fd, size).expect("ftruncate");
    if kind % 5 != 0 {
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::SEAL).expect("seal");
    }
    fd
}
