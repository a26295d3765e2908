//! Frames written on the host: on a CPU device (lavapipe on CI) a frame
//! that only copies client rectangles 1:1 into the output is written by the
//! calling thread, not submitted (`importer/src/vulkan/host_frame.rs`).
//! Memfds stand in for dma-bufs, as in `vulkan_import.rs`.

mod support;

use std::os::fd::OwnedFd;

use ash::vk;
use drm_fourcc::{DrmFourcc, DrmModifier};
use importer::renderer::{CoreOptions, RenderCore};
use importer::vulkan::pipeline::{Filter, QuadPush};
use importer::vulkan::recorder::{Drawable, Quad};
use importer::vulkan::target::Target;
use importer::vulkan::ycbcr::Representation;
use importer::vulkan::{DeviceSelection, Region};
use importer::{DmabufDesc, DmabufPlane, ImportPath, Importer};

const W: u32 = 64;
const H: u32 = 48;
const BASE: [u8; 4] = [40, 50, 60, 0];

/// A sealed memfd of `stride * H` bytes, every pixel `BASE`; and a second
/// fd of the same file to write it through.
fn memfd_buffer(stride: u32) -> (OwnedFd, OwnedFd) {
    let mut bytes = vec![0u8; (stride * H) as usize];
    for y in 0..H {
        for x in 0..W {
            let at = (y * stride + x * 4) as usize;
            bytes[at..at + 4].copy_from_slice(&BASE);
        }
    }
    let fd = support::memfd_holding("host-frame", &bytes, true);
    let writer = fd.try_clone().unwrap();
    (fd, writer)
}

/// Paints `r` with `pixel` through `fd`, as a client drawing its next frame.
fn paint(fd: &OwnedFd, stride: u32, r: Region, pixel: [u8; 4]) {
    let row: Vec<u8> = pixel.iter().copied().cycle().take(r.width as usize * 4).collect();
    for y in r.y..r.y + r.height {
        let at = u64::from(y * stride + r.x * 4);
        rustix::io::pwrite(fd, &row, at).unwrap();
    }
}

fn rect(w: u32, h: u32) -> vk::Rect2D {
    vk::Rect2D {
        offset: vk::Offset2D { x: 0, y: 0 },
        extent: vk::Extent2D { width: w, height: h },
    }
}

/// One frame showing `what` 1:1 and opaque over the whole target (the
/// copy pass takes it), after clearing the target first when `clear`.
fn frame(core: &RenderCore, target: &Target, what: &Drawable, clear: bool) {
    let all = [rect(W, H)];
    let mut frame = core.begin_frame(target, Filter::Nearest).unwrap();
    if clear {
        frame.clear([0.0, 0.0, 0.0, 1.0], &all);
    }
    let quad = Quad {
        push: QuadPush::textured(
            QuadPush::rect_corners(0.0, 0.0, W as f32, H as f32),
            [W as f32, H as f32],
            [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
            1.0,
        ),
        opaque: &all,
        blended: &[],
        pixel_exact: true,
        texel_offset: Some(vk::Offset2D { x: 0, y: 0 }),
        representation: Representation::default(),
    };
    frame.draw(Some(what), &quad);
    core.submit_frame(frame).unwrap().wait().unwrap();
}

/// Checks B, G and R of every pixel of `bytes` (W×H, 4 bytes each):
/// `BASE`, or the colour of the last painted region holding it.
fn assert_painted(bytes: &[u8], painted: &[(Region, [u8; 4])], what: &str) {
    for y in 0..H {
        for x in 0..W {
            let inside = |r: &Region| x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height;
            let want = painted.iter().rev().find(|(r, _)| inside(r)).map_or(BASE, |(_, p)| *p);
            let at = ((y * W + x) * 4) as usize;
            assert_eq!(bytes[at..at + 3], want[..3], "{what}: pixel ({x},{y})");
        }
    }
}

/// Both GPU import paths of a LINEAR buffer: a zero-copy image (a stride
/// lavapipe takes) and the buffer path (one it does not).
#[test]
fn copy_only_frames_are_written_on_the_host_and_keep_textures_current() {
    importer::lockdep::fail_at_exit_on_violations();
    let fmt = importer::format::format_info(DrmFourcc::Xrgb8888).unwrap();
    for (stride, path) in [
        (W * 4, ImportPath::ZeroCopyImage),
        (W * 4 + 16, ImportPath::GpuBufferCopy),
    ] {
        // Lavapipe, the CPU device, also where a GPU is present.
        let options = CoreOptions {
            device: DeviceSelection::Named("llvmpipe".into()),
            ..Default::default()
        };
        let mut core = RenderCore::new(options).expect("lavapipe (run scripts/setup-host.sh)");
        let device = &core.ctx.caps;
        assert_eq!(
            device.device_type,
            vk::PhysicalDeviceType::CPU,
            "host frames are for CPU devices; this is {}",
            device.name
        );
        let (fd, writer) = memfd_buffer(stride);
        let desc = DmabufDesc {
            width: W,
            height: H,
            fourcc: DrmFourcc::Xrgb8888,
            modifier: DrmModifier::Linear,
            flags: 0,
            planes: vec![DmabufPlane { fd, offset: 0, stride }],
        };
        let buf = core.importer_mut().import(&desc).unwrap();
        assert_eq!(Importer::path_of(&buf), path);
        let what = Drawable::Client(buf.clone());
        let target = core.create_target(fmt, W, H).unwrap();

        // The target's first frame defines its layout: submitted.
        frame(&core, &target, &what, false);
        assert_eq!(core.draw_stats().host_frames, 0, "{path:?}: first frame");

        // Two commits, each damaging one rectangle: both frames only copy.
        let painted = [
            (
                Region {
                    x: 4,
                    y: 6,
                    width: 10,
                    height: 5,
                },
                [1, 2, 3, 0],
            ),
            (
                Region {
                    x: 8,
                    y: 9,
                    width: 30,
                    height: 20,
                },
                [9, 8, 7, 0],
            ),
        ];
        for (i, &(r, pixel)) in painted.iter().enumerate() {
            paint(&writer, stride, r, pixel);
            buf.refresh(Some(&[r])).unwrap();
            frame(&core, &target, &what, false);
            assert_eq!(core.draw_stats().host_frames, i as u64 + 1, "{path:?}: commit {i}");
        }
        let shown = core.read_target(&target, Region::full(W, H)).unwrap();
        assert_painted(shown.wait_bytes().unwrap(), &painted, &format!("{path:?} output"));
        // The texture itself caught up with both commits: a buffer-path
        // texture's copies, left queued by the frames written on the host,
        // are merged and recorded with its next use on the device.
        let texture = core.read_texture(&what, Region::full(W, H)).unwrap();
        assert_painted(texture.wait_bytes().unwrap(), &painted, &format!("{path:?} texture"));

        // A frame with a render pass (a clear) is submitted.
        frame(&core, &target, &what, true);
        assert_eq!(core.draw_stats().host_frames, 2, "{path:?}: frame with a clear");
        let shown = core.read_target(&target, Region::full(W, H)).unwrap();
        assert_painted(
            shown.wait_bytes().unwrap(),
            &painted,
            &format!("{path:?} after a clear"),
        );
    }
    assert_eq!(importer::lockdep::unexpected_violations(), 0);
}
