//! Module layering of the importer and the compositor, checked from the source.
//!
//! The importer is built in layers that only import downward: the dma-buf
//! description and formats (with the ioctl and lockdep basics under them) →
//! sync primitives → reservations → CPU mapping → Vulkan → the import decision
//! → the renderer core. A module may use its own layer or the ones below it,
//! never one above, and the top-level modules form no cycle. Inside a directory
//! module the children form no cycle either (a `mod.rs` re-exporting its
//! children does not count, a child reaching a sibling through such a
//! re-export does). In the compositor, `render` is thin glue over the importer
//! and smithay and uses no other module of the crate, and apart from the
//! `state` hub, which everything uses, the top-level modules are acyclic.
//!
//! The checker reads `use` declarations and `crate::`/`super::`/`self::` paths
//! (comments, literals and `#[cfg(test)]` items are ignored) and resolves each
//! to the longest known module, following the `use`s of the modules on the way,
//! so `crate::vulkan::VkContext` is `vulkan::context`. Only `std` is used, so
//! the file also runs alone, from the repository root:
//!
//!   rustc --edition 2021 --test tests/tests/module_layers.rs -o target/module_layers && target/module_layers

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

// ------------------------------------------------------------------ the rules

/// What to enforce on one crate's module graph.
#[derive(Default)]
struct Rules {
    crate_name: &'static str,
    /// Groups of top-level modules, lowest first; every top-level module must
    /// be listed. Empty: no layer rule.
    layers: Vec<Vec<&'static str>>,
    /// The children of every directory module form no cycle.
    siblings_acyclic: bool,
    /// Top-level modules that may use no other top-level module.
    isolated: Vec<&'static str>,
    /// Without this module, the top-level modules form no cycle.
    hub: Option<&'static str>,
}

fn importer_rules() -> Rules {
    let layers = [
        &["lockdep", "ioctl"][..],
        &["format", "dmabuf"],
        &["sync"],
        &["reservation"],
        &["cpu"],
        &["vulkan"],
        &["import"],
        &["renderer"],
    ];
    let layers = layers.iter().map(|group| group.to_vec()).collect();
    Rules {
        crate_name: "importer",
        layers,
        siblings_acyclic: true,
        ..Rules::default()
    }
}

fn compositor_rules() -> Rules {
    let (isolated, hub) = (vec!["render"], Some("state"));
    Rules {
        crate_name: "compositor",
        siblings_acyclic: true,
        isolated,
        hub,
        ..Rules::default()
    }
}

// ------------------------------------------------------------------ the model

/// A module path from the crate root; the root is empty.
type ModPath = Vec<String>;

/// Where a reference is written: file relative to `src/`, line, what it says.
#[derive(Clone, Debug)]
struct Site {
    file: String,
    line: usize,
    text: String,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.text)
    }
}

/// A path written in module `from`, made absolute (from the crate root).
struct Reference {
    from: ModPath,
    path: ModPath,
    site: Site,
}

/// What a module file declares at its top level.
#[derive(Default)]
struct ModuleInfo {
    /// `use` bindings, public or not (children see both): name → absolute path.
    imports: HashMap<String, ModPath>,
    /// Targets of `use path::*`.
    globs: Vec<ModPath>,
    /// Names of the items defined here (fn, struct, mod, …).
    defines: BTreeSet<String>,
}

#[derive(Default)]
struct Crate {
    modules: BTreeMap<ModPath, ModuleInfo>,
    refs: Vec<Reference>,
}

// ------------------------------------------------------------------ files → modules

fn load_crate(src: &Path) -> Crate {
    let mut files = Vec::new();
    walk(src, src, &mut files);
    if src.join("lib.rs").exists() {
        files.retain(|(_, rel, _)| rel != "main.rs"); // the binary uses the library by name
    }
    files.sort();
    let known: BTreeSet<ModPath> = files.iter().map(|f| f.0.clone()).collect();
    let mut krate = Crate::default();
    for (module, rel, path) in files {
        let source = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let (info, refs) = scan_file(&module, &rel, &source, &known);
        krate.modules.insert(module, info);
        krate.refs.extend(refs);
    }
    krate
}

/// Every `.rs` file under `dir` except `src/bin/`: (module, path relative to src, path).
fn walk(src: &Path, dir: &Path, out: &mut Vec<(ModPath, String, PathBuf)>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        let rel = path.strip_prefix(src).unwrap().to_string_lossy().into_owned();
        if path.is_dir() && rel != "bin" {
            walk(src, &path, out);
        } else if rel.ends_with(".rs") {
            out.push((module_of(&rel), rel, path));
        }
    }
}

/// `lib.rs` → root, `a.rs` and `a/mod.rs` → `a`, `a/b.rs` → `a::b`.
fn module_of(rel: &str) -> ModPath {
    let mut parts: ModPath = rel.trim_end_matches(".rs").split('/').map(String::from).collect();
    if parts == ["lib"] || parts == ["main"] || parts.last().unwrap() == "mod" {
        parts.pop();
    }
    parts
}

// ------------------------------------------------------------------ lexing

/// Blanks comments, string and char literals; newlines stay, so lines stay right.
fn strip_comments_and_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let (mut out, mut i) = (String::with_capacity(src.len()), 0);
    while i < c.len() {
        let (end, blank) = literal_or_comment_end(&c, i).map_or((i + 1, false), |end| (end, true));
        out.extend(c[i..end].iter().map(|&ch| if blank && ch != '\n' { ' ' } else { ch }));
        i = end;
    }
    out
}

/// If a comment or literal starts at `i`, the index just past it.
fn literal_or_comment_end(c: &[char], i: usize) -> Option<usize> {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let find = |from: usize, pat: &dyn Fn(usize) -> bool| (from..c.len()).find(|&k| pat(k)).unwrap_or(c.len());
    match c[i] {
        '/' if at(i + 1) == '/' => Some(find(i, &|k| c[k] == '\n')),
        '/' if at(i + 1) == '*' => {
            let (mut depth, mut k) = (0, i);
            while k < c.len() {
                match (c[k], at(k + 1)) {
                    ('/', '*') => (depth, k) = (depth + 1, k + 2),
                    ('*', '/') => (depth, k) = (depth - 1, k + 2),
                    _ => k += 1,
                }
                if depth == 0 {
                    return Some(k);
                }
            }
            Some(c.len())
        }
        '"' => {
            let mut k = i + 1;
            while k < c.len() && c[k] != '"' {
                k += if c[k] == '\\' { 2 } else { 1 };
            }
            Some((k + 1).min(c.len()))
        }
        'r' | 'b' if i == 0 || !is_ident_char(c[i - 1]) => {
            let k = if c[i] == 'b' { i + 1 } else { i };
            let hashes = (k + 1..c.len()).take_while(|&h| c[h] == '#').count();
            if at(k) != 'r' || at(k + 1 + hashes) != '"' {
                return None; // an identifier, a raw identifier `r#type`, or `b"…"` (a plain string next)
            }
            let closes = |e: usize| c[e] == '"' && (1..=hashes).all(|h| at(e + h) == '#');
            Some((find(k + 2 + hashes, &closes) + 1 + hashes).min(c.len()))
        }
        '\'' if at(i + 1) == '\\' => Some((find(i + 3, &|k| c[k] == '\'') + 1).min(c.len())),
        '\'' if at(i + 2) == '\'' => Some(i + 3),
        _ => None, // a `'` here starts a lifetime or a label
    }
}

fn is_ident_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_'
}

fn is_ident(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

#[derive(Clone, Debug)]
struct Token {
    text: String,
    line: usize,
}

/// Identifiers (raw ones without `r#`), numbers, `::`, and single punctuation.
fn tokenize(clean: &str) -> Vec<Token> {
    let c: Vec<char> = clean.chars().collect();
    let (mut toks, mut i, mut line) = (Vec::new(), 0, 1);
    while i < c.len() {
        line += usize::from(c[i] == '\n');
        if c[i].is_whitespace() {
            i += 1;
            continue;
        }
        let mut start = i;
        if c[i] == 'r' && c.get(i + 1) == Some(&'#') && c.get(i + 2).is_some_and(|&n| is_ident_char(n)) {
            start += 2; // r#ident
        }
        i = (start..c.len()).find(|&k| !is_ident_char(c[k])).unwrap_or(c.len());
        if i == start {
            i += 1 + usize::from(c[i] == ':' && c.get(i + 1) == Some(&':'));
        }
        let text = c[start..i].iter().collect();
        toks.push(Token { text, line });
    }
    toks
}

fn text(toks: &[Token], i: usize) -> &str {
    toks.get(i).map_or("", |t| t.text.as_str())
}

/// Drops every item under `#[cfg(test)]`, and everything under `#![cfg(test)]`.
fn drop_test_items(toks: Vec<Token>) -> Vec<Token> {
    let (mut out, mut i) = (Vec::new(), 0);
    while i < toks.len() {
        let attr: String = (i..i + 8).map(|k| text(&toks, k)).collect();
        if attr.starts_with("#![cfg(test)]") {
            return Vec::new();
        }
        if !attr.starts_with("#[cfg(test)]") {
            out.push(toks[i].clone());
            i += 1;
            continue;
        }
        i += 7;
        while text(&toks, i) == "#" && text(&toks, i + 1) == "[" {
            i = group_end(&toks, i + 1); // further attributes
        }
        i = item_end(&toks, i);
    }
    out
}

/// Index just past the bracket group opening at `open`.
fn group_end(toks: &[Token], open: usize) -> usize {
    let mut depth = 0i32;
    for k in open..toks.len() {
        depth += match text(toks, k) {
            "(" | "[" | "{" => 1,
            ")" | "]" | "}" => -1,
            _ => 0,
        };
        if depth == 0 {
            return k + 1;
        }
    }
    toks.len()
}

/// Index just past the item starting at `i`: its `;` or its `{ … }` body.
fn item_end(toks: &[Token], mut i: usize) -> usize {
    while i < toks.len() {
        match text(toks, i) {
            ";" => return i + 1,
            "{" => return group_end(toks, i),
            "(" | "[" => i = group_end(toks, i),
            _ => i += 1,
        }
    }
    i
}

// ------------------------------------------------------------------ use trees and paths

/// One flattened path of a `use` tree; a glob ends in `*`.
#[derive(Debug)]
struct UseLeaf {
    segs: Vec<String>,
    alias: Option<String>,
    line: usize,
}

impl fmt::Display for UseLeaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.segs.join("::"))?;
        self.alias.as_ref().map_or(Ok(()), |a| write!(f, " as {a}"))
    }
}

/// Parses the tree after `use` at `start`; returns its leaves and the index past `;`.
fn parse_use(toks: &[Token], start: usize) -> (Vec<UseLeaf>, usize) {
    let (mut leaves, mut i) = (Vec::new(), start);
    use_tree(toks, &mut i, Vec::new(), &mut leaves);
    while i < toks.len() && text(toks, i) != ";" {
        i += 1;
    }
    (leaves, i + 1)
}

fn use_tree(toks: &[Token], i: &mut usize, mut segs: Vec<String>, out: &mut Vec<UseLeaf>) {
    loop {
        let tok = text(toks, *i);
        if tok == "{" {
            *i += 1;
            while *i < toks.len() && text(toks, *i) != "}" {
                let before = *i;
                use_tree(toks, i, segs.clone(), out);
                match text(toks, *i) {
                    "," => *i += 1,
                    _ if *i == before => return, // malformed: the caller skips to `;`
                    _ => {}
                }
            }
            *i += 1;
            return;
        }
        if !is_ident(tok) && tok != "*" && !(tok == "::" && segs.is_empty()) {
            return;
        }
        let line = toks[*i].line;
        segs.push(tok.to_string()); // a leading `::` stays: always another crate
        *i += 1;
        if tok == "::" || text(toks, *i) == "::" {
            *i += usize::from(tok != "::");
            continue;
        }
        let alias = (text(toks, *i) == "as").then(|| text(toks, *i + 1).to_string());
        *i += if alias.is_some() { 2 } else { 0 };
        if segs.len() > 1 && segs.last().unwrap() == "self" {
            segs.pop();
        }
        out.push(UseLeaf { segs, alias, line });
        return;
    }
}

/// `crate::`/`self::`/`super::` paths, and paths starting with a child module
/// of `here`, made absolute; `None` for other crates.
fn absolutize(segs: &[String], here: &[String], known: &BTreeSet<ModPath>) -> Option<ModPath> {
    let first = segs.first()?.as_str();
    if first == "crate" {
        return Some(segs[1..].to_vec());
    }
    if first == "self" || first == "super" {
        let rest = if first == "self" { &segs[1..] } else { segs };
        let ups = rest.iter().take_while(|s| *s == "super").count();
        return Some([&here[..here.len().checked_sub(ups)?], &rest[ups..]].concat());
    }
    known
        .contains(&[here, &segs[..1]].concat())
        .then(|| [here, segs].concat())
}

const ITEM_KEYWORDS: [&str; 9] = [
    "fn", "struct", "enum", "trait", "type", "const", "static", "union", "mod",
];

/// The references and top-level declarations of one file of module `module`.
fn scan_file(module: &ModPath, rel: &str, source: &str, known: &BTreeSet<ModPath>) -> (ModuleInfo, Vec<Reference>) {
    let lines: Vec<&str> = source.lines().collect();
    let toks = drop_test_items(tokenize(&strip_comments_and_literals(source)));
    let (mut info, mut refs) = (ModuleInfo::default(), Vec::new());
    let site = |line: usize, text: String| Site {
        file: rel.to_string(),
        line,
        text,
    };
    let mut depth = 0usize;
    let mut inline: Vec<(String, usize)> = Vec::new(); // `mod x { … }`, and the depth inside it
    let mut i = 0;
    while i < toks.len() {
        let here: ModPath = module.iter().chain(inline.iter().map(|(n, _)| n)).cloned().collect();
        let (tok, next) = (text(&toks, i), text(&toks, i + 1));
        match tok {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                inline.retain(|(_, d)| *d <= depth);
            }
            "mod" if is_ident(next) && text(&toks, i + 2) == "{" => inline.push((next.to_string(), depth + 1)),
            "use" => {
                let (leaves, after) = parse_use(&toks, i + 1);
                for leaf in leaves {
                    let Some(mut path) = absolutize(&leaf.segs, &here, known) else {
                        continue;
                    };
                    let name = leaf.alias.clone().unwrap_or_else(|| leaf.segs.last().unwrap().clone());
                    if name == "*" {
                        path.pop();
                    }
                    if depth == 0 && name == "*" {
                        info.globs.push(path.clone());
                    } else if depth == 0 {
                        info.imports.entry(name).or_insert_with(|| path.clone());
                    }
                    let (from, site) = (here.clone(), site(leaf.line, format!("use {leaf}")));
                    refs.push(Reference { from, path, site });
                }
                i = after;
                continue;
            }
            "crate" | "self" | "super" if next == "::" && (i == 0 || text(&toks, i - 1) != "::") => {
                let mut segs = vec![tok.to_string()];
                i += 1;
                while text(&toks, i) == "::" && is_ident(text(&toks, i + 1)) {
                    segs.push(text(&toks, i + 1).to_string());
                    i += 2;
                }
                if let Some(path) = absolutize(&segs, &here, known) {
                    let line = toks[i - 1].line;
                    let shown = lines.get(line - 1).unwrap_or(&"").trim().chars().take(100).collect();
                    let site = site(line, shown);
                    refs.push(Reference { from: here, path, site });
                }
                continue;
            }
            _ => {}
        }
        let item = ITEM_KEYWORDS.contains(&tok);
        if depth == 0 && (item && is_ident(next) || tok == "macro_rules") {
            info.defines
                .insert(text(&toks, i + if item { 1 } else { 2 }).to_string());
        }
        i += 1;
    }
    (info, refs)
}

// ------------------------------------------------------------------ resolution and graphs

impl Crate {
    /// The module a path names: its longest module prefix, or where that
    /// module's `use` (or `use …::*`) of the next name leads.
    fn resolve(&self, path: &[String], hops: usize) -> ModPath {
        let n = (1..=path.len())
            .take_while(|&n| self.modules.contains_key(&path[..n]))
            .last()
            .unwrap_or(0);
        let module = path[..n].to_vec();
        let (Some(name), Some(info)) = (path.get(n), self.modules.get(&module)) else {
            return module;
        };
        if hops > 8 || info.defines.contains(name) {
            return module;
        }
        if let Some(target) = info.imports.get(name) {
            return self.resolve(&[target.as_slice(), &path[n + 1..]].concat(), hops + 1);
        }
        let provides = |g: &&ModPath| {
            self.modules
                .get(*g)
                .is_some_and(|m| m.defines.contains(name) || m.imports.contains_key(name))
        };
        let only = info.globs.first().filter(|_| info.globs.len() == 1);
        match info.globs.iter().find(provides).or(only) {
            Some(glob) => self.resolve(&[glob.as_slice(), &path[n..]].concat(), hops + 1),
            None => module,
        }
    }
}

/// Edges among the children of one module: (from child, to child) → first site.
type Edges = BTreeMap<(String, String), Site>;

/// The edges among the children of every module, by parent. A reference
/// between a module and one of its ancestors is no edge.
fn sibling_edges(krate: &Crate) -> BTreeMap<ModPath, Edges> {
    let mut by_parent: BTreeMap<ModPath, Edges> = BTreeMap::new();
    for r in &krate.refs {
        let to = krate.resolve(&r.path, 0);
        let k = r.from.iter().zip(&to).take_while(|(a, b)| a == b).count();
        if k < r.from.len() && k < to.len() {
            let edges = by_parent.entry(to[..k].to_vec()).or_default();
            edges
                .entry((r.from[k].clone(), to[k].clone()))
                .or_insert_with(|| r.site.clone());
        }
    }
    by_parent
}

/// The strongly connected sets of two or more nodes.
fn cycles(edges: &Edges) -> BTreeSet<BTreeSet<&String>> {
    let reach = |from: &String| {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![from]);
        while let Some(n) = todo.pop() {
            for (a, b) in edges.keys() {
                if a == n && seen.insert(b) {
                    todo.push(b);
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<&String>> = edges.keys().map(|(a, _)| (a, reach(a))).collect();
    let mut sets = BTreeSet::new();
    for (n, reached) in &reaches {
        let scc: BTreeSet<&String> = reached
            .iter()
            .filter(|m| reaches.get(*m).is_some_and(|r| r.contains(n)))
            .copied()
            .collect();
        if scc.len() > 1 {
            sets.insert(scc);
        }
    }
    sets
}

fn report_cycles(kind: &str, prefix: &str, edges: &Edges, out: &mut Vec<String>) {
    for scc in cycles(edges) {
        let members: Vec<&str> = scc.iter().map(|m| m.as_str()).collect();
        let mut msg = format!("{kind}: {prefix}::{{{}}}", members.join(", "));
        for ((a, b), site) in edges.iter().filter(|((a, b), _)| scc.contains(a) && scc.contains(b)) {
            msg += &format!("\n      {a} -> {b} at {site}");
        }
        out.push(msg);
    }
}

/// Every violation of `rules` in the crate whose sources are at `src`.
fn check(src: &Path, rules: &Rules) -> Vec<String> {
    let krate = load_crate(src);
    let by_parent = sibling_edges(&krate);
    let (c, mut out) = (rules.crate_name, Vec::new());
    let top = by_parent.get(&ModPath::new()).cloned().unwrap_or_default();
    if !rules.layers.is_empty() {
        let layer_of = |m: &str| rules.layers.iter().position(|group| group.contains(&m));
        for m in krate
            .modules
            .keys()
            .filter(|m| m.len() == 1 && layer_of(&m[0]).is_none())
        {
            out.push(format!(
                "layer: {c}::{} is not in the layer list; place it in a layer",
                m[0]
            ));
        }
        for ((a, b), site) in &top {
            if let (Some(la), Some(lb)) = (layer_of(a), layer_of(b)) {
                if lb > la {
                    out.push(format!(
                        "layer: {c}::{a} (layer {la}) uses {c}::{b} (layer {lb}) at {site}"
                    ));
                }
            }
        }
        report_cycles("cycle", c, &top, &mut out);
    }
    for ((a, b), site) in top.iter().filter(|((a, _), _)| rules.isolated.contains(&a.as_str())) {
        out.push(format!("isolated: {c}::{a} uses {c}::{b} at {site}"));
    }
    if let Some(hub) = rules.hub {
        let mut without = top.clone();
        without.retain(|(a, b), _| a != hub && b != hub);
        report_cycles(&format!("cycle (not through the hub {hub})"), c, &without, &mut out);
    }
    for (parent, edges) in by_parent
        .iter()
        .filter(|(p, _)| rules.siblings_acyclic && !p.is_empty())
    {
        report_cycles("sibling cycle", &format!("{c}::{}", parent.join("::")), edges, &mut out);
    }
    out
}

// ------------------------------------------------------------------ test helpers

fn repo_root() -> PathBuf {
    let tests = option_env!("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let tests = tests.unwrap_or_else(|| std::env::current_dir().expect("cwd").join("tests"));
    tests
        .parent()
        .expect("the testkit crate sits in the repository")
        .to_path_buf()
}

fn assert_clean(what: &str, violations: &[String]) {
    if !violations.is_empty() {
        panic!(
            "{what}: {} violation(s):\n\n  {}\n",
            violations.len(),
            violations.join("\n  ")
        );
    }
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempTree(PathBuf);

impl TempTree {
    fn new() -> TempTree {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("module_layers-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create a temp dir");
        TempTree(dir)
    }

    /// A tree of source files, paths relative to its `src/` (the directory itself).
    fn with(files: &[(&str, &str)]) -> TempTree {
        let tree = TempTree::new();
        for (rel, source) in files {
            let path = tree.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, source).unwrap();
        }
        tree
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().map(Result::unwrap) {
        let dest = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// The edges among the children of `parent`, as "a -> b".
fn edges_in(src: &Path, parent: &[&str]) -> BTreeSet<String> {
    let by_parent = sibling_edges(&load_crate(src));
    let edges = by_parent.get(&parent.iter().map(|s| s.to_string()).collect::<ModPath>());
    edges.map_or_else(BTreeSet::new, |e| {
        e.keys().map(|(a, b)| format!("{a} -> {b}")).collect()
    })
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ------------------------------------------------------------------ the real trees

#[test]
fn importer_imports_only_downward() {
    let violations = check(&repo_root().join("importer/src"), &importer_rules());
    assert_clean("importer module layers", &violations);
}

#[test]
fn compositor_render_is_thin_glue() {
    let violations = check(&repo_root().join("compositor/src"), &compositor_rules());
    assert_clean("compositor module layers", &violations);
}

#[test]
fn a_planted_cycle_fails() {
    let tree = TempTree::new();
    let src = tree.0.join("src");
    copy_dir(&repo_root().join("importer/src"), &src);
    let before: BTreeSet<String> = check(&src, &importer_rules()).into_iter().collect();

    let format_rs = src.join("format.rs");
    let source = fs::read_to_string(&format_rs).unwrap();
    fs::write(
        &format_rs,
        source + "\npub(crate) use crate::vulkan::VkContext as _Planted;\n",
    )
    .unwrap();
    let after = check(&src, &importer_rules());

    let new: Vec<&String> = after.iter().filter(|v| !before.contains(*v)).collect();
    let found = |kind: &str| {
        new.iter()
            .any(|v| v.starts_with(kind) && v.contains("format") && v.contains("vulkan"))
    };
    assert!(
        found("layer:"),
        "no new layer violation format -> vulkan; new: {new:#?}"
    );
    assert!(found("cycle:"), "no new cycle through format and vulkan; new: {new:#?}");
}

// ------------------------------------------------------------------ the parser

#[test]
fn nested_use_trees_are_flattened() {
    let src = "pub(crate) use crate::{b::{self, C}, c::d::{E as F, *},}; pub use super::super::x;";
    let toks = tokenize(src);
    let (leaves, next) = parse_use(&toks, 5);
    let shown: Vec<String> = leaves.iter().map(|l| l.to_string()).collect();
    assert_eq!(
        shown,
        ["crate::b", "crate::b::C", "crate::c::d::E as F", "crate::c::d::*"]
    );
    assert_eq!(parse_use(&toks, next + 2).0[0].to_string(), "super::super::x");

    let tree = TempTree::with(&[
        ("lib.rs", "mod a; mod b; mod c;"),
        ("a.rs", "use crate::{b::{self, C}, c::d::{E as F, *}};"),
        ("b.rs", "pub struct C;"),
        ("c/mod.rs", "pub mod d;"),
        ("c/d.rs", "pub struct E;"),
    ]);
    assert_eq!(edges_in(&tree.0, &[]), set(&["a -> b", "a -> c"]));
}

#[test]
fn super_super_and_code_paths_resolve() {
    let tree = TempTree::with(&[
        ("lib.rs", "pub mod a;"),
        ("a/mod.rs", "pub mod b; pub mod x; pub mod y;"),
        ("a/b/mod.rs", "pub mod c;"),
        ("a/b/c.rs", "use super::super::x::Y;\nfn f() { super::super::y::g(); }"),
        ("a/x.rs", "pub struct Y;"),
        ("a/y.rs", "pub fn g() { let _ = crate::a::x::Y; }"),
    ]);
    assert_eq!(edges_in(&tree.0, &["a"]), set(&["b -> x", "b -> y", "y -> x"]));
    assert_clean(
        "super::super tree",
        &check(
            &tree.0,
            &Rules {
                siblings_acyclic: true,
                ..Rules::default()
            },
        ),
    );
}

#[test]
fn a_re_export_through_mod_rs_makes_a_sibling_cycle() {
    let mod_rs = "pub mod caps;\npub mod ctx;\npub mod extra;\n\
                  pub use self::caps::Caps;\npub use ctx::{Ctx, Other};\npub use extra::*;";
    let tree = TempTree::with(&[
        ("lib.rs", "pub mod v;"),
        ("v/mod.rs", mod_rs),
        (
            "v/ctx.rs",
            "use super::{Caps, Extra};\npub struct Ctx(Caps, Extra);\npub struct Other;",
        ),
        ("v/caps.rs", "pub struct Caps;\npub fn probe(_: &super::Ctx) {}"),
        ("v/extra.rs", "pub struct Extra;"),
    ]);
    let edges = set(&["caps -> ctx", "ctx -> caps", "ctx -> extra"]);
    assert_eq!(edges_in(&tree.0, &["v"]), edges);
    let rules = Rules {
        crate_name: "k",
        siblings_acyclic: true,
        ..Rules::default()
    };
    let expected = "sibling cycle: k::v::{caps, ctx}\
                    \n      caps -> ctx at v/caps.rs:2: pub fn probe(_: &super::Ctx) {}\
                    \n      ctx -> caps at v/ctx.rs:1: use super::Caps";
    assert_eq!(check(&tree.0, &rules), [expected]);
}

#[test]
fn comments_and_literals_are_ignored() {
    let a = r####"
// use crate::b::X;
/// See [`crate::b::X`].
/* use crate::b::X; /* nested */ crate::b::f(); */
fn f<'a>(s: &'a str) -> char {
    let _ = "crate::b::x \" use crate::b;";
    let _ = r#"use crate::b::X; "quoted""#;
    let _ = b"crate::b";
    let _ = '"'; let _ = '\''; let _ = r#type;
    'outer: loop { break 'outer; }
    crate::c::g();
    '{'
}
"####;
    let tree = TempTree::with(&[
        ("lib.rs", "mod a; mod b; mod c;"),
        ("a.rs", a),
        ("b.rs", ""),
        ("c.rs", ""),
    ]);
    assert_eq!(edges_in(&tree.0, &[]), set(&["a -> c"]));
    let krate = load_crate(&tree.0);
    let line = krate.refs.iter().find(|r| r.path == ["c", "g"]).map(|r| r.site.line);
    assert_eq!(line, Some(11), "line numbers survive the blanking");
}

#[test]
fn cfg_test_items_are_ignored() {
    let a = "#[cfg(test)]\n#[allow(unused)]\nmod tests {\n    use crate::b::X;\n    fn t() { crate::b::f(); }\n}\n\
             #[cfg(test)]\nuse crate::b::Y;\n#[cfg(test)]\nconst N: [u8; 2] = [0; 2];\nuse crate::c::Z;\n";
    let tree = TempTree::with(&[
        ("lib.rs", "mod a; mod b; mod c;"),
        ("a.rs", a),
        ("b.rs", ""),
        ("c.rs", ""),
    ]);
    assert_eq!(edges_in(&tree.0, &[]), set(&["a -> c"]));
}

#[test]
fn a_clean_layered_tree_passes_and_an_upward_import_does_not() {
    let tree = TempTree::with(&[
        ("lib.rs", "pub mod high; pub mod low; pub mod mid;\npub use mid::Thing;"),
        ("low.rs", "pub struct Base;"),
        ("mid/mod.rs", "mod x;\nmod y;\npub use y::Thing;\nuse crate::low::Base;"),
        ("mid/x.rs", "pub(crate) fn helper() {}"),
        (
            "mid/y.rs",
            "use super::x;\npub struct Thing(super::Base);\nfn f() { x::helper() }",
        ),
        ("high.rs", "use crate::{low::Base, Thing};\nuse crate::mid::*;"),
        ("bin/tool.rs", "use crate::high::Anything;"),
    ]);
    let rules = || {
        let layers = vec![vec!["low"], vec!["mid"], vec!["high"]];
        Rules {
            crate_name: "k",
            layers,
            siblings_acyclic: true,
            isolated: vec!["low"],
            hub: Some("mid"),
        }
    };
    assert_eq!(
        edges_in(&tree.0, &[]),
        set(&["high -> low", "high -> mid", "mid -> low"])
    );
    assert_clean("clean layered tree", &check(&tree.0, &rules()));

    fs::write(tree.0.join("low.rs"), "pub struct Base;\nfn up() { crate::Thing; }").unwrap();
    fs::write(tree.0.join("extra.rs"), "").unwrap();
    let up = "low.rs:2: fn up() { crate::Thing; }";
    let expected = [
        "layer: k::extra is not in the layer list; place it in a layer".to_string(),
        format!("layer: k::low (layer 0) uses k::mid (layer 1) at {up}"),
        format!(
            "cycle: k::{{low, mid}}\n      low -> mid at {up}\n      mid -> low at mid/mod.rs:4: use crate::low::Base"
        ),
        format!("isolated: k::low uses k::mid at {up}"),
    ];
    assert_eq!(check(&tree.0, &rules()), expected);
}
