//! Implicit release through the compositor: after composition the client's
//! dma-buf carries the compositor's READ fence (devices exporting SYNC_FD), or
//! its wl_buffer.release is held back until the GPU is done (devices without).
//! To make "the GPU is not done" observable, the frame is stalled on the GPU by
//! a second surface whose buffer has an unsignaled vgem write fence
//! (COMPOSITOR_ACQUIRE=gpu: the GPU waits on it through a temporary semaphore
//! import). Kernel VM tier, but kept out of `kernel_*` (not run by
//! scripts/vm/test.sh): on lavapipe the GPU-wait path blocks the compositor's
//! loop (vkQueueSubmit or the SYNC_FD export of that submission waits for the
//! imported fence), see docs/sync.md.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use importer::sync::{implicit as fences, Access, FenceStatus};
use testkit::harness::{read_stats, Compositor};
use testkit::sync::VgemProvider;
use testkit::{DmabufBuffer, Format, UdmabufProvider, Window};

const BOUND: Duration = Duration::from_secs(5);

#[test]
#[ignore = "lavapipe limitation: with COMPOSITOR_ACQUIRE=gpu, lavapipe blocks the event loop until the imported SYNC_FD signals (measured in the VM: 10 s, until vgem's timeout); run by hand in the VM with --include-ignored"]
fn sampled_buffer_is_released_only_after_the_gpu_finished() -> Result<()> {
    // Only this test runs in this binary, so the variable reaches only its compositor.
    std::env::set_var("COMPOSITOR_ACQUIRE", "gpu");
    let out = tempfile::tempdir()?;
    let stats = out.path().join("stats.json");
    let mut comp = Compositor::spawn(&[
        "--size".as_ref(),
        "320x240".as_ref(),
        "--stats".as_ref(),
        stats.as_os_str(),
    ])?;
    let mut client = comp.connect()?;
    let udmabuf = UdmabufProvider::open()?;
    let vgem = VgemProvider::open()?;
    let px = |_, _| Format::Xrgb8888.encode([10, 200, 10, 255]);

    let a_win = Window::new(&mut client, "sampled")?;
    let a = DmabufBuffer::new(&client, &udmabuf, 64, 64, Format::Xrgb8888, 256, &px)?;
    a_win.attach(&a);
    a_win.wait_frame(&mut client)?;

    // The staller: its fence makes the next frame's GPU work wait.
    let b_win = Window::new(&mut client, "staller")?;
    let b = DmabufBuffer::new(&client, &vgem, 64, 64, Format::Xrgb8888, 256, &px)?;
    let fence = vgem.attach_fence(b.fd(), true)?;
    let stall = || -> Result<FenceStatus> { Ok(fences::export_sync_file(b.fd().as_fd(), Access::Read)?.status()?) };
    b_win.attach(&b);
    a_win.damage_all(); // A is drawn again in the same (stalled) frame
    let a_frame = a_win.frame(&client);
    b_win.surface.commit();
    a_win.surface.commit();
    client.wait_flag("frame with both surfaces submitted", &a_frame)?;
    // Replace A so the compositor may release it.
    let a2 = DmabufBuffer::new(&client, &udmabuf, 64, 64, Format::Xrgb8888, 256, &px)?;
    a_win.attach(&a2);
    a_win.wait_frame(&mut client)?;
    client.roundtrip()?;

    let a_writers = fences::export_sync_file(a.fd().as_fd(), Access::Write)?; // all fences on A
    let a_status = a_writers.status()?;
    let released = a.is_released();
    let stalled = stall()?;
    println!("while the GPU is stalled (vgem fence {stalled:?}): A's fences for a writer {a_status:?}, A released: {released}");
    ensure!(
        stalled == FenceStatus::Active,
        "the staller fence signaled on its own (timeout)"
    );
    ensure!(
        a_status == FenceStatus::Active || !released,
        "A is writable and released while the frame that sampled it cannot have finished"
    );
    let path = if a_status == FenceStatus::Active {
        "compositor READ fence in the dma-buf (early release)"
    } else {
        "release held until the VkFence"
    };
    println!("release path: {path}");

    vgem.signal(fence)?;
    ensure!(a_writers.wait(BOUND)?, "A's compositor fence never signaled");
    let flag = a_win.frame(&client);
    a_win.damage_all();
    a_win.surface.commit();
    client.wait_flag("a frame after the signal", &flag)?;
    client
        .dispatch_until_within(BOUND, "A's wl_buffer.release", |_| a.is_released())
        .context("A never released")?;
    comp.terminate()?;
    println!("compositor sync stats: {:?}", read_stats(&stats)?.buffer_sync);
    let _ = Ordering::Acquire;
    Ok(())
}
