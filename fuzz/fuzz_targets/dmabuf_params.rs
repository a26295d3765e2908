//! linux-dmabuf params and buffers from one fuzzed client: create_params,
//! add (any fd size, plane, offset, stride, modifier), create and
//! create_immed (any size, format, flags), destroy, attach and commit.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| compositor_fuzz::run(data, compositor_fuzz::Mix::DmabufParams));
