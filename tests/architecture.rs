//! The dependency direction of `docs/architecture.md`, checked on the source: every
//! `crate::` path in `src/` names the top-level module it reaches, and no top-level
//! module may reach one in a layer above its own, nor close a cycle inside its layer.
//!
//! Layers, from the entry down: startup (assembly) -> HTTP surfaces -> shared state ->
//! services -> foundation. Adding a top-level module means placing it here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LAYERS: &[(&str, &[&str])] = &[
    ("entry", &["startup"]),
    ("http", &["api", "dashboard", "server"]),
    ("state", &["state"]),
    (
        "services",
        &[
            "summary",
            "series",
            "limiter",
            "cache",
            "upstream",
            "store",
            "breaker",
            "redis",
            "telemetry",
        ],
    ),
    ("foundation", &["domain", "config", "http"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for `lib.rs`, `main.rs`).
fn owner(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// Top-level modules named by `crate::` paths in `code` (comments skipped), with
/// grouped imports (`crate::{a, b::c}`) read too.
fn reached(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group
                    .split(['}', ';'])
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .collect(),
                None => vec![rest],
            };
            for name in names {
                let ident: String = name
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !ident.is_empty() {
                    found.insert(ident);
                }
            }
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // module -> module it reaches -> files that do
    let mut edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in files {
        let Some(from) = owner(&src, &file) else {
            continue;
        };
        let code = std::fs::read_to_string(&file).expect("readable source");
        let targets = edges.entry(from.clone()).or_default();
        for to in reached(&code) {
            if to != from {
                let rel = file.strip_prefix(&src).unwrap_or(&file);
                targets
                    .entry(to)
                    .or_default()
                    .insert(rel.display().to_string());
            }
        }
    }
    edges
}

#[test]
fn every_top_level_module_has_a_layer() {
    let unplaced: Vec<_> = graph()
        .keys()
        .filter(|m| layer_of(m).is_none())
        .cloned()
        .collect();
    assert!(
        unplaced.is_empty(),
        "place these modules in a layer (tests/architecture.rs, docs/architecture.md): {unplaced:?}"
    );
}

#[test]
fn imports_point_down_the_layers() {
    let mut upward = Vec::new();
    for (from, targets) in graph() {
        let Some(own) = layer_of(&from) else { continue };
        for (to, files) in targets {
            if layer_of(&to).is_some_and(|theirs| theirs < own) {
                upward.push(format!(
                    "{from} ({}) -> {to} ({}) in {files:?}",
                    LAYERS[own].0,
                    LAYERS[layer_of(&to).unwrap_or(0)].0
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports against the dependency direction:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_cycles_between_top_level_modules() {
    let edges = graph();
    // Depth-first search; a back edge closes a cycle, reported with its path.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            cycles.push(cycle.join(" -> "));
            return;
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flat_map(|t| t.keys()) {
            visit(next, edges, path, done, cycles);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let (mut done, mut cycles) = (BTreeSet::new(), Vec::new());
    for node in edges.keys() {
        visit(node, &edges, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(
        cycles.is_empty(),
        "cycles between top-level modules:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_scanner_sees_every_form_of_path() {
    let code = "use crate::a::B;\nuse crate::{b, c::D};\nlet x = crate::d::f(); // crate::e\n";
    let found: Vec<_> = reached(code).into_iter().collect();
    assert_eq!(found, ["a", "b", "c", "d"]);
}
