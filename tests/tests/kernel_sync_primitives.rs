//! Sync primitives (importer::sync) against a real kernel: sync_file status,
//! merge and poll on vgem fences; dma-buf fence export/import on udmabufs;
//! DRM syncobj timelines on virtio-gpu's render node; the Vulkan device's
//! SYNC_FD semaphore support. Kernel VM tier (ignored on the host with the
//! reason); `host_*` tests run everywhere.
//!
//! vgem signals a fence by itself after 10 s, so every "still unsignaled"
//! assertion is made against the fence's own status at that moment, never
//! inferred from elapsed time.

use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use importer::sync::{implicit as fences, Access, FenceStatus, RenderNode, Syncobj};
use testkit::kernel::udmabuf::Udmabuf;
use testkit::kernel::vgem::Vgem;

const BOUND: Duration = Duration::from_secs(5);

#[test]
fn host_export_on_a_memfd_reports_unsupported() -> Result<()> {
    // The host tier's buffers: a memfd has no sync_file ioctls (ENOTTY),
    // which the importer reports as "fall back to poll", not as an error.
    let fd = rustix::fs::memfd_create("sync-test", rustix::fs::MemfdFlags::CLOEXEC)?;
    rustix::fs::ftruncate(&fd, 4096)?;
    match fences::export_sync_file(fd.as_fd(), Access::Read) {
        Err(e) if e.is_unsupported() => {}
        other => anyhow::bail!("expected Unsupported (ENOTTY), got {other:?}"),
    }
    ensure!(fences::poll_ready(fd.as_fd(), Access::Read)?, "a memfd polls readable");
    Ok(())
}

#[test]
#[ignore = "kernel VM tier: needs vgem fences (run scripts/vm/test.sh)"]
fn sync_file_status_merge_and_poll_follow_a_vgem_fence() -> Result<()> {
    let vgem = Vgem::open()?;
    let buf = vgem.create_dumb(64, 64, 32)?;
    let fence = vgem.attach_fence(&buf, true)?;
    let pending = fences::export_sync_file(buf.dmabuf.as_fd(), Access::Read)?;
    let info = pending.info()?;
    println!("vgem fence sync_file: {info:?}");
    ensure!(info.status == FenceStatus::Active && info.num_fences >= 1, "{info:?}");
    ensure!(!pending.is_signaled(), "poll says signaled");
    ensure!(
        fences::pending_writes(buf.dmabuf.as_fd())?.is_some(),
        "pending_writes sees nothing"
    );

    // A stub (already signaled) from a fence-less udmabuf, merged with it.
    let udmabuf = Udmabuf::open()?.create(4096)?;
    let stub = fences::export_sync_file(udmabuf.dmabuf.as_fd(), Access::Write)?;
    ensure!(stub.status()? == FenceStatus::Signaled, "stub {:?}", stub.info()?);
    let merged = pending.merge(&stub, "merged")?;
    ensure!(merged.status()? == FenceStatus::Active, "merged {:?}", merged.info()?);

    vgem.signal(fence)?;
    ensure!(pending.wait(BOUND)?, "sync_file not readable after the signal");
    ensure!(pending.status()? == FenceStatus::Signaled);
    ensure!(merged.wait(BOUND)? && merged.status()? == FenceStatus::Signaled);
    ensure!(fences::pending_writes(buf.dmabuf.as_fd())?.is_none());
    vgem.close_handle(buf.handle);
    Ok(())
}

#[test]
#[ignore = "kernel VM tier: needs udmabuf + vgem fences (run scripts/vm/test.sh)"]
fn read_and_write_fence_imports_block_the_right_users() -> Result<()> {
    let vgem = Vgem::open()?;
    let src = vgem.create_dumb(16, 16, 32)?;
    let target = Udmabuf::open()?.create(4096)?;
    let t = target.dmabuf.as_fd();

    // READ import: readers need not wait, writers must.
    let f1 = vgem.attach_fence(&src, true)?;
    let sf = fences::export_sync_file(src.dmabuf.as_fd(), Access::Read)?;
    fences::import_sync_file(t, &sf, Access::Read)?;
    let for_readers = fences::export_sync_file(t, Access::Read)?;
    let for_writers = fences::export_sync_file(t, Access::Write)?;
    ensure!(
        for_readers.status()? == FenceStatus::Signaled,
        "a READ fence blocked readers"
    );
    ensure!(
        for_writers.status()? == FenceStatus::Active,
        "a READ fence did not block writers"
    );
    ensure!(fences::poll_ready(t, Access::Read)? && !fences::poll_ready(t, Access::Write)?);
    vgem.signal(f1)?;
    ensure!(for_writers.wait(BOUND)?);

    // WRITE import: everyone waits.
    let f2 = vgem.attach_fence(&src, true)?;
    let sf = fences::export_sync_file(src.dmabuf.as_fd(), Access::Read)?;
    fences::import_sync_file(t, &sf, Access::Write)?;
    let for_readers = fences::export_sync_file(t, Access::Read)?;
    ensure!(
        for_readers.status()? == FenceStatus::Active,
        "a WRITE fence did not block readers"
    );
    ensure!(!fences::poll_ready(t, Access::Read)?);
    vgem.signal(f2)?;
    ensure!(for_readers.wait(BOUND)?);
    ensure!(fences::poll_ready(t, Access::Read)?);
    vgem.close_handle(src.handle);
    Ok(())
}

#[test]
#[ignore = "kernel VM tier: needs virtio-gpu's render node with syncobj timelines (run scripts/vm/test.sh)"]
fn syncobj_timeline_points_sync_files_and_eventfds() -> Result<()> {
    let node = RenderNode::find(|c| c.explicit_sync()).context("render node with timelines + SYNCOBJ_EVENTFD")?;
    let caps = node.probe();
    println!("syncobj node {}: {caps:?}", node.path.display());
    let tl = Syncobj::create(&node, false)?;

    // Point 1 gets a vgem fence: available (materialized) but not signaled.
    let ev_avail = tl.eventfd(1, true)?;
    let ev_signal = tl.eventfd(1, false)?;
    let readable = |fd: &std::os::fd::OwnedFd| importer::sync::sync_file::poll_in(fd.as_fd(), Duration::ZERO);
    ensure!(
        !readable(&ev_avail)? && !tl.is_available(1)?,
        "point 1 available before any fence"
    );
    let vgem = Vgem::open()?;
    let buf = vgem.create_dumb(16, 16, 32)?;
    let fence = vgem.attach_fence(&buf, true)?;
    let sf = fences::export_sync_file(buf.dmabuf.as_fd(), Access::Read)?;
    tl.import_point(1, &sf)?; // sync_file → point
    ensure!(
        importer::sync::sync_file::poll_in(ev_avail.as_fd(), BOUND)?,
        "WAIT_AVAILABLE eventfd not readable"
    );
    ensure!(tl.is_available(1)?);
    ensure!(
        !readable(&ev_signal)? && !tl.is_signaled(1)?,
        "point 1 signaled with its vgem fence pending"
    );
    let back = tl.export_point(1)?; // point → sync_file
    ensure!(
        back.status()? == FenceStatus::Active,
        "exported point {:?}",
        back.info()?
    );

    vgem.signal(fence)?;
    ensure!(
        importer::sync::sync_file::poll_in(ev_signal.as_fd(), BOUND)?,
        "signal eventfd not readable"
    );
    ensure!(tl.is_signaled(1)? && back.status()? == FenceStatus::Signaled);

    // CPU signal of point 2, seen through a blocking wait and the query.
    let ev2 = tl.eventfd(2, false)?;
    tl.signal(2)?;
    ensure!(tl.wait(2, BOUND, false)? && tl.query()? >= 2);
    ensure!(importer::sync::sync_file::poll_in(ev2.as_fd(), BOUND)?);
    // Exporting/importing the timeline itself (what a client sends).
    let fd = tl.export()?;
    let again = Syncobj::import(&node, fd.as_fd())?;
    ensure!(again.query()? >= 2);
    vgem.close_handle(buf.handle);
    Ok(())
}

#[test]
#[ignore = "kernel VM tier: reports the VM's Vulkan SYNC_FD semaphore support (run scripts/vm/test.sh)"]
fn vulkan_semaphore_sync_fd_support_is_reported() -> Result<()> {
    let core = importer::renderer::RenderCore::new(Default::default())?;
    let s = core.semaphore_sync_fd();
    println!("device: {}", core.ctx.caps.summary());
    println!("{}", s.summary());
    ensure!(s.extension, "VK_KHR_external_semaphore_fd is not enabled in the VM");
    Ok(())
}
