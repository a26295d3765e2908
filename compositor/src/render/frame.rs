//! smithay `Frame` for [`super::VkRenderer`]: turns smithay's rectangles into
//! quads and scissors for the importer's recorder.
//!
//! Coordinates: smithay hands rectangles in output space (physical pixels,
//! before the output transform); damage of a texture or solid draw is relative
//! to its destination rectangle. Each damage rectangle becomes a scissor, so
//! only damaged pixels are touched (damage-limited redraw).

use std::sync::Arc;

use ash::vk;
use importer::renderer::RenderCore;
use importer::vulkan::pipeline::QuadPush;
use importer::vulkan::recorder::Recorder;
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
    fn scissors(&self, dst: Rectangle<i32, Physical>, damage: &[Rectangle<i32, Physical>]) -> Vec<vk::Rect2D> {
        let fb = Rectangle::from_size(self.fb_size);
        damage
            .iter()
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
        self.recorder()?.draw(None, &push, &scissors);
        Ok(())
    }

    fn render_texture_from_to(
        &mut self,
        texture: &VkTexture,
        src: Rectangle<f64, BufferCoord>,
        dst: Rectangle<i32, Physical>,
        damage: &[Rectangle<i32, Physical>],
        _opaque_regions: &[Rectangle<i32, Physical>],
        src_transform: Transform,
        alpha: f32,
    ) -> Result<(), Error> {
        let scissors = self.scissors(dst, damage);
        let fb = [self.fb_size.w as f32, self.fb_size.h as f32];
        let uv = texture_uv(src, texture.size(), src_transform, texture.y_inverted);
        let push = QuadPush::textured(self.corners(dst), fb, uv, alpha);
        // A client buffer is locked (in id order) and fenced at submit.
        self.recorder()?.draw(Some(&texture.drawable), &push, &scissors);
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
    fn y_inverted_flips_v() {
        let src = Rectangle::<f64, BufferCoord>::from_size((4.0, 4.0).into());
        let uv = texture_uv(src, (4, 4).into(), Transform::Normal, true);
        assert_eq!(uv[0], [0.0, 1.0]);
        assert_eq!(uv[3], [1.0, 0.0]);
    }
}
