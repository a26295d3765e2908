//! Implicit release on a real GPU: after composition the client's
//! dma-buf carries the compositor's READ fence, seen *pending* by the client
//! (`EXPORT_SYNC_FILE(WRITE)` → `SYNC_IOC_FILE_INFO` Active) right at the
//! frame callback, which the compositor sends just after submitting the
//! frame; a reader is not blocked by it (READ semantics) and it signals.
//! No GPU-side wait on a client fence is involved.
//!
//! Not in the kernel VM tier (no `kernel_` prefix): measured there, lavapipe
//! returns the frame's SYNC_FD only once the submission has completed, so
//! the fence is never seen pending (12 of 12 rounds at 1024x1024 under TCG:
//! `stub-stub0-0`, Signaled) and this test fails instead of passing
//! vacuously. `scripts/gpu/run.sh` runs it on real hardware.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{ensure, Result};
use importer::sync::{implicit as fences, Access, FenceStatus};
use testkit::harness::{read_stats, Compositor};
use testkit::{DmabufBuffer, Format, UdmabufProvider, Window};

const BOUND: Duration = Duration::from_secs(20);

#[test]
#[ignore = "real GPU tier: needs a device whose SYNC_FD export is pending while the frame runs (lavapipe's is not); run scripts/gpu/run.sh"]
fn read_fence_is_in_the_client_dmabuf_after_composition() -> Result<()> {
    let out = tempfile::tempdir()?;
    let stats = out.path().join("stats.json");
    let mut comp = Compositor::spawn(&[
        "--size".as_ref(),
        "1024x1024".as_ref(),
        "--stats".as_ref(),
        stats.as_os_str(),
    ])?;
    let mut client = comp.connect()?;
    let udmabuf = UdmabufProvider::open()?;
    let px = |x: u32, y: u32| Format::Xrgb8888.encode([(x % 256) as u8, (y % 256) as u8, 128, 255]);
    let window = Window::new(&mut client, "sampled")?;
    let (mut pending_seen, mut early_release_order_ok, mut rounds) = (0, true, 0);
    let mut last_info = None;
    // Each round commits a fresh buffer (the previous one may be released)
    // and looks at the new one right at its frame callback.
    for _ in 0..12 {
        rounds += 1;
        let buf = DmabufBuffer::new(&client, &udmabuf, 900, 900, Format::Xrgb8888, 3600, &px)?;
        window.attach(&buf);
        let shown = window.frame(&client);
        window.surface.commit();
        client.dispatch_until_within(BOUND, "frame callback", |_| shown.load(Ordering::Acquire))?;
        let all = fences::export_sync_file(buf.fd().as_fd(), Access::Write)?;
        let info = all.info()?;
        if info.status == FenceStatus::Active {
            pending_seen += 1;
            // A reader is not blocked by a READ fence; a writer is.
            let readers = fences::export_sync_file(buf.fd().as_fd(), Access::Read)?;
            ensure!(
                readers.status()? == FenceStatus::Signaled,
                "the compositor's fence blocks readers: not a READ fence"
            );
            ensure!(all.wait(BOUND)?, "the compositor's READ fence never signaled");
        }
        last_info = Some(info);
        // Released before its frame callback would mean before the frame was even submitted.
        early_release_order_ok &= !buf.is_released() || shown.load(Ordering::Acquire);
        std::mem::forget(buf); // keep the wl_buffer alive until the connection closes
    }
    drop(client);
    comp.terminate()?;
    let sync = read_stats(&stats)?.buffer_sync;
    println!("rounds {rounds}, compositor READ fence seen pending in {pending_seen}; last fence info {last_info:?}; sync stats {sync:?}");
    ensure!(early_release_order_ok);
    if sync.early_releases > 0 {
        ensure!(pending_seen > 0, "the device exports SYNC_FD and buffers were released early, but no READ fence was ever seen pending in the client's dma-buf");
    } else {
        ensure!(sync.fence_releases > 0, "neither release path was taken: {sync:?}");
    }
    Ok(())
}
