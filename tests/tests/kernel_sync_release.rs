//! Asynchronous invalidation through the compositor. Runs on the host and in
//! the kernel VM tier.
//!
//! * `destroyed_*`: clients that destroy their buffer and
//!   disconnect right at the frame callback, while the frame that sampled it
//!   is in flight: no crash, other clients keep their frames, and the
//!   compositor frees every such import from its loop: by the finished frame
//!   that held the last reference (`buffer_sync.deferred_texture_frees`), or
//!   by the graveyard's poll on the frame tick once no frame holds it
//!   (`reservations.freed_running`). A texture cache that is never cleaned
//!   frees none of them.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use testkit::harness::{read_stats, Compositor};
use testkit::witness::Witness;
use testkit::{provider_from_env, DmabufBuffer, Format, Window};

/// Every wait's bound: `TEST_TIMEOUT_SECS` (60 s in the VM tier, where
/// several compositors share two emulated CPUs).
fn bound() -> Duration {
    testkit::client::default_timeout()
}

#[test]
fn destroyed_buffers_are_freed_only_after_their_frame_fence() -> Result<()> {
    let out = tempfile::tempdir()?;
    let stats = out.path().join("stats.json");
    let mut comp = Compositor::spawn(&[
        "--size".as_ref(),
        "640x480".as_ref(),
        "--stats".as_ref(),
        stats.as_os_str(),
    ])?;
    let mut witness = Witness::start(&comp.socket_path(), bound())?;
    let provider = provider_from_env()?;
    const CLIENTS: u64 = 4;
    for i in 0..CLIENTS {
        let mut client = comp.connect()?;
        let window = Window::new(&mut client, "short-lived")?;
        let buf = DmabufBuffer::new(&client, &*provider, 256, 256, Format::Xrgb8888, 1024, &|_, _| {
            Format::Xrgb8888.encode([200, 100, 0, 255])
        })?;
        window.attach(&buf);
        let shown = window.frame(&client);
        window.surface.commit();
        client.dispatch_until_within(bound(), "frame callback", |_| shown.load(Ordering::Acquire))?;
        // Right after the frame that sampled it was submitted: half the
        // clients destroy the buffer first, all disconnect without waiting.
        if i % 2 == 0 {
            drop(buf);
            let _ = client.conn.flush();
        } else {
            std::mem::forget(buf);
        }
        drop(window);
        drop(client);
        let w = witness.frames();
        witness
            .wait_for_frames(w + 3, bound())
            .context("the witness stalled after a client went away")?;
    }
    ensure!(comp.is_running()?, "the compositor died");
    witness.stop()?;
    comp.terminate()?;
    let stats = read_stats(&stats)?;
    let (sync, resv) = (&stats.buffer_sync, &stats.reservations);
    println!("compositor stats after {CLIENTS} clients went away mid-frame: {sync:?}, {resv:?}");
    let freed = sync.deferred_texture_frees + resv.freed_running;
    ensure!(
        freed >= CLIENTS,
        "only {freed} of the {CLIENTS} invalidated imports were freed: {sync:?}, {resv:?}"
    );
    ensure!(sync.explicit_buffers_tracked == 0, "{sync:?}");
    Ok(())
}
