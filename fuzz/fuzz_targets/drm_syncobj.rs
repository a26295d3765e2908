//! wp_linux_drm_syncobj_v1 from one fuzzed client: timelines (real ones
//! from the render node, or fds that are not), syncobj surfaces, acquire and
//! release points on dma-buf commits, points signalled from the CPU, and
//! destroys in any order. Runs in the kernel VM tier (it needs a render node
//! with syncobj timelines).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| compositor_fuzz::run(data, compositor_fuzz::Mix::DrmSyncobj));
