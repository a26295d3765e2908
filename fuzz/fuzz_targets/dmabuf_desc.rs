//! The dma-buf description validator (`importer::dmabuf`): any size,
//! format, modifier, plane count, offsets, strides and fd sizes. A
//! description it accepts is checked again here with independent u128
//! arithmetic: every plane's rows lie within its fd and its stride covers
//! its row of samples.
#![no_main]

use std::os::fd::AsFd;

use compositor_fuzz::session::Input;
use importer::dmabuf::{fd_size, DmabufDesc, DmabufPlane};

fn fourcc(input: &mut Input<'_>) -> Option<drm_fourcc::DrmFourcc> {
    use drm_fourcc::DrmFourcc::*;
    let known = [Xrgb8888, Argb8888, Xbgr8888, Abgr8888, Nv12, Rgb565, Yuv420, P010];
    match input.u8() as usize {
        i if i < 240 => Some(known[i % known.len()]),
        _ => drm_fourcc::DrmFourcc::try_from(input.u32()).ok(),
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let Some(fourcc) = fourcc(&mut input) else { return };
    let width = match input.u8() % 4 {
        0 => input.u32(),
        _ => u32::from(input.u16()),
    };
    let height = match input.u8() % 4 {
        0 => input.u32(),
        _ => u32::from(input.u16()),
    };
    let modifier = match input.u8() % 4 {
        0 => drm_fourcc::DrmModifier::from(u64::from(input.u32()) << 32 | u64::from(input.u32())),
        _ => drm_fourcc::DrmModifier::Linear,
    };
    let planes = (0..1 + input.u8() % 4)
        .map(|_| {
            let kind = input.u8();
            let size = match kind % 3 {
                0 => u64::from(input.u32()),
                _ => u64::from(input.u16()) * 64,
            };
            let fd = rustix::fs::memfd_create(
                "fuzz-desc",
                rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
            )
            .expect("memfd_create");
            rustix::fs::ftruncate(&fd, size.min(1 << 32)).expect("ftruncate");
            if kind % 4 != 0 {
                rustix::fs::fcntl_add_seals(&fd, rustix::fs::SealFlags::SHRINK).expect("seal");
            }
            let offset = match input.u8() % 3 {
                0 => input.u32(),
                _ => u32::from(input.u16()),
            };
            let stride = match input.u8() % 3 {
                0 => input.u32(),
                _ => u32::from(input.u16()),
            };
            DmabufPlane { fd, offset, stride }
        })
        .collect();
    let desc = DmabufDesc {
        width,
        height,
        fourcc,
        modifier,
        flags: u32::from(input.u8()),
        planes,
    };
    let Ok(info) = desc.validate() else { return };
    assert!(desc.width > 0 && desc.height > 0);
    assert_eq!(desc.planes.len(), info.planes.len());
    for (plane, layout) in desc.planes.iter().zip(info.planes) {
        let size = u128::from(fd_size(plane.fd.as_fd()).expect("fd size"));
        let w = u128::from(desc.width.div_ceil(layout.hsub));
        let h = u128::from(desc.height.div_ceil(layout.vsub));
        let row = w * u128::from(layout.bytes_per_sample);
        assert!(u128::from(plane.stride) >= row, "stride {} < row {row}", plane.stride);
        let end = u128::from(plane.offset) + u128::from(plane.stride) * (h - 1) + row;
        assert!(end <= size, "plane ends at {end} past its fd's {size} bytes");
    }
});
