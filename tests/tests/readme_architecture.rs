//! The README's architecture section names every module, and nothing that is
//! gone.
//!
//! Under "### importer/src" and "### compositor/src" the README lists one file
//! per line, relative to that directory. Every `.rs` file of the two source
//! trees must be listed, and every listed file must exist, so a module added,
//! moved or removed without the README following fails here. The "A client
//! dma-buf's way" block must read in three hops, each naming a file that
//! exists. Only `std` is used, so the file also runs alone from the
//! repository root:
//!
//!   rustc --edition 2021 --test tests/tests/readme_architecture.rs -o target/readme_architecture && target/readme_architecture

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    match option_env!("CARGO_MANIFEST_DIR") {
        Some(dir) => Path::new(dir).join(".."),
        None => std::env::current_dir().expect("cwd"),
    }
}

fn readme() -> String {
    fs::read_to_string(repo_root().join("README.md")).expect("README.md")
}

/// Every `.rs` file under `dir`, relative to it.
fn source_files(dir: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(base).expect("under base");
                out.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// The first code block after the heading `heading`.
fn block_after<'a>(text: &'a str, heading: &str) -> &'a str {
    let at = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no heading {heading:?}"));
    let rest = &text[at + heading.len() + 2..];
    let open = rest.find("```").expect("a code block after the heading") + 3;
    let body = &rest[open..];
    let body = &body[body.find('\n').expect("code block line") + 1..];
    &body[..body.find("```").expect("closed code block")]
}

/// The file named at the start of each line of a listing block.
fn listed_files(block: &str) -> BTreeSet<String> {
    block
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.ends_with(".rs"))
        .map(str::to_owned)
        .collect()
}

fn check_listing(crate_dir: &str) {
    let listed = listed_files(block_after(&readme(), &format!("### {crate_dir}")));
    let actual = source_files(&repo_root().join(crate_dir));
    let missing: Vec<_> = actual.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&actual).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README's {crate_dir} listing is out of date:\n  not listed: {missing:?}\n  listed but gone: {stale:?}"
    );
}

#[test]
fn readme_lists_every_importer_module() {
    check_listing("importer/src");
}

#[test]
fn readme_lists_every_compositor_module() {
    check_listing("compositor/src");
}

#[test]
fn a_client_dmabuf_reaches_its_vkimage_in_three_hops() {
    let text = readme();
    let block = block_after(&text, "### A client dma-buf's way");
    let files: Vec<&str> = block
        .lines()
        .filter_map(|l| l.trim_start().trim_start_matches('→').split_whitespace().next())
        .collect();
    assert_eq!(files.len(), 4, "three hops join four files: {files:?}");
    assert!(
        files[0].contains("handlers/dmabuf.rs"),
        "starts at the protocol: {files:?}"
    );
    assert!(files[3].contains("dmabuf_image.rs"), "ends at the VkImage: {files:?}");
    for f in &files {
        assert!(repo_root().join(f).is_file(), "{f} does not exist");
    }
}

#[test]
fn a_listing_with_a_missing_module_is_caught() {
    let text = "\n### x/src\n\n```\nlib.rs   root\ngone.rs  removed\n```\n";
    let listed = listed_files(block_after(text, "### x/src"));
    let actual: BTreeSet<String> = ["lib.rs", "new.rs"].iter().map(|s| s.to_string()).collect();
    assert_eq!(actual.difference(&listed).collect::<Vec<_>>(), ["new.rs"]);
    assert_eq!(listed.difference(&actual).collect::<Vec<_>>(), ["gone.rs"]);
}
