//! Default (non-recording) mode: a violation panics with a clear message.
//! Its own test binary, because it deliberately raises the
//! `unexpected_violations` count that the other suites assert is zero.
#![cfg(debug_assertions)]

use std::panic::catch_unwind;

use importer::lockdep;
use importer::reservation::Reservation;

#[test]
fn blocking_under_a_reservation_panics_by_default() {
    let before = lockdep::unexpected_violations();
    let err = catch_unwind(|| {
        let r: Reservation<(), ()> = Reservation::new();
        let _g = r.lock();
        lockdep::might_block("vkWaitForFences");
    })
    .expect_err("must panic");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("BlockingUnderLock") && msg.contains("vkWaitForFences") && msg.contains("reservation"),
        "{msg}"
    );
    assert_eq!(lockdep::unexpected_violations(), before + 1);
    assert!(lockdep::ENABLED);
}
