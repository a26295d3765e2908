//! The element a scene hands to the renderer: smithay's surface element,
//! boxed, with a serial number.
//!
//! Elements are kept between frames and moved three times per frame (out
//! of the kept list, into the frame's list, back into the kept list); a
//! box moves as one pointer where the element itself is several hundred
//! bytes. The serial is given when the element is built and stays with it
//! while it is reused, so the damage tracker can tell the very element it
//! placed last frame from a new one at the same place
//! ([`ElementSerial`]).

use std::sync::atomic::{AtomicU64, Ordering};

use smithay::{
    backend::renderer::{
        element::{surface::WaylandSurfaceRenderElement, Element, Id, Kind, RenderElement, UnderlyingStorage},
        utils::{CommitCounter, DamageSet, OpaqueRegions},
        RendererSuper,
    },
    utils::{Buffer as BufferCoords, Physical, Point, Rectangle, Scale, Transform},
};

use crate::render::damage::ElementSerial;
use crate::render::{frame::VkFrame, VkRenderer};

/// The next element serial; 0 is never given.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// A surface's render element with its serial (module docs).
#[derive(Debug)]
pub struct SceneElement {
    serial: u64,
    inner: Box<WaylandSurfaceRenderElement<VkRenderer>>,
}

impl SceneElement {
    /// A newly built element, with a serial of its own.
    pub fn new(inner: WaylandSurfaceRenderElement<VkRenderer>) -> SceneElement {
        SceneElement {
            serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
            inner: Box::new(inner),
        }
    }
}

impl ElementSerial for SceneElement {
    fn serial(&self) -> Option<u64> {
        Some(self.serial)
    }
}

impl std::ops::Deref for SceneElement {
    type Target = WaylandSurfaceRenderElement<VkRenderer>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl Element for SceneElement {
    fn id(&self) -> &Id {
        self.inner.id()
    }

    fn current_commit(&self) -> CommitCounter {
        self.inner.current_commit()
    }

    fn location(&self, scale: Scale<f64>) -> Point<i32, Physical> {
        self.inner.location(scale)
    }

    fn src(&self) -> Rectangle<f64, BufferCoords> {
        self.inner.src()
    }

    fn transform(&self) -> Transform {
        self.inner.transform()
    }

    fn geometry(&self, scale: Scale<f64>) -> Rectangle<i32, Physical> {
        self.inner.geometry(scale)
    }

    fn damage_since(&self, scale: Scale<f64>, commit: Option<CommitCounter>) -> DamageSet<i32, Physical> {
        self.inner.damage_since(scale, commit)
    }

    fn opaque_regions(&self, scale: Scale<f64>) -> OpaqueRegions<i32, Physical> {
        self.inner.opaque_regions(scale)
    }

    fn alpha(&self) -> f32 {
        self.inner.alpha()
    }

    fn kind(&self) -> Kind {
        self.inner.kind()
    }
}

impl RenderElement<VkRenderer> for SceneElement {
    fn draw(
        &self,
        frame: &mut VkFrame<'_>,
        src: Rectangle<f64, BufferCoords>,
        dst: Rectangle<i32, Physical>,
        damage: &[Rectangle<i32, Physical>],
        opaque_regions: &[Rectangle<i32, Physical>],
    ) -> Result<(), <VkRenderer as RendererSuper>::Error> {
        RenderElement::<VkRenderer>::draw(&*self.inner, frame, src, dst, damage, opaque_regions)
    }

    fn underlying_storage(&self, renderer: &mut VkRenderer) -> Option<UnderlyingStorage<'_>> {
        self.inner.underlying_storage(renderer)
    }
}
