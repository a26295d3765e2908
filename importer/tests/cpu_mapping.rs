//! CPU mapping of client buffers (memfds stand in for dma-bufs on this host).

mod support;

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use importer::cpu::{
    copy_plane_rect, copy_plane_rows, map_planes, with_cpu_access, AlreadyWaited, CpuError, CpuMapping, FdKind,
    PlaneSource, PollReadable,
};
use importer::lockdep;
use importer::reservation::{Invalidate, Reservation};
use importer::sync::{dma_buf_sync, SyncDir, SyncOutcome};

type Resv = Reservation<(), CpuMapping>;
const POLL: PollReadable = PollReadable {
    timeout: std::time::Duration::from_secs(1),
};

fn memfd(bytes: &[u8], seal: bool) -> OwnedFd {
    support::memfd_holding("cpu-test", bytes, seal)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Asserts that `err` is a copy refused for running out of `what`.
fn assert_bounds(err: &CpuError, what: &str, case: &str) {
    assert!(
        matches!(err, CpuError::CopyBounds { what: w, .. } if *w == what),
        "{case}: expected a copy out of bounds of the {what}, got: {err}"
    );
}

fn done() {
    // Final check at exit too: violations that did not fail their own test.
    lockdep::fail_at_exit_on_violations();
    assert_eq!(lockdep::unexpected_violations(), 0);
}

#[test]
fn unsealed_memfd_is_refused() {
    let fd = memfd(&pattern(8192), false);
    let plane = PlaneSource {
        fd: fd.as_fd(),
        offset: 0,
        stride: 64,
        row_bytes: 64,
        rows: 4,
    };
    let r = Resv::new();
    let err = map_planes(&mut r.lock(), &[plane]).unwrap_err();
    assert!(matches!(err, CpuError::Unsealed { plane: 0 }), "{err}");
    assert!(err.to_string().contains("F_SEAL_SHRINK"), "{err}");
    done();
}

#[test]
fn sealed_memfd_reads_an_unaligned_plane() {
    let (offset, stride, row_bytes, rows) = (4096 + 64, 256usize, 200usize, 5usize);
    let data = pattern(offset + stride * rows);
    let fd = memfd(&data, true);
    let plane = PlaneSource {
        fd: fd.as_fd(),
        offset: offset as u64,
        stride: stride as u64,
        row_bytes: row_bytes as u64,
        rows: rows as u64,
    };
    let r = Resv::new();
    let map = map_planes(&mut r.lock(), &[plane]).unwrap();
    assert_eq!(map.fd_kind(0), Some(FdKind::SealedMemfd));
    drop(map);
    let mut dst = vec![0u8; row_bytes * rows];
    with_cpu_access(&r, &POLL, |view| {
        copy_plane_rows(view, 0, row_bytes, rows, &mut dst, row_bytes)
    })
    .unwrap()
    .unwrap();
    for y in 0..rows {
        let src = &data[offset + y * stride..][..row_bytes];
        assert_eq!(&dst[y * row_bytes..][..row_bytes], src, "row {y}");
    }
    assert_eq!(r.lock().pin_count(), 0, "unpinned after access");
    done();
}

#[test]
fn planes_in_one_file_share_one_mapping() {
    let data = pattern(3 * 4096);
    let a = memfd(&data, true);
    let a_dup = a.try_clone().unwrap();
    let b = memfd(&data, true);
    fn p(fd: &OwnedFd, offset: u64) -> PlaneSource<'_> {
        PlaneSource {
            fd: fd.as_fd(),
            offset,
            stride: 128,
            row_bytes: 128,
            rows: 8,
        }
    }
    let m = CpuMapping::new(&[p(&a, 0), p(&a_dup, 4096 + 3), p(&b, 8000)]).unwrap();
    assert_eq!((m.plane_count(), m.fd_count()), (3, 2));
    let r = Resv::new();
    r.lock().ensure_cpu_mapping(|| Ok::<_, CpuError>(m)).unwrap();
    let mut dst = vec![0u8; 128 * 8];
    with_cpu_access(&r, &AlreadyWaited, |v| copy_plane_rows(v, 1, 128, 8, &mut dst, 128))
        .unwrap()
        .unwrap();
    assert_eq!(dst, data[4096 + 3..][..128 * 8]);
    with_cpu_access(&r, &AlreadyWaited, |v| copy_plane_rows(v, 2, 100, 8, &mut dst, 128))
        .unwrap()
        .unwrap();
    for y in 0..8 {
        assert_eq!(dst[y * 128..][..100], data[8000 + y * 128..][..100]);
    }
    done();
}

#[test]
fn size_is_checked_at_map_time() {
    let fd = memfd(&pattern(4096), true);
    let plane = PlaneSource {
        fd: fd.as_fd(),
        offset: 64,
        stride: 1024,
        row_bytes: 1024,
        rows: 4,
    };
    let err = CpuMapping::new(&[plane]).unwrap_err();
    assert!(
        matches!(
            err,
            CpuError::OutOfBounds {
                end: 4160,
                size: 4096,
                ..
            }
        ),
        "{err}"
    );
    done();
}

#[test]
fn sync_ioctl_on_a_memfd_is_enotty_meaning_no_cache_maintenance() {
    let fd = memfd(&pattern(64), true);
    assert_eq!(
        dma_buf_sync(fd.as_fd(), SyncDir::Read, false).unwrap(),
        SyncOutcome::NotDmabuf
    );
    assert_eq!(
        dma_buf_sync(fd.as_fd(), SyncDir::Read, true).unwrap(),
        SyncOutcome::NotDmabuf
    );
    done();
}

#[test]
fn copy_checks_bounds_once() {
    let data = pattern(4096);
    let fd = memfd(&data, true);
    let r = Resv::new();
    let plane = PlaneSource {
        fd: fd.as_fd(),
        offset: 0,
        stride: 64,
        row_bytes: 64,
        rows: 64,
    };
    map_planes(&mut r.lock(), &[plane]).unwrap();
    let mut small = vec![0u8; 64 * 63];
    let err = with_cpu_access(&r, &POLL, |v| copy_plane_rows(v, 0, 64, 64, &mut small, 64))
        .unwrap()
        .unwrap_err();
    assert_bounds(&err, "destination size", "");
    let err = with_cpu_access(&r, &POLL, |v| copy_plane_rows(v, 0, 64, 65, &mut small, 64))
        .unwrap()
        .unwrap_err();
    assert_bounds(&err, "source plane", "");
    let err = with_cpu_access(&r, &POLL, |v| copy_plane_rows(v, 1, 64, 1, &mut small, 64))
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, CpuError::NoPlane(1)));
    // Tight strides: one memcpy for the whole plane.
    let mut all = vec![0u8; 4096];
    with_cpu_access(&r, &POLL, |v| copy_plane_rows(v, 0, 64, 64, &mut all, 64))
        .unwrap()
        .unwrap();
    assert_eq!(all, data);
    done();
}

#[test]
fn a_rectangle_is_copied_from_inside_the_plane_and_checked_against_its_edges() {
    // 32 rows of 64 pixels (4 bytes each) at offset 100, stride 300.
    let (offset, stride, rows) = (100usize, 300usize, 32usize);
    let data = pattern(offset + stride * rows);
    let fd = memfd(&data, true);
    let r = Resv::new();
    let plane = PlaneSource {
        fd: fd.as_fd(),
        offset: offset as u64,
        stride: stride as u64,
        row_bytes: 256,
        rows: rows as u64,
    };
    map_planes(&mut r.lock(), &[plane]).unwrap();
    // 5×3 pixels from pixel (7, 11) into a destination of stride 40 at byte 8.
    let mut dst = vec![0u8; 40 * 3 + 8];
    with_cpu_access(&r, &POLL, |v| {
        copy_plane_rect(v, 0, (7 * 4, 11), (20, 3), &mut dst[8..], 40)
    })
    .unwrap()
    .unwrap();
    for y in 0..3 {
        let src = offset + (11 + y) * stride + 7 * 4;
        assert_eq!(dst[8 + y * 40..][..20], data[src..][..20], "row {y}");
    }
    assert!(dst[..8].iter().all(|&b| b == 0), "nothing before the destination start");
    // The rectangle's bottom and right edges are checked, not only its size.
    for (origin, size) in [((0, 30), (20, 3)), ((290, 0), (20, 2)), ((usize::MAX, 0), (20, 1))] {
        let err = with_cpu_access(&r, &POLL, |v| copy_plane_rect(v, 0, origin, size, &mut dst, 40))
            .unwrap()
            .unwrap_err();
        assert_bounds(&err, "source plane", &format!("{origin:?}"));
    }
    done();
}

#[test]
fn invalidate_during_access_keeps_the_pinned_mapping_until_unpinned() {
    let data = pattern(4096);
    let fd = memfd(&data, true);
    let r = Arc::new(Resv::new());
    let plane = PlaneSource {
        fd: fd.as_fd(),
        offset: 0,
        stride: 64,
        row_bytes: 64,
        rows: 64,
    };
    map_planes(&mut r.lock(), &[plane]).unwrap();
    let mut dst = vec![0u8; 4096];
    with_cpu_access(&r, &POLL, |v| {
        // The read runs unlocked, so the client may destroy the buffer now.
        r.lock().invalidate(Invalidate::Destroyed);
        assert_eq!(r.reap().unwrap().pending, 1, "pinned: not unmapped");
        copy_plane_rows(v, 0, 64, 64, &mut dst, 64).unwrap();
    })
    .unwrap();
    assert_eq!(dst, data);
    assert_eq!(r.reap().unwrap().freed, 1, "unmapped once unpinned");
    let err = with_cpu_access(&r, &POLL, |_| ()).unwrap_err();
    assert!(matches!(err, CpuError::Reservation(_)), "{err}");
    done();
}

#[test]
fn cpu_access_with_a_reservation_held_is_caught() {
    let fd = memfd(&pattern(4096), true);
    let (a, b) = (Resv::new(), Resv::new());
    let plane = PlaneSource {
        fd: fd.as_fd(),
        offset: 0,
        stride: 64,
        row_bytes: 64,
        rows: 64,
    };
    map_planes(&mut b.lock(), &[plane]).unwrap();
    let (res, got) = lockdep::record(|| {
        let _held = a.lock();
        with_cpu_access(&b, &POLL, |_| ())
    });
    res.unwrap();
    let kinds: Vec<_> = got.iter().map(|v| v.kind).collect();
    use lockdep::ViolationKind::*;
    // The access itself, the nested lock for pin, the fence wait and the
    // nested lock for unpin (a memfd gets no SYNC bracket).
    assert_eq!(
        kinds,
        [
            BlockingUnderLock,
            NestedWithoutContext,
            BlockingUnderLock,
            NestedWithoutContext
        ]
    );
    done();
}
