//! Surface commit sequences from one fuzzed client: surfaces, subsurfaces
//! (sync, desync, stacking), xdg toplevels and configure acks, attach,
//! damage, frame callbacks, transforms and scales, and destroys in any order.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| compositor_fuzz::run(data, compositor_fuzz::Mix::SurfaceCommits));
