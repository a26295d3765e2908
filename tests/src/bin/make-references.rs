//! `make-references [--out DIR]`: writes `assets/reference/<scene>.png`.
//!
//! The references come from `testkit::reference`, a CPU model of the documented
//! composition rules that shares no code with the compositor. Tests never run
//! this; it records where the committed PNGs came from. Re-run it only when a
//! scene or a convention changes, and review the images.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use testkit::scenes;

fn main() -> Result<()> {
    let mut out = testkit::workspace_root().join("assets/reference");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = PathBuf::from(args.next().context("--out needs a value")?),
            other => bail!("unknown argument {other:?}"),
        }
    }
    for scene in scenes::all() {
        let path = out.join(format!("{}.png", scene.name));
        testkit::reference::render(&scene, scene.output_size).save_png(&path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
