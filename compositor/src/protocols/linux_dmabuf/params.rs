//! `zwp_linux_buffer_params_v1`: planes in, one dma-buf `wl_buffer` out.
//!
//! DOC: checks, in the order they are made
//!
//! * `add`: `already_used` after a create; `plane_idx` past the fourth plane;
//!   `plane_set` for an index given twice; from version 5, `invalid_format`
//!   when a plane's modifier differs from the first plane's.
//! * `set_sampling_device` (version 6): `already_used` after a create;
//!   `invalid_dev_t_size` unless the array is exactly one `dev_t`. A device
//!   the compositor did not advertise is not an error (the protocol says
//!   so); what happens then is the handler's policy.
//! * `create` and `create_immed`: `already_used` for a second create;
//!   `invalid_format` for a code that is no fourcc or not advertised;
//!   `invalid_dimensions` for a width or height below 1; `incomplete` for no
//!   planes, a set without plane 0 or with a gap, or fewer planes than the
//!   format has; `out_of_bounds` when a plane's offset, offset + stride, or
//!   (plane 0) offset + stride × height overflows or passes the end of its
//!   fd. Every error is for that client only.
//!
//! Then the handler imports the buffer: accepted, `create` gets `created`
//! with a new `wl_buffer` and `create_immed`'s buffer becomes usable;
//! refused, `create` gets `failed` and `create_immed` the
//! `invalid_wl_buffer` error.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use smithay::backend::allocator::dmabuf::{Dmabuf, DmabufFlags};
use smithay::backend::allocator::{Fourcc, Modifier};
use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_buffer_params_v1::{
    self, Error, ZwpLinuxBufferParamsV1,
};
use smithay::reexports::wayland_server::{
    backend::ClientId, protocol::wl_buffer::WlBuffer, Client, DataInit, Dispatch, DisplayHandle, New, Resource,
};

use super::{LinuxDmabufHandler, LinuxDmabufState, Shared};

/// Planes a buffer may have (the protocol's and DRM's limit).
const MAX_PLANES: u32 = 4;

/// Data of a `zwp_linux_buffer_params_v1`.
#[derive(Debug)]
pub struct ParamsData {
    pub(super) shared: Arc<Shared>,
    pending: Mutex<Pending>,
}

impl ParamsData {
    pub(super) fn new(shared: Arc<Shared>) -> ParamsData {
        ParamsData {
            shared,
            pending: Mutex::new(Pending::default()),
        }
    }
}

#[derive(Debug)]
struct Plane {
    fd: OwnedFd,
    index: u32,
    offset: u32,
    stride: u32,
}

/// What the client has said so far.
#[derive(Debug, Default)]
struct Pending {
    used: bool,
    planes: Vec<Plane>,
    modifier: Option<u64>,
    sampling_device: Option<libc::dev_t>,
}

/// A protocol error to raise on the params object.
type Refusal = (Error, String);

/// A client's format code for a message: its four characters when they
/// are printable ASCII, and its value. Not `Fourcc`'s `Display`: that
/// panics on codes drm-fourcc knows but cannot print, such as
/// `DRM_FORMAT_BIG_ENDIAN` (`0x80000000`), which a client may send.
fn code_name(code: u32) -> String {
    let bytes = code.to_le_bytes();
    if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("'{}' ({code:#010x})", String::from_utf8_lossy(&bytes))
    } else {
        format!("{code:#010x}")
    }
}

/// The size of a plane's fd (its end, by `lseek`, which dma-bufs and
/// memfds both answer), or `None` when the fd cannot say.
fn fd_size(fd: &OwnedFd) -> Option<u64> {
    use rustix::fs::{seek, SeekFrom};
    let size = seek(fd.as_fd(), SeekFrom::End(0)).ok()?;
    // Leave the shared file position where a client would expect it.
    let _ = seek(fd.as_fd(), SeekFrom::Start(0));
    Some(size)
}

/// Planes a format needs at least: its planes in the importer's table; 1
/// for a format the importer does not take (refused at import anyway).
fn planes_for_format(code: u32) -> u32 {
    importer::format::format_info_raw(code).map_or(1, |f| f.planes.len() as u32)
}

/// The `incomplete` check: planes 0..n without a gap, at least as many as
/// the format has. (A modifier may add planes beyond the format's, so more
/// is not an error here.)
fn plane_set_error(mask: u32, format: u32) -> Option<Refusal> {
    if mask == 0 {
        return Some((Error::Incomplete, "no planes were added".into()));
    }
    let gap = mask & (mask + 1) != 0;
    if gap || mask.count_ones() < planes_for_format(format) {
        return Some((
            Error::Incomplete,
            format!("planes {mask:#b} do not cover format {format:#x}"),
        ));
    }
    None
}

/// The `out_of_bounds` check for one plane, given its fd's size (`None`:
/// unknown, only overflow is checked).
fn plane_bounds_error(plane: &Plane, height: u32, size: Option<u64>) -> Option<Refusal> {
    let (offset, stride) = (u64::from(plane.offset), u64::from(plane.stride));
    let end = u64::from(plane.stride)
        .checked_mul(u64::from(height))
        .and_then(|b| b.checked_add(offset))
        .filter(|&e| e <= u64::from(u32::MAX));
    let Some(end) = end else {
        return Some((Error::OutOfBounds, format!("plane {}: size overflows", plane.index)));
    };
    let size = size?;
    if offset > size {
        return Some((
            Error::OutOfBounds,
            format!("plane {}: offset {offset} past the end ({size})", plane.index),
        ));
    }
    if offset + stride > size {
        return Some((
            Error::OutOfBounds,
            format!(
                "plane {}: offset + stride {} past the end ({size})",
                plane.index,
                offset + stride
            ),
        ));
    }
    // Other planes may be subsampled: only plane 0's full extent is known.
    if plane.index == 0 && end > size {
        return Some((
            Error::OutOfBounds,
            format!("plane 0: stride {stride} × height {height} past the end ({size})"),
        ));
    }
    None
}

impl Pending {
    /// Everything `create`/`create_immed` checks before the import, and the
    /// dma-buf it builds (taking the planes).
    fn build(
        &mut self,
        shared: &Shared,
        width: i32,
        height: i32,
        code: u32,
        flags: u32,
    ) -> Result<(Dmabuf, Option<libc::dev_t>), Refusal> {
        if std::mem::replace(&mut self.used, true) {
            return Err((Error::AlreadyUsed, "these params already created a buffer".into()));
        }
        let fourcc = Fourcc::try_from(code).map_err(|_| {
            (
                Error::InvalidFormat,
                format!("format {} is not a fourcc", code_name(code)),
            )
        })?;
        if !shared.formats.iter().any(|f| f.code == fourcc) {
            return Err((
                Error::InvalidFormat,
                format!("format {} is not advertised", code_name(code)),
            ));
        }
        if width < 1 || height < 1 {
            return Err((Error::InvalidDimensions, format!("invalid dimensions {width}x{height}")));
        }
        let mask = self.planes.iter().fold(0u32, |m, p| m | 1 << p.index);
        if let Some(refusal) = plane_set_error(mask, code) {
            return Err(refusal);
        }
        for plane in &self.planes {
            if let Some(refusal) = plane_bounds_error(plane, height as u32, fd_size(&plane.fd)) {
                return Err(refusal);
            }
        }
        let modifier = Modifier::from(self.modifier.unwrap_or(u64::from(Modifier::Invalid)));
        let mut builder = Dmabuf::builder(
            (width, height),
            fourcc,
            modifier,
            DmabufFlags::from_bits_truncate(flags),
        );
        self.planes.sort_by_key(|p| p.index);
        for plane in self.planes.drain(..) {
            builder.add_plane(plane.fd, plane.index, plane.offset, plane.stride);
        }
        let dmabuf = builder
            .build()
            .ok_or_else(|| (Error::Incomplete, "no planes were added".to_owned()))?;
        Ok((dmabuf, self.sampling_device))
    }

    fn add(&mut self, plane: Plane, modifier: u64, version: u32) -> Result<(), Refusal> {
        if self.used {
            return Err((Error::AlreadyUsed, "these params already created a buffer".into()));
        }
        if plane.index >= MAX_PLANES {
            return Err((Error::PlaneIdx, format!("plane index {} out of range", plane.index)));
        }
        if self.planes.iter().any(|p| p.index == plane.index) {
            return Err((Error::PlaneSet, format!("plane {} already set", plane.index)));
        }
        match self.modifier {
            Some(first) if version >= 5 && first != modifier => {
                return Err((
                    Error::InvalidFormat,
                    format!("plane {} modifier {modifier:#x} differs from {first:#x}", plane.index),
                ));
            }
            Some(_) => {}
            None => self.modifier = Some(modifier),
        }
        self.planes.push(plane);
        Ok(())
    }

    fn set_sampling_device(&mut self, device: &[u8]) -> Result<(), Refusal> {
        if self.used {
            return Err((Error::AlreadyUsed, "these params already created a buffer".into()));
        }
        let bytes: [u8; std::mem::size_of::<libc::dev_t>()] = device.try_into().map_err(|_| {
            (
                Error::InvalidDevTSize,
                format!(
                    "device array of {} bytes, a dev_t has {}",
                    device.len(),
                    std::mem::size_of::<libc::dev_t>()
                ),
            )
        })?;
        self.sampling_device = Some(libc::dev_t::from_ne_bytes(bytes));
        Ok(())
    }
}

impl<D> Dispatch<ZwpLinuxBufferParamsV1, ParamsData, D> for LinuxDmabufState
where
    D: Dispatch<ZwpLinuxBufferParamsV1, ParamsData> + Dispatch<WlBuffer, Dmabuf> + LinuxDmabufHandler,
{
    fn request(
        state: &mut D,
        client: &Client,
        params: &ZwpLinuxBufferParamsV1,
        request: zwp_linux_buffer_params_v1::Request,
        data: &ParamsData,
        dh: &DisplayHandle,
        init: &mut DataInit<'_, D>,
    ) {
        use zwp_linux_buffer_params_v1::Request;
        let mut pending = data.pending.lock().unwrap();
        let outcome = match request {
            Request::Destroy => Ok(()),
            Request::Add {
                fd,
                plane_idx,
                offset,
                stride,
                modifier_hi,
                modifier_lo,
            } => {
                let plane = Plane {
                    fd,
                    index: plane_idx,
                    offset,
                    stride,
                };
                pending.add(
                    plane,
                    u64::from(modifier_hi) << 32 | u64::from(modifier_lo),
                    params.version(),
                )
            }
            Request::SetSamplingDevice { device } => pending.set_sampling_device(&device),
            Request::Create {
                width,
                height,
                format,
                flags,
            } => create_either(
                state,
                dh,
                client,
                params,
                data,
                pending,
                None,
                (width, height, format, flags.into()),
                init,
            ),
            Request::CreateImmed {
                buffer_id,
                width,
                height,
                format,
                flags,
            } => create_either(
                state,
                dh,
                client,
                params,
                data,
                pending,
                Some(buffer_id),
                (width, height, format, flags.into()),
                init,
            ),
            _ => Ok(()),
        };
        if let Err((error, message)) = outcome {
            params.post_error(error, message);
        }
    }

    fn destroyed(state: &mut D, client: ClientId, _params: &ZwpLinuxBufferParamsV1, _data: &ParamsData) {
        state.params_destroyed(&client);
    }
}

/// `create` (`buffer_id` `None`) or `create_immed`: the checks, then the
/// import with the lock on the pending state released.
#[allow(clippy::too_many_arguments)]
fn create_either<D>(
    state: &mut D,
    dh: &DisplayHandle,
    client: &Client,
    params: &ZwpLinuxBufferParamsV1,
    data: &ParamsData,
    mut pending: std::sync::MutexGuard<'_, Pending>,
    buffer_id: Option<New<WlBuffer>>,
    (width, height, format, flags): (i32, i32, u32, u32),
    init: &mut DataInit<'_, D>,
) -> Result<(), Refusal>
where
    D: Dispatch<WlBuffer, Dmabuf> + LinuxDmabufHandler,
{
    let (dmabuf, device) = pending.build(&data.shared, width, height, format, flags)?;
    drop(pending);
    match buffer_id {
        None => create(state, dh, client, params, dmabuf, device),
        Some(id) => create_immed(state, dh, client, params, id, dmabuf, device, init),
    }
    Ok(())
}

/// `create`: `created` with a new wl_buffer, or `failed`.
fn create<D>(
    state: &mut D,
    dh: &DisplayHandle,
    client: &Client,
    params: &ZwpLinuxBufferParamsV1,
    dmabuf: Dmabuf,
    device: Option<libc::dev_t>,
) where
    D: Dispatch<WlBuffer, Dmabuf> + LinuxDmabufHandler,
{
    let Some(accepted) = state.import_dmabuf(dh, client, &dmabuf, device) else {
        params.failed();
        return;
    };
    // Err: the client is gone; its buffer would never be used.
    match client.create_resource::<WlBuffer, Dmabuf, D>(dh, 1, dmabuf.clone()) {
        Ok(buffer) => {
            params.created(&buffer);
            state.buffer_created(&buffer, accepted);
        }
        Err(_) => state.buffer_not_created(&dmabuf),
    }
}

/// `create_immed`: the buffer exists already; a refused import is the
/// `invalid_wl_buffer` error.
#[allow(clippy::too_many_arguments)]
fn create_immed<D>(
    state: &mut D,
    dh: &DisplayHandle,
    client: &Client,
    params: &ZwpLinuxBufferParamsV1,
    buffer_id: New<WlBuffer>,
    dmabuf: Dmabuf,
    device: Option<libc::dev_t>,
    init: &mut DataInit<'_, D>,
) where
    D: Dispatch<WlBuffer, Dmabuf> + LinuxDmabufHandler,
{
    let accepted = state.import_dmabuf(dh, client, &dmabuf, device);
    let buffer = init.init(buffer_id, dmabuf);
    match accepted {
        Some(accepted) => state.buffer_created(&buffer, accepted),
        None => params.post_error(Error::InvalidWlBuffer, "the dma-buf could not be imported"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XR24: u32 = 0x3432_5258;

    fn memfd(len: u64) -> OwnedFd {
        let fd = rustix::fs::memfd_create("plane", rustix::fs::MemfdFlags::CLOEXEC).expect("memfd");
        rustix::fs::ftruncate(&fd, len).expect("size");
        fd
    }

    fn plane(index: u32, offset: u32, stride: u32) -> Plane {
        Plane {
            fd: memfd(4096),
            index,
            offset,
            stride,
        }
    }

    #[test]
    fn plane_sets_with_gaps_or_too_few_planes_are_incomplete() {
        assert!(plane_set_error(0, XR24).is_some());
        assert!(plane_set_error(0b10, XR24).is_some(), "plane 1 without plane 0");
        assert!(plane_set_error(0b1, XR24).is_none());
        let nv12 = drm_fourcc::DrmFourcc::Nv12 as u32;
        assert!(plane_set_error(0b1, nv12).is_some());
        assert!(plane_set_error(0b11, nv12).is_none());
        let yuv420 = drm_fourcc::DrmFourcc::Yuv420 as u32;
        assert!(plane_set_error(0b101, yuv420).is_some(), "a gap");
        assert!(plane_set_error(0b111, yuv420).is_none());
    }

    #[test]
    fn format_codes_are_named_without_drm_fourcc_display() {
        assert_eq!(code_name(XR24), "'XR24' (0x34325258)");
        assert_eq!(code_name(u32::from_le_bytes(*b"C8  ")), "'C8  ' (0x20203843)");
        // DRM_FORMAT_BIG_ENDIAN: a code drm-fourcc knows, whose Display panics.
        let big_endian = drm_fourcc::DrmFourcc::Big_endian as u32;
        assert_eq!(code_name(big_endian), "0x80000000");
        assert_eq!(code_name(XR24 | big_endian), "0xb4325258");
    }

    #[test]
    fn bounds_cover_offset_stride_height_and_overflow() {
        let p = plane(0, 0, 64);
        assert!(plane_bounds_error(&p, 64, Some(4096)).is_none());
        assert!(plane_bounds_error(&p, 65, Some(4096)).is_some(), "one row past the end");
        assert!(
            plane_bounds_error(&plane(0, 4097, 1), 1, Some(4096)).is_some(),
            "offset past the end"
        );
        assert!(
            plane_bounds_error(&plane(0, 4000, 128), 1, Some(4096)).is_some(),
            "stride past the end"
        );
        assert!(
            plane_bounds_error(&plane(0, u32::MAX, u32::MAX), 2, None).is_some(),
            "overflow"
        );
        // A chroma plane is not checked against the full height.
        assert!(plane_bounds_error(&plane(1, 0, 64), 65, Some(4096)).is_none());
    }

    #[test]
    fn a_sampling_device_must_be_one_dev_t() {
        let mut pending = Pending::default();
        let short = pending.set_sampling_device(&[0; 4]).unwrap_err();
        assert_eq!(short.0, Error::InvalidDevTSize);
        let long = pending.set_sampling_device(&[0; 16]).unwrap_err();
        assert_eq!(long.0, Error::InvalidDevTSize);
        let dev = libc::makedev(226, 128);
        pending.set_sampling_device(&dev.to_ne_bytes()).expect("one dev_t");
        assert_eq!(pending.sampling_device, Some(dev));
    }

    #[test]
    fn modifiers_must_match_from_version_5() {
        let mut pending = Pending::default();
        pending.add(plane(0, 0, 64), 0, 5).expect("first plane");
        let err = pending.add(plane(1, 0, 64), 1, 5).unwrap_err();
        assert_eq!(err.0, Error::InvalidFormat);
        let mut old = Pending::default();
        old.add(plane(0, 0, 64), 0, 4).expect("first plane");
        old.add(plane(1, 0, 64), 1, 4).expect("version 4 does not check");
    }

    #[test]
    fn a_plane_index_is_set_once_and_below_four() {
        let mut pending = Pending::default();
        assert_eq!(pending.add(plane(4, 0, 64), 0, 6).unwrap_err().0, Error::PlaneIdx);
        pending.add(plane(0, 0, 64), 0, 6).expect("plane 0");
        assert_eq!(pending.add(plane(0, 0, 64), 0, 6).unwrap_err().0, Error::PlaneSet);
    }
}
