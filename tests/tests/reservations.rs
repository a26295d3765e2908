//! Locking rule B3 (docs/locking-rules.md) through the compositor: a client
//! buffer destroyed while the compositor runs is invalidated under its
//! reservation and buried, and the frame tick's graveyard poll frees it once
//! the fences of the frames that sampled it signaled, before exit (not only
//! at teardown). Checked on the
//! GPU path and on the CPU fallback (where the CPU mapping dies too).

use anyhow::{ensure, Result};
use testkit::harness::{Compositor, Stats};
use testkit::provider::provider_from_env;
use testkit::{DmabufBuffer, Format, Window};

fn destroy_mid_run(extra: &[&str]) -> Result<Stats> {
    let mut args = vec!["--size", "320x240"];
    args.extend_from_slice(extra);
    let mut comp = Compositor::spawn(&args)?;
    let mut client = comp.connect()?;
    let provider = provider_from_env()?;
    let window = Window::new(&mut client, "replaced")?;
    let color = |c: [u8; 4]| move |_, _| Format::Xrgb8888.encode(c);
    let first = DmabufBuffer::new(
        &client,
        &*provider,
        64,
        64,
        Format::Xrgb8888,
        256,
        &color([200, 0, 0, 255]),
    )?;
    window.attach(&first);
    window.damage_all();
    window.wait_frame(&mut client)?; // sampled by at least one frame
    let second = DmabufBuffer::new(
        &client,
        &*provider,
        64,
        64,
        Format::Xrgb8888,
        256,
        &color([0, 200, 0, 255]),
    )?;
    window.attach(&second);
    window.damage_all();
    window.wait_frame(&mut client)?;
    drop(first); // wl_buffer.destroy: the compositor's dma-buf goes away
    for _ in 0..10 {
        window.damage_all();
        window.wait_frame(&mut client)?; // frame ticks: cleanup, then graveyard polls
    }
    drop(second);
    drop(client);
    comp.terminate()?; // also checks the lock rules
    let stats = comp.stats()?;
    let resv = &stats.reservations;
    println!("reservations: {resv:?}");
    ensure!(
        resv.destroyed_gone >= 1,
        "the destroyed buffer was not invalidated while running: {resv:?}"
    );
    ensure!(
        resv.freed_running >= 1,
        "nothing was freed by the frame tick's graveyard poll: {resv:?}"
    );
    Ok(stats)
}

#[test]
fn destroyed_gpu_import_is_freed_by_the_frame_tick() -> Result<()> {
    let stats = destroy_mid_run(&[])?;
    ensure!(stats.imports.cpu_fallback == 0, "{stats:?}");
    Ok(())
}

#[test]
fn destroyed_cpu_fallback_import_and_mapping_are_freed_by_the_frame_tick() -> Result<()> {
    let stats = destroy_mid_run(&["--cpu-fallback"])?;
    ensure!(stats.imports.cpu_fallback >= 2, "{stats:?}");
    // Texture and mapping of the destroyed buffer: two dead entries.
    ensure!(stats.reservations.freed_running >= 2, "{stats:?}");
    Ok(())
}
