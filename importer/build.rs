//! Compiles the WGSL shaders in `shaders/` to SPIR-V with naga at build time,
//! so the compositor carries no runtime shader compiler.

use std::path::PathBuf;

fn compile(src: &std::path::Path, out: &std::path::Path) {
    let text = std::fs::read_to_string(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    let module = naga::front::wgsl::parse_str(&text)
        .unwrap_or_else(|e| panic!("{}: {}", src.display(), e.emit_to_string(&text)));
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::PUSH_CONSTANT,
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{}: validation: {e:?}", src.display()));
    let options = naga::back::spv::Options {
        lang_version: (1, 0),
        flags: naga::back::spv::WriterFlags::empty(),
        ..Default::default()
    };
    let words = naga::back::spv::write_vec(&module, &info, &options, None)
        .unwrap_or_else(|e| panic!("{}: spir-v: {e}", src.display()));
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    std::fs::write(out, bytes).expect("write spir-v");
}

fn main() {
    let shaders = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shaders");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    for name in ["quad", "nv12"] {
        let src = shaders.join(format!("{name}.wgsl"));
        println!("cargo:rerun-if-changed={}", src.display());
        compile(&src, &out_dir.join(format!("{name}.spv")));
    }
}
