//! Copies instead of draws: an opaque texture shown 1:1 and untransformed is
//! copied into the target (`vkCmdCopyImage`) rather than rasterized.
//!
//! DOC: when a quad may be copied
//!
//! Copies are recorded at the end of the frame's *prepare* buffer, so they
//! land before every draw of the render pass. That keeps the result of
//! drawing in order exactly when:
//!
//! * the quad replaces what is under it (opaque, alpha 1, no blended part):
//!   whatever an earlier copy left there is overwritten, as the draw would;
//! * nothing the render pass recorded before it (clears, draws of what lies
//!   below) touches its pixels: those would land *after* the copy and cover
//!   it. [`CopyPass::drawn`] collects what the render pass touched so far;
//! * the texel bytes are the target's: same `VkFormat`, and an X format's
//!   padding byte lands only in a target whose alpha is padding as well;
//! * the texture may be a copy source (`Texture::copy_source`: not a client
//!   image in DRM_FORMAT_MODIFIER tiling).
//!
//! Later draws (what lies above) stay in the render pass, after the copy.
//!
//! Only CPU rasterizers copy (the recorder decides per device): there a copy
//! is a memcpy per row and a draw runs shader code per pixel.
//!
//! DOC: layouts
//!
//! The copies run between two batched barriers: the target goes from its
//! resting layout (`super::barrier::target_layout`) to TRANSFER_DST_OPTIMAL
//! and back, each copied
//! texture SHADER_READ_ONLY_OPTIMAL → TRANSFER_SRC_OPTIMAL and back, so the
//! render pass and a client image's release find the layouts they expect.

use std::sync::Arc;

use ash::vk;

use super::barrier::{image_barrier, pipeline_barrier};
use super::texture::Texture;
use super::VkContext;
use crate::format::FormatInfo;

/// The copies of one frame, and what its render pass touched so far.
pub(crate) struct CopyPass {
    /// Whether this frame copies at all (the device decides, see the recorder).
    enabled: bool,
    target: vk::Image,
    target_format: FormatInfo,
    /// The target's resting layout, which the render pass expects.
    target_layout: vk::ImageLayout,
    copies: Vec<(Arc<Texture>, vk::ImageCopy)>,
    drawn: Vec<vk::Rect2D>,
}

fn overlaps(a: &vk::Rect2D, b: &vk::Rect2D) -> bool {
    let (ax, ay) = (i64::from(a.offset.x), i64::from(a.offset.y));
    let (bx, by) = (i64::from(b.offset.x), i64::from(b.offset.y));
    ax < bx + i64::from(b.extent.width)
        && bx < ax + i64::from(a.extent.width)
        && ay < by + i64::from(b.extent.height)
        && by < ay + i64::from(a.extent.height)
}

const LAYERS: vk::ImageSubresourceLayers = vk::ImageSubresourceLayers {
    aspect_mask: vk::ImageAspectFlags::COLOR,
    mip_level: 0,
    base_array_layer: 0,
    layer_count: 1,
};

/// Whether the rectangle at `(x, y)` of `(w, h)` pixels lies inside an
/// image of `(width, height)`.
pub(crate) fn within((x, y): (i32, i32), (w, h): (u32, u32), (width, height): (u32, u32)) -> bool {
    x >= 0
        && y >= 0
        && u64::from(x as u32) + u64::from(w) <= u64::from(width)
        && u64::from(y as u32) + u64::from(h) <= u64::from(height)
}

/// The copy of framebuffer rectangle `r` from `tex`, whose texel
/// `r.offset + offset` lands on pixel `r.offset`; `None` if it leaves the texture.
fn region(tex: &Texture, r: &vk::Rect2D, offset: vk::Offset2D) -> Option<vk::ImageCopy> {
    let (sx, sy) = (r.offset.x.checked_add(offset.x)?, r.offset.y.checked_add(offset.y)?);
    let inside = within((sx, sy), (r.extent.width, r.extent.height), (tex.width, tex.height));
    inside.then_some(vk::ImageCopy {
        src_subresource: LAYERS,
        src_offset: vk::Offset3D { x: sx, y: sy, z: 0 },
        dst_subresource: LAYERS,
        dst_offset: vk::Offset3D {
            x: r.offset.x,
            y: r.offset.y,
            z: 0,
        },
        extent: vk::Extent3D {
            width: r.extent.width,
            height: r.extent.height,
            depth: 1,
        },
    })
}

impl CopyPass {
    pub(crate) fn new(
        target: vk::Image,
        target_format: FormatInfo,
        target_layout: vk::ImageLayout,
        enabled: bool,
    ) -> CopyPass {
        CopyPass {
            enabled,
            target,
            target_format,
            target_layout,
            copies: Vec::new(),
            drawn: Vec::new(),
        }
    }

    /// The render pass touches `rects` (framebuffer pixels).
    pub(crate) fn note_drawn(&mut self, rects: &[vk::Rect2D]) {
        if self.enabled {
            self.drawn.extend_from_slice(rects);
        }
    }

    /// Takes `rects` of `tex` as copies if the module's rules allow it (the
    /// caller vouches that the quad is opaque, alpha 1, 1:1, untransformed,
    /// with texel = pixel + `offset`). Returns whether it did; if not, the
    /// caller draws.
    pub(crate) fn try_copy(&mut self, tex: &Arc<Texture>, rects: &[vk::Rect2D], offset: vk::Offset2D) -> bool {
        let same_bytes = tex.copy_source
            && tex.format.vk_format == self.target_format.vk_format
            && !tex.format.yuv
            && (self.target_format.opaque || !tex.format.opaque);
        if !self.enabled || !same_bytes || rects.iter().any(|r| self.drawn.iter().any(|d| overlaps(r, d))) {
            return false;
        }
        let Some(regions) = rects.iter().map(|r| region(tex, r, offset)).collect::<Option<Vec<_>>>() else {
            return false;
        };
        self.copies.extend(regions.into_iter().map(|c| (tex.clone(), c)));
        true
    }

    /// The copies taken so far: source texture and region.
    pub(crate) fn copies(&self) -> &[(Arc<Texture>, vk::ImageCopy)] {
        &self.copies
    }

    /// Records the copies into `cmd` (the frame's prepare buffer, after every
    /// texture's preparation). Locks: none (records only).
    pub(crate) fn record(&self, ctx: &VkContext, cmd: vk::CommandBuffer) {
        if self.copies.is_empty() {
            return;
        }
        let mut sources: Vec<&Arc<Texture>> = Vec::new();
        for (tex, _) in &self.copies {
            if !sources.iter().any(|t| Arc::ptr_eq(t, tex)) {
                sources.push(tex);
            }
        }
        let sampled = vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL;
        let (src, dst) = (
            vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
        );
        let attachment = self.target_layout;
        // Writes to the textures before this point were made visible to
        // shader reads by their own barriers; the execution dependency
        // below chains after those, so no source access is named here.
        let mut before = vec![image_barrier(self.target, attachment, dst)
            .src_access_mask(vk::AccessFlags::COLOR_ATTACHMENT_WRITE)
            .dst_access_mask(vk::AccessFlags::TRANSFER_WRITE)];
        before.extend(sources.iter().map(|t| {
            image_barrier(t.image, sampled, src)
                .src_access_mask(vk::AccessFlags::empty())
                .dst_access_mask(vk::AccessFlags::TRANSFER_READ)
        }));
        let mut after = vec![image_barrier(self.target, dst, attachment)
            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(vk::AccessFlags::COLOR_ATTACHMENT_READ | vk::AccessFlags::COLOR_ATTACHMENT_WRITE)];
        after.extend(sources.iter().map(|t| {
            image_barrier(t.image, src, sampled)
                .src_access_mask(vk::AccessFlags::empty())
                .dst_access_mask(vk::AccessFlags::SHADER_READ)
        }));
        let stage = vk::PipelineStageFlags::from_raw;
        let earlier = stage(
            vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT.as_raw()
                | vk::PipelineStageFlags::TRANSFER.as_raw()
                | vk::PipelineStageFlags::FRAGMENT_SHADER.as_raw()
                | vk::PipelineStageFlags::COMPUTE_SHADER.as_raw(),
        );
        let later = stage(
            vk::PipelineStageFlags::COLOR_ATTACHMENT_OUTPUT.as_raw() | vk::PipelineStageFlags::FRAGMENT_SHADER.as_raw(),
        );
        let transfer = vk::PipelineStageFlags::TRANSFER;
        let dev = &ctx.device;
        // SAFETY: `cmd` is recording (the caller's frame); every image lives
        // until the frame's fence (the frame keeps the textures and the target).
        unsafe {
            pipeline_barrier(dev, cmd, earlier, transfer, &before, &[]);
            for (tex, copy) in &self.copies {
                dev.cmd_copy_image(cmd, tex.image, src, self.target, dst, std::slice::from_ref(copy));
            }
            pipeline_barrier(dev, cmd, transfer, later, &after, &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x: i32, y: i32, w: u32, h: u32) -> vk::Rect2D {
        vk::Rect2D {
            offset: vk::Offset2D { x, y },
            extent: vk::Extent2D { width: w, height: h },
        }
    }

    #[test]
    fn within_checks_every_edge() {
        assert!(within((0, 0), (10, 5), (10, 5)));
        assert!(within((2, 3), (8, 2), (10, 5)));
        assert!(!within((3, 0), (8, 5), (10, 5)), "right edge");
        assert!(!within((0, 1), (10, 5), (10, 5)), "bottom edge");
        assert!(!within((-1, 0), (1, 1), (10, 5)), "left of the image");
        assert!(!within((0, -1), (1, 1), (10, 5)), "above the image");
        assert!(!within((i32::MAX, 0), (u32::MAX, 1), (u32::MAX, 5)), "no overflow");
    }

    #[test]
    fn touching_edges_do_not_overlap() {
        assert!(!overlaps(&rect(0, 0, 10, 10), &rect(10, 0, 5, 5)));
        assert!(!overlaps(&rect(0, 0, 10, 10), &rect(0, 10, 5, 5)));
        assert!(overlaps(&rect(0, 0, 10, 10), &rect(9, 9, 5, 5)));
        assert!(overlaps(&rect(2, 2, 1, 1), &rect(0, 0, 10, 10)));
    }
}
