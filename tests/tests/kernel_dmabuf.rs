//! Kernel VM tier: real dma-bufs from a real kernel (udmabuf, the system
//! dma-heap, vgem fences), allocated through the test library's uapi wrappers
//! and synced through the importer's dma-buf ioctls
//! (`importer::sync::implicit`).
//!
//! These need devices the CI host does not have, so on the host every test is
//! ignored *with its reason*; `scripts/vm/test.sh` boots a 6.12 kernel under
//! qemu and runs them there with `--include-ignored`. Inside the VM a missing
//! device is a failure, never a skip.

use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use importer::sync::implicit::{self as fences, dma_buf_sync, Access, SyncDir, SyncOutcome};
use importer::sync::SyncFile;
use testkit::kernel::dmabuf::{self, CpuAccess};
use testkit::kernel::heap::DmaHeap;
use testkit::kernel::uapi;
use testkit::kernel::udmabuf::{page_align, Udmabuf};
use testkit::kernel::vgem::Vgem;
use testkit::mapping::Mapping;
use testkit::provider::{cpu_write, provider_from_env};

/// How long a signaled fence may take to show up in poll (it is immediate;
/// the bound only keeps a broken kernel from hanging the test).
const SIGNALED_WITHIN: Duration = Duration::from_secs(5);

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 9)) as u8
}

#[test]
#[ignore = "kernel VM tier: needs /dev/udmabuf (run scripts/vm/test.sh)"]
fn udmabuf_mmap_and_cpu_sync_round_trip() -> Result<()> {
    let dev = Udmabuf::open()?;
    let want = 3 * 4096 + 100;
    let buf = dev.create(want)?;
    ensure!(buf.size == page_align(want), "size {} not page-aligned", buf.size);
    let fd = buf.dmabuf.as_fd();
    ensure!(
        dmabuf::exporter_name(fd)?.as_deref() == Some("udmabuf"),
        "fdinfo exp_name: {:?}",
        dmabuf::exporter_name(fd)?
    );
    ensure!(dmabuf::size(fd)? == buf.size as u64, "lseek size {}", dmabuf::size(fd)?);

    // Client-style write through the dma-buf's own mapping, bracketed by
    // DMA_BUF_IOCTL_SYNC(START/END | WRITE).
    let mut map = Mapping::new(fd, buf.size)?;
    let cpu = cpu_write(fd)?;
    ensure!(cpu.is_dmabuf(), "DMA_BUF_IOCTL_SYNC was not accepted on a udmabuf");
    for (i, b) in map.as_mut_slice().iter_mut().enumerate() {
        *b = pattern(i);
    }
    cpu.end()?;

    // The same pages, seen through the backing memfd.
    let memfd_map = Mapping::new(&buf.memfd, buf.size)?;
    let bad = memfd_map
        .as_slice()
        .iter()
        .enumerate()
        .find(|(i, b)| **b != pattern(*i));
    ensure!(bad.is_none(), "memfd does not see the dma-buf write at {bad:?}");

    // And back: a write through the memfd, read through the dma-buf mapping
    // inside a READ window.
    let mut memfd_map = memfd_map;
    memfd_map.as_mut_slice()[buf.size - 1] = 0xa5;
    let cpu = CpuAccess::begin(fd, SyncDir::Read)?;
    ensure!(map.as_slice()[buf.size - 1] == 0xa5, "dma-buf mapping is stale");
    cpu.end()?;

    // Every direction's START and END reach the dma-buf (a wrong ioctl number
    // would be ENOTTY: NotDmabuf), and the backing memfd, not a dma-buf,
    // answers ENOTTY.
    for dir in [SyncDir::Read, SyncDir::Write, SyncDir::ReadWrite] {
        for end in [false, true] {
            let got = dma_buf_sync(fd, dir, end)?;
            ensure!(
                got == SyncOutcome::Synced,
                "DMA_BUF_IOCTL_SYNC({dir:?}, end {end}) on a udmabuf: {got:?}"
            );
        }
    }
    let got = dma_buf_sync(buf.memfd.as_fd(), SyncDir::Read, false)?;
    ensure!(got == SyncOutcome::NotDmabuf, "DMA_BUF_IOCTL_SYNC on a memfd: {got:?}");
    Ok(())
}

#[test]
#[ignore = "kernel VM tier: needs /dev/udmabuf (run scripts/vm/test.sh)"]
fn udmabuf_requires_a_shrink_sealed_memfd() -> Result<()> {
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/udmabuf")
        .context("open /dev/udmabuf")?;
    let memfd = rustix::fs::memfd_create("unsealed", rustix::fs::MemfdFlags::CLOEXEC)?;
    rustix::fs::ftruncate(&memfd, 4096)?;
    let mut arg = uapi::UdmabufCreate {
        memfd: memfd.as_raw_fd() as u32,
        flags: uapi::UDMABUF_FLAGS_CLOEXEC,
        offset: 0,
        size: 4096,
    };
    // SAFETY: UDMABUF_CREATE with a struct udmabuf_create.
    let r = unsafe { libc::ioctl(dev.as_raw_fd(), uapi::UDMABUF_CREATE as _, &mut arg) };
    let err = std::io::Error::last_os_error();
    ensure!(r < 0, "UDMABUF_CREATE accepted a memfd without F_SEAL_SHRINK");
    ensure!(err.raw_os_error() == Some(libc::EINVAL), "expected EINVAL, got {err}");
    Ok(())
}

#[test]
#[ignore = "kernel VM tier: needs /dev/dma_heap/system (run scripts/vm/test.sh)"]
fn dma_heap_system_alloc_map_and_sync() -> Result<()> {
    let heap = DmaHeap::open("system")?;
    let want = 64 * 1024 + 1;
    let fd = heap.alloc(want)?;
    let fd = fd.as_fd();
    ensure!(
        dmabuf::exporter_name(fd)?.as_deref() == Some("system"),
        "fdinfo exp_name: {:?}",
        dmabuf::exporter_name(fd)?
    );
    let size = dmabuf::size(fd)? as usize;
    ensure!(size == page_align(want), "heap buffer is {size} bytes");
    let mut map = Mapping::new(fd, size)?;
    let cpu = cpu_write(fd)?;
    ensure!(cpu.is_dmabuf(), "heap fd is not a dma-buf");
    map.as_mut_slice()
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = pattern(i));
    cpu.end()?;
    let again = Mapping::new(fd, size)?;
    let cpu = CpuAccess::begin(fd, SyncDir::Read)?;
    let ok = again.as_slice().iter().enumerate().all(|(i, b)| *b == pattern(i));
    cpu.end()?;
    ensure!(ok, "second mapping of the heap buffer differs");
    Ok(())
}

#[test]
#[ignore = "kernel VM tier: needs /dev/udmabuf and sync_file (run scripts/vm/test.sh)"]
fn sync_file_export_import_round_trip() -> Result<()> {
    let dev = Udmabuf::open()?;
    let a = dev.create(4096)?;
    let b = dev.create(4096)?;
    // No fences yet: the exported sync_file (of every fence) is already signaled.
    let sf = fences::export_sync_file(a.dmabuf.as_fd(), Access::Write)?;
    ensure!(
        dmabuf::readable_now(sf.as_fd())?,
        "fresh buffer's sync_file is not signaled"
    );
    let info = std::fs::read_link(format!("/proc/self/fd/{}", sf.as_raw_fd()))?;
    ensure!(
        info.to_string_lossy().contains("sync_file"),
        "exported fd is {info:?}, not a sync_file"
    );
    // Importing it as a write fence into another buffer keeps that readable.
    fences::import_sync_file(b.dmabuf.as_fd(), &sf, Access::Write)?;
    ensure!(
        dmabuf::readable_now(b.dmabuf.as_fd())?,
        "signaled import blocked readers"
    );
    // And the buffer re-exports a signaled sync_file.
    let again = fences::export_sync_file(b.dmabuf.as_fd(), Access::Read)?;
    ensure!(
        dmabuf::readable_now(again.as_fd())?,
        "re-exported sync_file is not signaled"
    );
    // A non-sync_file fd cannot be imported: the importer's IMPORT_SYNC_FILE
    // takes a SyncFile, and SyncFile::from_fd checks the fd with
    // SYNC_IOC_FILE_INFO, which a real sync_file passes and a memfd fails.
    SyncFile::from_fd(sf.try_clone()?.into_fd()).context("an exported sync_file refused as one")?;
    let err = SyncFile::from_fd(a.memfd.try_clone()?)
        .err()
        .context("a memfd was accepted as a sync_file")?;
    println!("a memfd as a sync_file: {err}");
    Ok(())
}

#[test]
#[ignore = "kernel VM tier: needs the vgem module (run scripts/vm/test.sh)"]
fn vgem_write_fence_blocks_poll_until_signaled() -> Result<()> {
    let vgem = Vgem::open()?;
    let buf = vgem.create_dumb(64, 64, 32)?;
    let fd = buf.dmabuf.as_fd();
    // vgem exports through the DRM core's generic GEM PRIME exporter.
    ensure!(
        dmabuf::exporter_name(fd)?.as_deref() == Some("drm"),
        "fdinfo exp_name: {:?}",
        dmabuf::exporter_name(fd)?
    );
    ensure!(dmabuf::readable_now(fd)?, "new vgem buffer is not readable");

    let fence = vgem.attach_fence(&buf, true)?;
    // An unsignaled write fence: neither readers nor writers may proceed.
    let revents = dmabuf::poll(fd, libc::POLLIN | libc::POLLOUT, Duration::ZERO)?;
    ensure!(
        revents & (libc::POLLIN | libc::POLLOUT) == 0,
        "poll reports {revents:#x} with an unsignaled write fence"
    );
    // The fence shows up in an exported sync_file, unsignaled too.
    let sf = fences::export_sync_file(fd, Access::Read)?;
    ensure!(
        !dmabuf::readable_now(sf.as_fd())?,
        "sync_file of a pending fence is signaled"
    );

    vgem.signal(fence)?;
    ensure!(
        dmabuf::wait_readable(fd, SIGNALED_WITHIN)?,
        "not readable after FENCE_SIGNAL"
    );
    ensure!(
        dmabuf::wait_readable(sf.as_fd(), SIGNALED_WITHIN)?,
        "sync_file still pending"
    );
    // Signaling twice is an error (the fence is gone).
    ensure!(vgem.signal(fence).is_err(), "second FENCE_SIGNAL succeeded");
    vgem.close_handle(buf.handle);
    Ok(())
}

#[test]
#[ignore = "kernel VM tier: needs the vgem module and /dev/udmabuf (run scripts/vm/test.sh)"]
fn sync_file_carries_a_vgem_fence_to_a_udmabuf() -> Result<()> {
    let vgem = Vgem::open()?;
    let src = vgem.create_dumb(32, 32, 32)?;
    let dst = Udmabuf::open()?.create(4096)?;
    let fence = vgem.attach_fence(&src, true)?;
    let sf = fences::export_sync_file(src.dmabuf.as_fd(), Access::Read)?;
    fences::import_sync_file(dst.dmabuf.as_fd(), &sf, Access::Write)?;
    ensure!(
        !dmabuf::readable_now(dst.dmabuf.as_fd())?,
        "udmabuf is readable although it carries vgem's pending write fence"
    );
    vgem.signal(fence)?;
    ensure!(
        dmabuf::wait_readable(dst.dmabuf.as_fd(), SIGNALED_WITHIN)?,
        "udmabuf stayed blocked after the vgem fence signaled"
    );
    vgem.close_handle(src.handle);
    Ok(())
}

/// In the VM the driver sets `TEST_BUFFER_PROVIDER=udmabuf` so the rendering
/// tests (render.rs) import real dma-bufs; this makes sure that really holds.
#[test]
#[ignore = "kernel VM tier: needs TEST_BUFFER_PROVIDER=udmabuf and /dev/udmabuf (run scripts/vm/test.sh)"]
fn vm_env_selects_a_real_dmabuf_provider() -> Result<()> {
    let name = std::env::var("TEST_BUFFER_PROVIDER").unwrap_or_default();
    ensure!(
        name == "udmabuf" || name == "dma-heap",
        "TEST_BUFFER_PROVIDER={name:?}: the VM tier must use a real dma-buf provider"
    );
    ensure!(
        testkit::kernel::in_vm(),
        "DMABUF_TEST_TIER={:?}, expected vm",
        testkit::kernel::tier()
    );
    let provider = provider_from_env()?;
    ensure!(provider.name() == name, "provider {} for {name}", provider.name());
    let fd = provider.allocate(320 * 4 * 3)?;
    let exporter = dmabuf::exporter_name(fd.as_fd())?;
    let want = if name == "udmabuf" { "udmabuf" } else { "system" };
    ensure!(exporter.as_deref() == Some(want), "allocated fd exporter {exporter:?}");
    ensure!(cpu_write(fd.as_fd())?.is_dmabuf(), "CPU write window is a no-op");
    Ok(())
}
