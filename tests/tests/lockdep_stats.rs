//! The lock-rule check every compositor run goes through (harness:
//! `StatsExt::check_lock_rules`, from `run_scene_with_args` and
//! `Compositor::{wait_exit, terminate}`) is not vacuous: with the test hook
//! `COMPOSITOR_LOCKDEP_PLANT=1` (compositor feature `test-hooks`) the
//! compositor makes one blocking call under a reservation at start-up; its
//! validator must count exactly that violation, the compositor must keep
//! running (violations are logged, not raised, in the binary) and the check
//! must fail. The same scene without the plant passes the check, with every
//! reservation destroyed and freed by exit.

use std::path::Path;

use anyhow::{ensure, Result};
use testkit::harness::{run_scene_unchecked, run_scene_with_args, StatsExt};

#[test]
fn a_planted_violation_is_counted_and_fails_the_check() -> Result<()> {
    let client = Path::new(env!("CARGO_BIN_EXE_scene-client"));
    let (run, log) = run_scene_unchecked(client, "solid", &[], &[("COMPOSITOR_LOCKDEP_PLANT", "1")])?;
    run.stats.require_test_hooks("COMPOSITOR_LOCKDEP_PLANT")?;
    ensure!(run.stats.lockdep.enabled, "validator not compiled in: {:?}", run.stats);
    ensure!(
        run.stats.lockdep.violations == 1,
        "expected the one planted violation: {:?}; log {}",
        run.stats,
        log.display()
    );
    ensure!(
        run.stats.check_lock_rules().is_err(),
        "the check passed a run with a violation"
    );
    let text = std::fs::read_to_string(&log)?;
    ensure!(
        text.contains("BlockingUnderLock") && text.contains("planted violation"),
        "violation not logged in {}",
        log.display()
    );
    Ok(())
}

#[test]
fn a_clean_run_passes_and_frees_every_reservation() -> Result<()> {
    let client = Path::new(env!("CARGO_BIN_EXE_scene-client"));
    let run = run_scene_with_args(client, "overlap", &[])?;
    ensure!(
        run.stats.reservations.created >= 2,
        "expected several client buffers under reservations: {:?}",
        run.stats
    );
    ensure!(
        run.stats.reservations.freed >= run.stats.reservations.destroyed,
        "{:?}",
        run.stats
    );
    Ok(())
}
