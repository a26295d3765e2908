//! smithay `Frame` for [`super::VkRenderer`]: turns smithay's rectangles into
//! quads and scissors for the importer's recorder.
//!
//! Coordinates: smithay hands rectangles in output space (physical pixels,
//! before the output transform); damage of a texture or solid draw is relative
//! to its destination rectangle. Each damage rectangle becomes a scissor, so
//! only damaged pixels are touched (damage-limited redraw).
//!
//! Opaque content (a format without alpha, a client's opaque region, an
//! opaque colour) is drawn without blending, and a texture shown 1:1 is
//! sampled with nearest filtering: on a software rasterizer both halve the
//! per-pixel cost, and the result is the same.

use std::sync::Arc;

use ash::vk;
use importer::renderer::RenderCore;
use importer::vulkan::pipeline::QuadPush;
use importer::vulkan::recorder::{Quad, Recorder};
use importer::vulkan::ring::FrameFence;
use smithay::backend::renderer::sync::{Fence, Interrupted, SyncPoint};
use smithay::backend::renderer::{Color32F, ContextId, Frame, Texture};
use smithay::utils::{Buffer as BufferCoord, Physical, Point, Rectangle, Size, Transform};

use super::{Error, VkTexture};

/// The fence of a submitted frame, as smithay sees it.
#[derive(Debug)]
pub struct VkSyncFence(pub Arc<FrameFence>);

impl Fence for VkSyncFence {
    fn is_signaled(&self) -> bool {
        self.0.is_signaled()
    }
    fn wait(&self) -> Result<(), Interrupted> {
        self.0.wait().map_err(|_| Interrupted)
    }
    fn is_exportable(&self) -> bool {
        false
    }
    fn export(&self) -> Option<std::os::fd::OwnedFd> {
        None
    }
}

/// One frame being recorded.
pub struct VkFrame<'frame> {
    pub(super) core: &'frame RenderCore,
    pub(super) recorder: Option<Recorder>,
    pub(super) context_id: ContextId<VkTexture>,
    /// Framebuffer size in pixels.
    pub(super) fb_size: Size<i32, Physical>,
    pub(super) transform: Transform,
}

impl std::fmt::Debug for VkFrame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VkFrame")
            .field("size", &self.fb_size)
            .field("transform", &self.transform)
            .finish()
    }
}

impl VkFrame<'_> {
    /// The output-space size (the framebuffer size turned by the transform).
    fn output_size(&self) -> Size<i32, Physical> {
        self.transform.transform_size(self.fb_size)
    }

    /// Output-space rectangle → framebuffer rectangle.
    fn to_fb(&self, rect: Rectangle<i32, Physical>) -> Rectangle<i32, Physical> {
        self.transform.invert().transform_rect_in(rect, &self.output_size())
    }

    /// Output-space point → framebuffer pixel position (f32).
    fn point_to_fb(&self, p: Point<f64, Physical>) -> [f32; 2] {
        let size = self.output_size().to_f64();
        let q = self.transform.invert().transform_point_in(p, &size);
        [q.x as f32, q.y as f32]
    }

    /// Scissors for `damage` (relative to `dst`), clipped to `dst` and the framebuffer.
    fn scissors<'d>(
        &self,
        dst: Rectangle<i32, Physical>,
        damage: impl IntoIterator<Item = &'d Rectangle<i32, Physical>>,
    ) -> Vec<vk::Rect2D> {
        let fb = Rectangle::from_size(self.fb_size);
        damage
            .into_iter()
            .filter_map(|d| Rectangle::new(d.loc + dst.loc, d.size).intersection(dst))
            .filter_map(|r| self.to_fb(r).intersection(fb))
            .filter(|r| r.size.w > 0 && r.size.h > 0)
            .map(rect2d)
            .collect()
    }

    fn corners(&self, dst: Rectangle<i32, Physical>) -> [[f32; 2]; 4] {
        let d = dst.to_f64();
        let (x0, y0, x1, y1) = (d.loc.x, d.loc.y, d.loc.x + d.size.w, d.loc.y + d.size.h);
        [(x0, y0), (x1, y0), (x0, y1), (x1, y1)].map(|(x, y)| self.point_to_fb(Point::from((x, y))))
    }

    fn recorder(&mut self) -> Result<&mut Recorder, Error> {
        self.recorder.as_mut().ok_or(Error::FrameFinished)
    }
}

fn rect2d(r: Rectangle<i32, Physical>) -> vk::Rect2D {
    vk::Rect2D {
        offset: vk::Offset2D { x: r.loc.x, y: r.loc.y },
        extent: vk::Extent2D {
            width: r.size.w as u32,
            height: r.size.h as u32,
        },
    }
}

/// Texture coordinates of the destination's corners (strip order) for the
/// `src` rectangle of a `tex_size` texture shown with `transform`.
fn texture_uv(
    src: Rectangle<f64, BufferCoord>,
    tex_size: Size<i32, BufferCoord>,
    transform: Transform,
    y_inverted: bool,
) -> [[f32; 2]; 4] {
    let (w, h) = (tex_size.w.max(1) as f64, tex_size.h.max(1) as f64);
    let (u0, v0, u1, v1) = (
        src.loc.x / w,
        src.loc.y / h,
        (src.loc.x + src.size.w) / w,
        (src.loc.y + src.size.h) / h,
    );
    // Destination corners in unit space, mapped back into the (untransformed) source rectangle.
    let unit = Size::<f64, BufferCoord>::from((1.0, 1.0));
    [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)].map(|(x, y)| {
        let p = transform
            .invert()
            .transform_point_in(Point::<f64, BufferCoord>::from((x, y)), &unit);
        let v = if y_inverted { 1.0 - p.y } else { p.y };
        [(u0 + (u1 - u0) * p.x) as f32, (v0 + (v1 - v0) * v) as f32]
    })
}

fn premultiplied(color: Color32F) -> [f32; 4] {
    color.components()
}

/// Splits `damage` into the parts inside `opaque` and the rest (all three
/// in the same space), the way smithay's GLES renderer does.
fn split_opaque(
    damage: &[Rectangle<i32, Physical>],
    opaque: &[Rectangle<i32, Physical>],
) -> (Vec<Rectangle<i32, Physical>>, Vec<Rectangle<i32, Physical>>) {
    if opaque.is_empty() {
        return (Vec::new(), damage.to_vec());
    }
    let blended = Rectangle::subtract_rects_many(damage.iter().copied(), opaque.iter().copied());
    let inside = Rectangle::subtract_rects_many(damage.iter().copied(), blended.iter().copied());
    (inside, blended)
}

/// Whether `src` (buffer space, shown with `transform`) lands on `dst`
/// texel for pixel: same size, whole-pixel offset.
fn pixel_exact(src: Rectangle<f64, BufferCoord>, dst: Rectangle<i32, Physical>, transform: Transform) -> bool {
    let size = transform.transform_size(src.size);
    size.w == f64::from(dst.size.w)
        && size.h == f64::from(dst.size.h)
        && src.loc.x.fract() == 0.0
        && src.loc.y.fract() == 0.0
}

impl Frame for VkFrame<'_> {
    type Error = Error;
    type TextureId = VkTexture;

    fn context_id(&self) -> ContextId<VkTexture> {
        self.context_id.clone()
    }

    fn clear(&mut self, color: Color32F, at: &[Rectangle<i32, Physical>]) -> Result<(), Error> {
        let fb = Rectangle::from_size(self.fb_size);
        let rects: Vec<_> = at
            .iter()
            .filter_map(|r| self.to_fb(*r).intersection(fb))
            .map(rect2d)
            .collect();
        self.recorder()?.clear(premultiplied(color), &rects);
        Ok(())
    }

    fn draw_solid(
        &mut self,
        dst: Rectangle<i32, Physical>,
        damage: &[Rectangle<i32, Physical>],
        color: Color32F,
    ) -> Result<(), Error> {
        let scissors = self.scissors(dst, damage);
        let fb = [self.fb_size.w as f32, self.fb_size.h as f32];
        let push = QuadPush::solid(self.corners(dst), fb, premultiplied(color));
        let (opaque, blended) = if color.a() >= 1.0 {
            (&scissors[..], &[][..])
        } else {
            (&[][..], &scissors[..])
        };
        let quad = Quad {
            push,
            opaque,
            blended,
            pixel_exact: false,
            texel_offset: None,
            representation: Default::default(),
        };
        self.recorder()?.draw(None, &quad);
        Ok(())
    }

    fn render_texture_from_to(
        &mut self,
        texture: &VkTexture,
        src: Rectangle<f64, BufferCoord>,
        dst: Rectangle<i32, Physical>,
        damage: &[Rectangle<i32, Physical>],
        opaque_regions: &[Rectangle<i32, Physical>],
        src_transform: Transform,
        alpha: f32,
    ) -> Result<(), Error> {
        let (opaque, blended) = if alpha < 1.0 {
            (Vec::new(), self.scissors(dst, damage))
        } else if texture.drawable.format().opaque {
            (self.scissors(dst, damage), Vec::new())
        } else {
            let (opaque, blended) = split_opaque(damage, opaque_regions);
            (self.scissors(dst, &opaque), self.scissors(dst, &blended))
        };
        let fb = [self.fb_size.w as f32, self.fb_size.h as f32];
        let uv = texture_uv(src, texture.size(), src_transform, texture.y_inverted);
        let exact = pixel_exact(src, dst, src_transform);
        let untransformed = src_transform == Transform::Normal && self.transform == Transform::Normal;
        let texel_offset = (exact && untransformed && !texture.y_inverted && alpha >= 1.0).then(|| vk::Offset2D {
            x: src.loc.x as i32 - dst.loc.x,
            y: src.loc.y as i32 - dst.loc.y,
        });
        let quad = Quad {
            push: QuadPush::textured(self.corners(dst), fb, uv, alpha),
            opaque: &opaque,
            blended: &blended,
            pixel_exact: exact,
            texel_offset,
            representation: texture.representation,
        };
        // A client buffer is locked (in id order) and fenced at submit.
        self.recorder()?.draw(Some(&texture.drawable), &quad);
        Ok(())
    }

    fn transformation(&self) -> Transform {
        self.transform
    }

    fn wait(&mut self, sync: &SyncPoint) -> Result<(), Error> {
        sync.wait().map_err(|_| Error::Interrupted)
    }

    fn finish(mut self) -> Result<SyncPoint, Error> {
        self.submit()
    }
}

impl VkFrame<'_> {
    fn submit(&mut self) -> Result<SyncPoint, Error> {
        let recorder = self.recorder.take().ok_or(Error::FrameFinished)?;
        let fence = self.core.submit_frame(recorder)?;
        Ok(SyncPoint::from(VkSyncFence(fence)))
    }
}

impl Drop for VkFrame<'_> {
    fn drop(&mut self) {
        // A frame dropped without finish() is still submitted, so the command
        // buffers and the resources it references are retired normally.
        if self.recorder.is_some() {
            if let Err(e) = self.submit() {
                tracing::warn!("submitting a dropped frame failed: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_transform_maps_src_rect_to_uv() {
        let src = Rectangle::<f64, BufferCoord>::new((10.0, 0.0).into(), (10.0, 20.0).into());
        let uv = texture_uv(src, (20, 20).into(), Transform::Normal, false);
        assert_eq!(uv, [[0.5, 0.0], [1.0, 0.0], [0.5, 1.0], [1.0, 1.0]]);
    }

    #[test]
    fn opaque_region_splits_damage() {
        let damage = [Rectangle::<i32, Physical>::from_size((10, 10).into())];
        let opaque = [Rectangle::<i32, Physical>::new((0, 0).into(), (10, 4).into())];
        let (inside, blended) = split_opaque(&damage, &opaque);
        assert_eq!(inside, opaque.to_vec());
        assert_eq!(blended, vec![Rectangle::new((0, 4).into(), (10, 6).into())]);
        let (inside, blended) = split_opaque(&damage, &[]);
        assert!(inside.is_empty());
        assert_eq!(blended, damage.to_vec());
    }

    #[test]
    fn pixel_exact_needs_same_size_and_whole_offset() {
        let dst = Rectangle::<i32, Physical>::new((5, 5).into(), (20, 10).into());
        let src = Rectangle::<f64, BufferCoord>::new((2.0, 3.0).into(), (20.0, 10.0).into());
        assert!(pixel_exact(src, dst, Transform::Normal));
        assert!(!pixel_exact(src, dst, Transform::_90));
        let turned = Rectangle::<f64, BufferCoord>::new((0.0, 0.0).into(), (10.0, 20.0).into());
        assert!(pixel_exact(turned, dst, Transform::_90));
        let half = Rectangle::<f64, BufferCoord>::new((0.5, 0.0).into(), (20.0, 10.0).into());
        assert!(!pixel_exact(half, dst, Transform::Normal));
        let scaled = Rectangle::<f64, BufferCoord>::from_size((40.0, 20.0).into());
        assert!(!pixel_exact(scaled, dst, Transform::Normal));
    }

    #[test]
    fn y_inverted_flips_v() {
        let src = Rectangle::<f64, BufferCoord>::from_size((4.0, 4.0).into());
        let uv = texture_uv(src, (4, 4).into(), Transform::Normal, true);
        assert_eq!(uv[0], [0.0, 1.0]);
        assert_eq!(uv[3], [1.0, 0.0]);
    }
}
