//! Screenshot-vs-reference comparison with a per-channel tolerance.
//!
//! The default tolerance is [`DEFAULT_TOLERANCE`] = 2/255 per channel: enough for
//! GPU rounding of premultiplied blending (the reference model rounds once per
//! layer, a GPU may round differently) while any real format, swizzle, stride or
//! placement bug produces differences far larger than 2.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::image::RgbaImage;

/// Default per-channel tolerance, in 1/255 units.
pub const DEFAULT_TOLERANCE: u8 = 2;

/// A pixel that differs by more than the tolerance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadPixel {
    pub x: u32,
    pub y: u32,
    pub actual: [u8; 4],
    pub expected: [u8; 4],
}

/// Outcome of a comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// The images have different dimensions: `(actual, expected)`.
    SizeMismatch { actual: (u32, u32), expected: (u32, u32) },
    /// Same size; `bad_pixels == 0` means they match.
    Compared {
        max_diff: u8,
        bad_pixels: usize,
        first_bad: Option<BadPixel>,
    },
}

impl Comparison {
    /// Whether the images match within the tolerance used.
    pub fn passed(&self) -> bool {
        matches!(self, Comparison::Compared { bad_pixels: 0, .. })
    }
}

/// Compares two images channel by channel (alpha included).
pub fn compare(actual: &RgbaImage, expected: &RgbaImage, tolerance: u8) -> Comparison {
    if (actual.width, actual.height) != (expected.width, expected.height) {
        return Comparison::SizeMismatch {
            actual: (actual.width, actual.height),
            expected: (expected.width, expected.height),
        };
    }
    let mut max_diff = 0;
    let mut bad_pixels = 0;
    let mut first_bad = None;
    for y in 0..actual.height {
        for x in 0..actual.width {
            let (a, e) = (actual.get(x, y), expected.get(x, y));
            let d = pixel_diff(a, e);
            max_diff = max_diff.max(d);
            if d > tolerance {
                bad_pixels += 1;
                first_bad.get_or_insert(BadPixel {
                    x,
                    y,
                    actual: a,
                    expected: e,
                });
            }
        }
    }
    Comparison::Compared {
        max_diff,
        bad_pixels,
        first_bad,
    }
}

fn pixel_diff(a: [u8; 4], b: [u8; 4]) -> u8 {
    (0..4).map(|c| a[c].abs_diff(b[c])).max().unwrap_or(0)
}

/// A visual diff: red where beyond tolerance, otherwise the difference
/// amplified 32x in grey, so small rounding noise is still visible.
pub fn diff_image(actual: &RgbaImage, expected: &RgbaImage, tolerance: u8) -> RgbaImage {
    let (w, h) = (actual.width.min(expected.width), actual.height.min(expected.height));
    let mut out = RgbaImage::filled(w, h, [0, 0, 0, 255]);
    for y in 0..h {
        for x in 0..w {
            let d = pixel_diff(actual.get(x, y), expected.get(x, y));
            let px = if d > tolerance {
                [255, 0, 0, 255]
            } else {
                let g = d.saturating_mul(32);
                [g, g, g, 255]
            };
            out.put(x, y, px);
        }
    }
    out
}

/// Where mismatch artifacts go: `$TEST_ARTIFACTS_DIR`, else
/// `<workspace>/target/test-artifacts`.
pub fn artifacts_dir() -> PathBuf {
    match std::env::var_os("TEST_ARTIFACTS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => crate::workspace_root().join("target/test-artifacts"),
    }
}

/// Compares `actual` with the PNG at `reference`; on mismatch writes
/// `<artifacts>/<name>.actual.png` and `<name>.diff.png` and returns an error
/// describing the first bad pixel.
pub fn check_against_reference(name: &str, actual: &RgbaImage, reference: &Path, tolerance: u8) -> Result<()> {
    check_against_reference_in(&artifacts_dir(), name, actual, reference, tolerance)
}

/// [`check_against_reference`] with an explicit artifacts directory.
pub fn check_against_reference_in(
    dir: &Path,
    name: &str,
    actual: &RgbaImage,
    reference: &Path,
    tolerance: u8,
) -> Result<()> {
    let expected = RgbaImage::load_png(reference)?;
    let result = compare(actual, &expected, tolerance);
    let actual_path = dir.join(format!("{name}.actual.png"));
    let diff_path = dir.join(format!("{name}.diff.png"));
    if result.passed() {
        // Drop artifacts of an earlier failure so they cannot be mistaken
        // for this run's output.
        let _ = std::fs::remove_file(&actual_path);
        let _ = std::fs::remove_file(&diff_path);
        return Ok(());
    }
    actual.save_png(&actual_path)?;
    diff_image(actual, &expected, tolerance).save_png(&diff_path)?;
    bail!(
        "{name}: screenshot differs from {} (tolerance {tolerance}): {result:?}; wrote {} and {}",
        reference.display(),
        actual_path.display(),
        diff_path.display()
    )
}

/// Checks that the pixel `inside` pixels into the `window`-th toplevel (the
/// compositor's placement policy, [`crate::scenes::toplevel_position`]) is
/// `color` within [`DEFAULT_TOLERANCE`] per channel.
pub fn check_window_pixel(image: &RgbaImage, window: usize, inside: u32, color: [u8; 4]) -> anyhow::Result<()> {
    let (x, y) = crate::scenes::toplevel_position(window);
    let px = image.get(x as u32 + inside, y as u32 + inside);
    anyhow::ensure!(
        px.iter().zip(color).all(|(a, b)| a.abs_diff(b) <= DEFAULT_TOLERANCE),
        "window {window} pixel {px:?}, expected {color:?}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RgbaImage {
        let mut img = RgbaImage::filled(8, 6, [32, 32, 32, 255]);
        img.put(3, 2, [200, 10, 50, 255]);
        img
    }

    #[test]
    fn identical_images_pass() {
        let r = compare(&base(), &base(), DEFAULT_TOLERANCE);
        assert_eq!(
            r,
            Comparison::Compared {
                max_diff: 0,
                bad_pixels: 0,
                first_bad: None
            }
        );
        assert!(r.passed());
    }

    #[test]
    fn one_pixel_beyond_tolerance_fails() {
        let mut a = base();
        a.put(5, 4, [32, 32 + DEFAULT_TOLERANCE + 1, 32, 255]);
        let r = compare(&a, &base(), DEFAULT_TOLERANCE);
        assert!(!r.passed());
        let Comparison::Compared {
            max_diff,
            bad_pixels,
            first_bad,
        } = r
        else {
            panic!("unexpected {r:?}")
        };
        assert_eq!((max_diff, bad_pixels), (DEFAULT_TOLERANCE + 1, 1));
        let bad = first_bad.expect("first bad pixel");
        assert_eq!((bad.x, bad.y), (5, 4));
        let diff = diff_image(&a, &base(), DEFAULT_TOLERANCE);
        assert_eq!(diff.get(5, 4), [255, 0, 0, 255]);
        assert_eq!(diff.get(0, 0), [0, 0, 0, 255]);
    }

    #[test]
    fn one_pixel_within_tolerance_passes() {
        let mut a = base();
        a.put(5, 4, [32 - DEFAULT_TOLERANCE, 32, 32 + DEFAULT_TOLERANCE, 255]);
        let r = compare(&a, &base(), DEFAULT_TOLERANCE);
        assert!(r.passed(), "{r:?}");
    }

    #[test]
    fn size_mismatch_fails() {
        let r = compare(&RgbaImage::filled(8, 5, [0; 4]), &base(), DEFAULT_TOLERANCE);
        assert_eq!(
            r,
            Comparison::SizeMismatch {
                actual: (8, 5),
                expected: (8, 6)
            }
        );
        assert!(!r.passed());
    }

    #[test]
    fn png_round_trip_and_artifacts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.png");
        base().save_png(&path).expect("save");
        assert_eq!(RgbaImage::load_png(&path).expect("load"), base());
        check_against_reference("same", &base(), &path, DEFAULT_TOLERANCE).expect("identical passes");

        let mut a = base();
        a.put(0, 0, [255, 255, 255, 255]);
        let artifacts = dir.path().join("artifacts");
        let err = check_against_reference_in(&artifacts, "changed", &a, &path, DEFAULT_TOLERANCE);
        assert!(err.is_err());
        assert!(dir.path().join("artifacts/changed.actual.png").exists());
        assert!(dir.path().join("artifacts/changed.diff.png").exists());
        // A later passing run removes the stale artifacts.
        check_against_reference_in(&artifacts, "changed", &base(), &path, DEFAULT_TOLERANCE).expect("identical passes");
        assert!(!dir.path().join("artifacts/changed.actual.png").exists());
    }
}
