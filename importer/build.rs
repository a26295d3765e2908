//! Compiles the WGSL shaders in `shaders/` to SPIR-V with naga at build time,
//! so the compositor carries no runtime shader compiler. The quad shaders
//! share `quad_vertex.wgsl` (prepended; WGSL has no includes), and the
//! Y'CbCr shader's image and sampler are merged into one combined binding
//! ([`spirv::combine_image_sampler`]).

use std::path::{Path, PathBuf};

#[path = "build/spirv.rs"]
mod spirv;

fn compile(name: &str, text: &str) -> Vec<u32> {
    let module = naga::front::wgsl::parse_str(text).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(text)));
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::PUSH_CONSTANT,
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{name}: validation: {e:?}"));
    let options = naga::back::spv::Options {
        lang_version: (1, 0),
        flags: naga::back::spv::WriterFlags::empty(),
        ..Default::default()
    };
    naga::back::spv::write_vec(&module, &info, &options, None).unwrap_or_else(|e| panic!("{name}: spir-v: {e}"))
}

fn read(path: &Path) -> String {
    println!("cargo:rerun-if-changed={}", path.display());
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn main() {
    println!("cargo:rerun-if-changed=build/spirv.rs");
    let shaders = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shaders");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let vertex = read(&shaders.join("quad_vertex.wgsl"));
    for (name, with_vertex) in [("quad", true), ("ycbcr", true), ("nv12", false)] {
        let own = read(&shaders.join(format!("{name}.wgsl")));
        let text = if with_vertex { format!("{vertex}\n{own}") } else { own };
        let mut words = compile(name, &text);
        if name == "ycbcr" {
            words = spirv::combine_image_sampler(&words, 0).unwrap_or_else(|e| panic!("ycbcr: {e}"));
        }
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        std::fs::write(out_dir.join(format!("{name}.spv")), bytes).expect("write spir-v");
    }
}
