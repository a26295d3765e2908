//! Direct scan-out: a client's buffer on the primary plane, with no
//! composition that frame.
//!
//! DOC: when a surface goes straight onto the plane
//!
//! A frame is scanned out directly when the topmost element on the output
//! (what is below it is hidden):
//! * is a surface whose buffer is a dma-buf,
//! * covers the output exactly and 1:1: at the output's origin, the size of
//!   the mode, its source the whole buffer, untransformed (a fullscreen
//!   surface at the output's resolution and scale 1),
//! * is opaque: fully (alpha 1), and its format has no alpha channel or its
//!   opaque region covers it,
//! * is RGB (a YUV buffer's colour representation is the renderer's to
//!   apply; a plane would use the driver's default encoding and range) and
//!   not y-inverted,
//! * has a format + modifier the primary plane lists (`IN_FORMATS`), or is
//!   LINEAR where the plane lists the format with the implicit modifier only
//!   (a driver without modifier support, such as virtio-gpu: its implicit
//!   layout for such buffers is linear, and the framebuffer is added
//!   without a modifier),
//! * can be imported by the KMS device (PRIME fd to handle, then a
//!   framebuffer) and passes an atomic test commit on the plane, both tried
//!   once per dma-buf: a refusal is remembered, counted and logged once, and
//!   that buffer is composited for as long as it lives. (If a real flip
//!   fails anyway, the buffer is remembered as refused the same way and the
//!   frame composited instead.)
//!
//! Anything else is composited as before. No frame is direct before the
//! first modeset (that commit composites).
//!
//! DOC: fences and release
//!
//! * Acquire: the buffer's pending writes (its implicit fences, which
//!   include an explicit acquire point bridged into the dma-buf) are
//!   exported as a sync_file and go with the flip as the plane's
//!   `IN_FENCE_FD`: the kernel waits, not the loop. (Commits the acquire
//!   policy holds reach a frame only once their fences allow it.)
//! * Release: the frame holds the client's buffer (smithay's `Buffer`, and
//!   an explicitly synced buffer's release point) until the page flip that
//!   replaces it on the screen completes; then they drop, and
//!   `wl_buffer.release` (or the release point's signal) goes out.
//! * The framebuffer is shared between the cache and the frames showing it,
//!   so it is removed (`RMFB`) only once neither needs it.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use smithay::backend::{
    allocator::{
        dmabuf::{Dmabuf, WeakDmabuf},
        format::FormatSet,
        Buffer as _, Format,
    },
    drm::{DrmDeviceFd, DrmSurface, PlaneConfig, PlaneState},
    renderer::element::{
        Element, Id, RenderElement, RenderElementPresentationState, RenderElementState, RenderElementStates,
        UnderlyingStorage,
    },
};
use smithay::reexports::drm::{
    buffer::{DrmFourcc, DrmModifier, Handle as GemHandle, PlanarBuffer},
    control::{framebuffer, Device as _, FbCmd2Flags},
};
use smithay::utils::{Physical, Rectangle, Scale, Transform};
use smithay::wayland::dmabuf::get_dmabuf;
use tracing::{info, warn};

use crate::buffer_sync::release::{HeldBuffer, PendingReleases};
use crate::render::VkRenderer;

/// A framebuffer made from a client's dma-buf; removed when dropped.
#[derive(Debug)]
pub struct ClientFb {
    fb: framebuffer::Handle,
    drm: DrmDeviceFd,
}

impl Drop for ClientFb {
    fn drop(&mut self) {
        if let Err(err) = self.drm.destroy_framebuffer(self.fb) {
            warn!(fb = ?self.fb, "removing a client framebuffer: {err}");
        }
    }
}

/// A client buffer chosen for this frame.
pub struct DirectFrame {
    pub fb: Rc<ClientFb>,
    /// What the screenshot reads while it is shown.
    pub dmabuf: Dmabuf,
    /// The buffer, held until a later flip replaces it.
    pub held: HeldBuffer,
    /// Its pending writes, for `IN_FENCE_FD`.
    pub in_fence: Option<importer::sync::SyncFile>,
    /// The element scanned out, for presentation feedback (taken by the
    /// frame that queues it).
    pub states: Arc<RenderElementStates>,
}

impl DirectFrame {
    pub fn fb(&self) -> framebuffer::Handle {
        self.fb.fb
    }
}

/// Why a frame was composited; logged when it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Composited {
    NothingOnTop,
    NotCovering,
    NotOpaque,
    NotDmabuf,
    YInverted,
    NotRgb,
    FormatNotOnPlane,
    KmsRefused,
    TestCommitRefused,
    FlipFailed,
    Modeset,
}

/// The framebuffer cache and what the last frame was.
#[derive(Debug, Default)]
pub struct DirectScanout {
    /// One entry per client dma-buf tried: its framebuffer, tested on the
    /// plane, or why the card refused it.
    fbs: HashMap<WeakDmabuf, Result<Rc<ClientFb>, Composited>>,
    /// `None` while frames are direct; the reason while composited.
    last: Option<Option<Composited>>,
    /// Dma-bufs the KMS device refused (each counted once).
    pub refused: u64,
    /// The last frame's candidate: the topmost element when it covers the
    /// output opaquely with a dma-buf, whether or not its buffer fits the
    /// plane (its surface gets the scan-out feedback).
    pub candidate: Option<Id>,
}

/// Whether the format is one of the renderer's RGB formats.
pub fn is_rgb(format: DrmFourcc) -> bool {
    importer::format::format_info_raw(format as u32).is_some_and(|f| !f.yuv)
}

/// Whether a format may carry alpha (unknown formats are assumed to).
fn has_alpha(format: DrmFourcc) -> bool {
    importer::format::format_info_raw(format as u32).is_none_or(|f| !f.opaque)
}

/// How the primary plane takes a buffer's format + modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaneTakes {
    /// Listed as it is: the framebuffer names the modifier.
    Explicit,
    /// A LINEAR buffer on a plane that lists the format with the implicit
    /// modifier only: the framebuffer names no modifier.
    Implicit,
}

/// Whether and how the plane listing `plane` takes `format`.
pub fn plane_takes(plane: &FormatSet, format: Format) -> Option<PlaneTakes> {
    let implicit = Format {
        code: format.code,
        modifier: DrmModifier::Invalid,
    };
    if format.modifier != DrmModifier::Invalid && plane.contains(&format) {
        Some(PlaneTakes::Explicit)
    } else if matches!(format.modifier, DrmModifier::Linear | DrmModifier::Invalid) && plane.contains(&implicit) {
        Some(PlaneTakes::Implicit)
    } else {
        None
    }
}

/// The pairs the plane scans out as clients name them: its own RGB ones,
/// and LINEAR for every RGB format it lists with the implicit modifier.
pub fn scanout_pairs(plane: &FormatSet) -> FormatSet {
    plane
        .iter()
        .filter(|f| is_rgb(f.code))
        .flat_map(|f| {
            let linear = (f.modifier == DrmModifier::Invalid).then_some(Format {
                code: f.code,
                modifier: DrmModifier::Linear,
            });
            std::iter::once(*f).chain(linear)
        })
        .collect()
}

/// The KMS view of a client dma-buf: its planes as GEM handles on `drm`.
struct Planes<'a> {
    dmabuf: &'a Dmabuf,
    handles: [Option<GemHandle>; 4],
    takes: PlaneTakes,
}

impl PlanarBuffer for Planes<'_> {
    fn size(&self) -> (u32, u32) {
        let size = self.dmabuf.size();
        (size.w as u32, size.h as u32)
    }
    fn format(&self) -> DrmFourcc {
        self.dmabuf.format().code
    }
    fn modifier(&self) -> Option<DrmModifier> {
        match self.takes {
            PlaneTakes::Explicit => Some(self.dmabuf.format().modifier),
            PlaneTakes::Implicit => None,
        }
    }
    fn pitches(&self) -> [u32; 4] {
        let mut out = [0; 4];
        self.dmabuf.strides().zip(out.iter_mut()).for_each(|(s, o)| *o = s);
        out
    }
    fn handles(&self) -> [Option<GemHandle>; 4] {
        self.handles
    }
    fn offsets(&self) -> [u32; 4] {
        let mut out = [0; 4];
        self.dmabuf.offsets().zip(out.iter_mut()).for_each(|(s, o)| *o = s);
        out
    }
}

/// PRIME-imports every plane of `dmabuf` into `drm` and adds a framebuffer.
/// The GEM handles are closed again: the framebuffer keeps the buffer.
/// Locks: none; the buffer's reservation is not taken (the ioctls do not
/// touch its pixels or fences, and none of them blocks).
fn import(drm: &DrmDeviceFd, dmabuf: &Dmabuf, takes: PlaneTakes) -> std::io::Result<ClientFb> {
    let mut handles = [None; 4];
    let mut result = Ok(());
    for (i, fd) in dmabuf.handles().enumerate().take(4) {
        match drm.prime_fd_to_buffer(fd) {
            Ok(handle) => handles[i] = Some(handle),
            Err(err) => {
                result = Err(err);
                break;
            }
        }
    }
    let planes = Planes { dmabuf, handles, takes };
    let flags = if planes.modifier().is_some() {
        FbCmd2Flags::MODIFIERS
    } else {
        FbCmd2Flags::empty()
    };
    let fb = result.and_then(|()| drm.add_planar_framebuffer(&planes, flags));
    // Planes of one dma-buf share a handle: close each handle once.
    let mut closed: Vec<GemHandle> = Vec::new();
    for handle in handles.into_iter().flatten() {
        if !closed.contains(&handle) {
            let _ = drm.close_buffer(handle);
            closed.push(handle);
        }
    }
    Ok(ClientFb {
        fb: fb?,
        drm: drm.clone(),
    })
}

/// What [`DirectScanout::choose`] needs of the backend.
pub struct Output<'a> {
    pub drm: &'a DrmDeviceFd,
    pub surface: &'a DrmSurface,
    pub plane_formats: &'a FormatSet,
    pub size: (u32, u32),
    pub scale: Scale<f64>,
}

impl DirectScanout {
    /// The direct frame for `elements` (topmost first), or why not.
    /// Locks: none; the buffer's reservation is not taken. Its fences are
    /// exported without waiting (`EXPORT_SYNC_FILE`), and the test commit
    /// is made at most once per buffer (see `framebuffer`).
    pub fn choose(
        &mut self,
        renderer: &mut VkRenderer,
        releases: &PendingReleases,
        out: &Output<'_>,
        elements: &[crate::backend::scene::SceneElement],
    ) -> Result<DirectFrame, Composited> {
        self.fbs.retain(|weak, _| weak.upgrade().is_some());
        self.candidate = None;
        let top = elements.first().ok_or(Composited::NothingOnTop)?;
        let output = Rectangle::<i32, Physical>::from_size((out.size.0 as i32, out.size.1 as i32).into());
        let geometry = top.geometry(out.scale);
        let src = top.src();
        let one_to_one = src.loc.x == 0.0
            && src.loc.y == 0.0
            && src.size.w == f64::from(output.size.w)
            && src.size.h == f64::from(output.size.h);
        if geometry != output || !one_to_one || top.transform() != Transform::Normal {
            return Err(Composited::NotCovering);
        }
        let Some(UnderlyingStorage::Wayland(buffer)) = top.underlying_storage(renderer) else {
            return Err(Composited::NotDmabuf);
        };
        let dmabuf = get_dmabuf(buffer).map_err(|_| Composited::NotDmabuf)?.clone();
        if dmabuf.y_inverted() {
            return Err(Composited::YInverted);
        }
        if !is_rgb(dmabuf.format().code) {
            return Err(Composited::NotRgb);
        }
        let opaque_region = top.opaque_regions(out.scale).iter().any(|r| r.contains_rect(output));
        if top.alpha() < 1.0 || (has_alpha(dmabuf.format().code) && !opaque_region) {
            return Err(Composited::NotOpaque);
        }
        self.candidate = Some(top.id().clone());
        let takes = plane_takes(out.plane_formats, dmabuf.format()).ok_or(Composited::FormatNotOnPlane)?;
        let fb = self.framebuffer(out, &dmabuf, takes)?;
        let in_fence = importer::sync::implicit::pending_writes(first_plane(&dmabuf))
            .ok()
            .flatten();
        let held = releases.hold(buffer);
        Ok(DirectFrame {
            fb,
            dmabuf,
            held,
            in_fence,
            states: Arc::new(zero_copy_state(top.id(), output)),
        })
    }

    /// The framebuffer for `dmabuf`, made and tested on the plane on first
    /// use; the refusal, then and every time after, when the card would not
    /// take it.
    fn framebuffer(
        &mut self,
        out: &Output<'_>,
        dmabuf: &Dmabuf,
        takes: PlaneTakes,
    ) -> Result<Rc<ClientFb>, Composited> {
        if let Some(entry) = self.fbs.get(&dmabuf.weak()) {
            return entry.clone();
        }
        let entry = import(out.drm, dmabuf, takes)
            .map_err(|err| (Composited::KmsRefused, err.to_string()))
            .and_then(|fb| {
                let probe = plane_state(out.surface, fb.fb, out.size.0, out.size.1, None);
                match out.surface.test_state([probe], false) {
                    Ok(()) => Ok(Rc::new(fb)),
                    Err(err) => Err((Composited::TestCommitRefused, err.to_string())),
                }
            })
            .map_err(|(reason, err)| {
                self.refused += 1;
                info!(
                    format = ?dmabuf.format(),
                    size = ?dmabuf.size(),
                    ?reason,
                    "the card cannot scan this buffer out ({err}); it is composited"
                );
                reason
            });
        self.fbs.insert(dmabuf.weak(), entry.clone());
        entry
    }

    /// Remembers `dmabuf` as one the card will not scan out (its flip
    /// failed after the test commit passed): composited from now on.
    pub fn refuse(&mut self, dmabuf: &Dmabuf) {
        let before = self.fbs.insert(dmabuf.weak(), Err(Composited::FlipFailed));
        if before.is_some_and(|fb| fb.is_ok()) {
            self.refused += 1;
        }
    }

    /// Logs a change between direct and composited frames. Returns whether
    /// a composited frame follows direct ones (its buffers are stale then).
    pub fn note(&mut self, now: Option<Composited>) -> bool {
        let before = self.last.replace(now);
        match (before, now) {
            (Some(None), None) => false,
            (Some(Some(was)), Some(reason)) => {
                if was != reason {
                    tracing::debug!(?reason, "composited");
                }
                false
            }
            (_, None) => {
                info!("direct scan-out: a client buffer is on the primary plane");
                false
            }
            (before, Some(reason)) => {
                let was_direct = before == Some(None);
                if was_direct {
                    info!(?reason, "composition resumed");
                }
                was_direct
            }
        }
    }
}

fn first_plane(dmabuf: &Dmabuf) -> std::os::fd::BorrowedFd<'_> {
    dmabuf.handles().next().expect("a dma-buf has a plane")
}

/// The primary plane showing `fb` over the whole `w`×`h` output.
pub fn plane_state<'a>(
    surface: &DrmSurface,
    fb: framebuffer::Handle,
    w: u32,
    h: u32,
    fence: Option<std::os::fd::BorrowedFd<'a>>,
) -> PlaneState<'a> {
    PlaneState {
        handle: surface.plane(),
        config: Some(PlaneConfig {
            src: Rectangle::from_size((w as f64, h as f64).into()),
            dst: Rectangle::from_size((w as i32, h as i32).into()),
            transform: Transform::Normal,
            alpha: 1.0,
            damage_clips: None,
            fb,
            fence,
        }),
    }
}

/// Presentation states for a frame that scanned out element `id`.
fn zero_copy_state(id: &Id, output: Rectangle<i32, Physical>) -> RenderElementStates {
    let mut states = RenderElementStates::default();
    states.states.insert(
        id.clone(),
        RenderElementState {
            visible_area: (output.size.w * output.size.h) as usize,
            presentation_state: RenderElementPresentationState::ZeroCopy,
        },
    );
    states
}

#[cfg(test)]
mod tests {
    use super::*;
    use smithay::backend::allocator::Fourcc;

    fn pair(code: Fourcc, modifier: DrmModifier) -> Format {
        Format { code, modifier }
    }

    /// `I915_FORMAT_MOD_X_TILED`.
    const X_TILED: DrmModifier = DrmModifier::I915_x_tiled;

    #[test]
    fn a_plane_without_modifiers_takes_linear_buffers_implicitly() {
        let plane: FormatSet = [pair(Fourcc::Xrgb8888, DrmModifier::Invalid)].into_iter().collect();
        assert_eq!(
            plane_takes(&plane, pair(Fourcc::Xrgb8888, DrmModifier::Linear)),
            Some(PlaneTakes::Implicit)
        );
        assert_eq!(plane_takes(&plane, pair(Fourcc::Xrgb8888, X_TILED)), None);
        assert_eq!(plane_takes(&plane, pair(Fourcc::Argb8888, DrmModifier::Linear)), None);
        let pairs = scanout_pairs(&plane);
        assert!(pairs.contains(&pair(Fourcc::Xrgb8888, DrmModifier::Linear)));
    }

    #[test]
    fn a_plane_with_modifiers_takes_what_it_lists() {
        let plane: FormatSet = [
            pair(Fourcc::Xrgb8888, DrmModifier::Linear),
            pair(Fourcc::Xrgb8888, X_TILED),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            plane_takes(&plane, pair(Fourcc::Xrgb8888, X_TILED)),
            Some(PlaneTakes::Explicit)
        );
        assert_eq!(
            plane_takes(&plane, pair(Fourcc::Xrgb8888, DrmModifier::Linear)),
            Some(PlaneTakes::Explicit)
        );
        assert_eq!(scanout_pairs(&plane).iter().count(), 2, "nothing added");
    }
}
