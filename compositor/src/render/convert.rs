//! Byte-order conversion between the 8-bit RGBA-family DRM formats, for
//! read-backs requested in another format than the image's.

use smithay::backend::allocator::Fourcc;

/// Memory positions of (R, G, B, A) and whether A is real alpha.
fn layout(f: Fourcc) -> Option<([usize; 4], bool)> {
    match f {
        Fourcc::Argb8888 => Some(([2, 1, 0, 3], true)),
        Fourcc::Xrgb8888 => Some(([2, 1, 0, 3], false)),
        Fourcc::Abgr8888 => Some(([0, 1, 2, 3], true)),
        Fourcc::Xbgr8888 => Some(([0, 1, 2, 3], false)),
        _ => None,
    }
}

/// Whether [`convert`] handles this pair.
pub fn supported(from: Fourcc, to: Fourcc) -> bool {
    layout(from).is_some() && layout(to).is_some()
}

/// Converts tightly packed pixels from `from` to `to`. An X source reads as
/// opaque (alpha 255) in an A destination.
pub fn convert(bytes: &[u8], from: Fourcc, to: Fourcc) -> Option<Vec<u8>> {
    let (src, src_alpha) = layout(from)?;
    let (dst, _) = layout(to)?;
    let mut out = vec![0u8; bytes.len()];
    for (i, o) in bytes.chunks_exact(4).zip(out.chunks_exact_mut(4)) {
        for c in 0..3 {
            o[dst[c]] = i[src[c]];
        }
        o[dst[3]] = if src_alpha { i[src[3]] } else { 255 };
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xrgb_to_abgr_swaps_and_makes_opaque() {
        let out = convert(&[1, 2, 3, 9], Fourcc::Xrgb8888, Fourcc::Abgr8888).unwrap();
        assert_eq!(out, vec![3, 2, 1, 255]);
    }

    #[test]
    fn argb_to_abgr_keeps_alpha() {
        let out = convert(&[1, 2, 3, 128], Fourcc::Argb8888, Fourcc::Abgr8888).unwrap();
        assert_eq!(out, vec![3, 2, 1, 128]);
    }
}
