//! wp_color_representation_v1 from one fuzzed client: surface objects,
//! coefficients and ranges, chroma locations and alpha modes (offered or
//! not, in the enums or not), destroys of the objects, the manager and the
//! wl_surfaces in any order, around dma-buf commits of any format.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| compositor_fuzz::run(data, compositor_fuzz::Mix::ColorRepresentation));
