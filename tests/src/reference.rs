//! Independent CPU model of the compositor's output for a [`Scene`].
//!
//! It implements the documented conventions directly (placement of the n-th
//! toplevel, subsurface offsets, X-alpha = 1, premultiplied "over" onto an
//! opaque background, clipping to the output) without sharing any code with the
//! compositor, which is what makes a screenshot comparison meaningful.

use crate::image::RgbaImage;
use crate::pixel::blend_over;
use crate::scenes::{toplevel_position, Scene, SurfaceSpec, BACKGROUND};

/// Renders `scene`'s final state at `size`.
pub fn render(scene: &Scene, size: (u32, u32)) -> RgbaImage {
    let mut out = RgbaImage::filled(size.0, size.1, BACKGROUND);
    for (n, window) in scene.windows.iter().enumerate() {
        let origin = toplevel_position(n);
        draw(&mut out, window.final_surface(), origin);
        for sub in &window.subsurfaces {
            draw(
                &mut out,
                &sub.surface,
                (origin.0 + sub.offset.0, origin.1 + sub.offset.1),
            );
        }
    }
    out
}

/// Blends one surface at `origin`, one 8-bit rounding per layer like a UNORM
/// framebuffer.
fn draw(out: &mut RgbaImage, s: &SurfaceSpec, origin: (i32, i32)) {
    for sy in 0..s.height {
        for sx in 0..s.width {
            let (x, y) = (origin.0 + sx as i32, origin.1 + sy as i32);
            if x < 0 || y < 0 || x >= out.width as i32 || y >= out.height as i32 {
                continue;
            }
            let (x, y) = (x as u32, y as u32);
            out.put(x, y, blend_over(s.texel(sx, sy), out.get(x, y)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenes::{by_name, OUTPUT_SIZE};

    #[test]
    fn solid_scene_places_window_at_32_32() {
        let img = render(&by_name("solid").expect("solid"), OUTPUT_SIZE);
        assert_eq!(img.get(31, 31), BACKGROUND);
        assert_eq!(img.get(32, 32), [200, 40, 60, 255]);
        assert_eq!(img.get(32 + 159, 32 + 119), [200, 40, 60, 255]);
        assert_eq!(img.get(32 + 160, 32), BACKGROUND);
    }

    #[test]
    fn x_padding_byte_is_ignored_and_alpha_blends() {
        let img = render(&by_name("overlap").expect("overlap"), OUTPUT_SIZE);
        // XBGR checker with padding byte 0 must still be opaque.
        assert_eq!(img.get(32, 32), [220, 220, 40, 255]);
        let alpha = render(&by_name("alpha").expect("alpha"), OUTPUT_SIZE);
        // Transparent top rows of the front window show the back window.
        assert_eq!(alpha.get(100, 97), [30, 90, 200, 255]);
        // Output is opaque everywhere.
        assert!(alpha.data.chunks_exact(4).all(|p| p[3] == 255));
    }

    #[test]
    fn replace_shows_second_buffer_and_subsurface_sticks_out() {
        let img = render(&by_name("replace").expect("replace"), OUTPUT_SIZE);
        assert_eq!(img.get(32, 32), [230, 30, 30, 255]);
        let sub = render(&by_name("subsurface").expect("subsurface"), OUTPUT_SIZE);
        // Child at parent (32,32) + (80,50), past the parent's 120 px width.
        assert_eq!(sub.get(32 + 80 + 79, 32 + 50 + 10), [200, 120, 20, 255]);
    }
}
