//! Copies into compositor-owned images: staged CPU uploads (shm, the CPU
//! fallback), NV12 conversions and the buffer path's GPU copies.
//!
//! DOC: when copies run
//!
//! Nothing is copied into an image when it is queued. A copy becomes a
//! [`PendingCopy`] on its texture and is recorded into the *prepare* command
//! buffer of the next frame that samples the texture (`Texture::record_prepare`),
//! so it is ordered before the draw and its staging buffer lives until that
//! frame's fence signals.
//!
//! DOC: locks
//!
//! Staging ([`StagedUpload::copy`]) only allocates a host-visible buffer and
//! copies bytes; it never waits and touches no queue, so it may run on a
//! worker thread. When the bytes are client memory it runs inside the CPU
//! access bracket with no reservation held (locking rules B2 and B6,
//! docs/locking-rules.md).

use std::sync::Arc;

use ash::vk;

use super::memory::HostBuffer;
use super::yuv::Nv12Params;
use super::{Region, VkContext, VkError};
use crate::format::FormatInfo;

/// A `vkCmdCopyBufferToImage` region: `r` of the image from `offset` in a
/// buffer whose rows are `row_length` pixels long.
pub(crate) fn buffer_image_copy(offset: u64, row_length: u32, r: Region) -> vk::BufferImageCopy {
    vk::BufferImageCopy {
        buffer_offset: offset,
        buffer_row_length: row_length,
        buffer_image_height: 0,
        image_subresource: vk::ImageSubresourceLayers {
            aspect_mask: vk::ImageAspectFlags::COLOR,
            mip_level: 0,
            base_array_layer: 0,
            layer_count: 1,
        },
        image_offset: vk::Offset3D {
            x: r.x as i32,
            y: r.y as i32,
            z: 0,
        },
        image_extent: vk::Extent3D {
            width: r.width,
            height: r.height,
            depth: 1,
        },
    }
}

/// Where a pending copy reads from.
pub(crate) enum CopySource {
    /// A staging buffer of CPU-written pixels.
    Staging(HostBuffer),
    /// The client's dma-buf imported as a buffer (buffer path).
    ClientBuffer,
    /// Both NV12 planes in a storage buffer; converted by a compute dispatch.
    Nv12(HostBuffer, Nv12Params),
}

/// A copy into a texture, recorded at its next use.
pub(crate) struct PendingCopy {
    pub src: CopySource,
    pub regions: Vec<vk::BufferImageCopy>,
}

/// Pixels copied into a staging buffer, ready to be queued on a texture of
/// the same format and size (`Texture::queue_staged`). `Send`: the copy may
/// run on a worker thread.
pub struct StagedUpload {
    /// `None`: the region was empty after clamping; nothing to upload.
    pending: Option<PendingCopy>,
}

impl std::fmt::Debug for StagedUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedUpload")
            .field("bytes", &self.len())
            .finish_non_exhaustive()
    }
}

impl StagedUpload {
    /// Copies `region` of `data` (rows of `stride` bytes, whole-image rows of a
    /// `size` image in `format`) into a fresh staging buffer.
    ///
    /// Locks: none may be a reservation when `data` is client memory (it runs
    /// inside the CPU access bracket, rules B2/B6). Allocates; never waits.
    pub fn copy(
        ctx: &Arc<VkContext>,
        format: FormatInfo,
        (width, height): (u32, u32),
        data: &[u8],
        stride: usize,
        region: Region,
    ) -> Result<StagedUpload, VkError> {
        let Some(r) = region.clamp(width, height) else {
            return Ok(StagedUpload { pending: None });
        };
        let bpp = format.bytes_per_pixel as usize;
        let row_bytes = r.width as usize * bpp;
        let last = (r.y + r.height - 1) as usize * stride + r.x as usize * bpp + row_bytes;
        if last > data.len() || stride < width as usize * bpp {
            return Err(VkError::Unsupported(format!(
                "upload of {} bytes with stride {stride} is too small",
                data.len()
            )));
        }
        let rows = r.height as usize;
        let mut staging = HostBuffer::new(ctx, row_bytes * rows, vk::BufferUsageFlags::TRANSFER_SRC)?;
        let dst = staging.bytes_mut();
        if r.x == 0 && row_bytes == stride {
            let src = r.y as usize * stride;
            dst[..row_bytes * rows].copy_from_slice(&data[src..src + row_bytes * rows]);
        } else {
            for row in 0..rows {
                let src = (r.y as usize + row) * stride + r.x as usize * bpp;
                dst[row * row_bytes..(row + 1) * row_bytes].copy_from_slice(&data[src..src + row_bytes]);
            }
        }
        Ok(StagedUpload {
            pending: Some(PendingCopy {
                src: CopySource::Staging(staging),
                regions: vec![buffer_image_copy(0, r.width, r)],
            }),
        })
    }

    /// An NV12 upload: `buffer` (with `STORAGE_BUFFER` usage) holds both
    /// planes as `params` says; the texture converts it on the GPU
    /// (`Texture::new_nv12_target`).
    pub fn nv12(buffer: HostBuffer, params: Nv12Params) -> StagedUpload {
        StagedUpload {
            pending: Some(PendingCopy {
                src: CopySource::Nv12(buffer, params),
                regions: Vec::new(),
            }),
        }
    }

    /// Bytes in the staging buffer.
    pub fn len(&self) -> usize {
        match &self.pending {
            Some(PendingCopy {
                src: CopySource::Staging(b) | CopySource::Nv12(b, _),
                ..
            }) => b.size,
            _ => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn into_pending(self) -> Option<PendingCopy> {
        self.pending
    }
}
