//! A plain RGBA8 image plus PNG load/save, enough for screenshots and references.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Tightly packed RGBA8 pixels, row-major, top row first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbaImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl RgbaImage {
    /// An image filled with one colour.
    pub fn filled(width: u32, height: u32, rgba: [u8; 4]) -> RgbaImage {
        let data = rgba
            .iter()
            .copied()
            .cycle()
            .take(width as usize * height as usize * 4)
            .collect();
        RgbaImage { width, height, data }
    }

    fn index(&self, x: u32, y: u32) -> usize {
        (y as usize * self.width as usize + x as usize) * 4
    }

    /// The pixel at `(x, y)`; panics when out of range (a caller bug).
    pub fn get(&self, x: u32, y: u32) -> [u8; 4] {
        let i = self.index(x, y);
        [self.data[i], self.data[i + 1], self.data[i + 2], self.data[i + 3]]
    }

    /// Sets the pixel at `(x, y)`.
    pub fn put(&mut self, x: u32, y: u32, rgba: [u8; 4]) {
        let i = self.index(x, y);
        self.data[i..i + 4].copy_from_slice(&rgba);
    }

    /// Loads a PNG, expanding RGB8/grey to RGBA8 so screenshots written either
    /// way compare alike. Other bit depths are rejected rather than guessed.
    pub fn load_png(path: &Path) -> Result<RgbaImage> {
        let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
        let mut decoder = png::Decoder::new(BufReader::new(file));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder
            .read_info()
            .with_context(|| format!("decode {}", path.display()))?;
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader
            .next_frame(&mut buf)
            .with_context(|| format!("decode {}", path.display()))?;
        if info.bit_depth != png::BitDepth::Eight {
            bail!("{}: unsupported bit depth {:?}", path.display(), info.bit_depth);
        }
        let src = &buf[..info.buffer_size()];
        let data = match info.color_type {
            png::ColorType::Rgba => src.to_vec(),
            png::ColorType::Rgb => src.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
            png::ColorType::Grayscale => src.iter().flat_map(|&g| [g, g, g, 255]).collect(),
            png::ColorType::GrayscaleAlpha => src.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect(),
            other => bail!("{}: unsupported colour type {other:?}", path.display()),
        };
        Ok(RgbaImage {
            width: info.width,
            height: info.height,
            data,
        })
    }

    /// Writes an RGBA8 PNG, creating parent directories.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
        let mut enc = png::Encoder::new(BufWriter::new(file), self.width, self.height);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc
            .write_header()
            .with_context(|| format!("write {}", path.display()))?;
        writer
            .write_image_data(&self.data)
            .with_context(|| format!("write {}", path.display()))?;
        writer.finish().with_context(|| format!("finish {}", path.display()))?;
        Ok(())
    }
}
