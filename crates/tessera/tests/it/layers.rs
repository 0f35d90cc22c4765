//! The server crate's import graph, read from its source (`crate::…` and `super::…` paths, file
//! by file): no import cycle between files, so that no change brings one back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Module = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The paths named after `crate::` or `super::` in `code`, braces expanded
/// (`crate::{a::{self, B}, c}` names `a`, `a::B` and `c`).
fn paths(code: &str, base: &str) -> Vec<Vec<String>> {
    fn tree(s: &[u8], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut path = prefix;
        loop {
            while *i < s.len() && s[*i] == b' ' {
                *i += 1;
            }
            if *i < s.len() && s[*i] == b'{' {
                *i += 1;
                loop {
                    tree(s, i, path.clone(), out);
                    while *i < s.len() && matches!(s[*i], b' ' | b'\n' | b',') {
                        *i += 1;
                    }
                    if *i >= s.len() || s[*i] == b'}' {
                        *i += 1;
                        return;
                    }
                }
            }
            let start = *i;
            while *i < s.len() && (s[*i].is_ascii_alphanumeric() || s[*i] == b'_') {
                *i += 1;
            }
            if start == *i {
                out.push(path);
                return;
            }
            path.push(String::from_utf8_lossy(&s[start..*i]).into_owned());
            if s[*i..].starts_with(b"::") {
                *i += 2;
            } else {
                out.push(path);
                return;
            }
        }
    }
    let flat: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| format!("{}\n", l.trim()))
        .collect::<String>()
        .replace(",\n", ", ")
        .replace("{\n", "{")
        .replace("\n}", "}");
    let s = flat.as_bytes();
    let needle = format!("{base}::");
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(found) = flat[at..].find(&needle) {
        let begin = at + found;
        let standalone = begin == 0 || !(s[begin - 1].is_ascii_alphanumeric() || s[begin - 1] == b'_');
        let mut i = begin + needle.len();
        if standalone {
            tree(s, &mut i, Vec::new(), &mut out);
        }
        at = i.max(begin + needle.len());
    }
    out
}

/// Strongly connected components of more than one module (Tarjan).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<BTreeSet<Module>> {
    struct T<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        on: BTreeSet<Module>,
        out: Vec<BTreeSet<Module>>,
    }
    fn visit(t: &mut T, v: &Module) {
        let n = t.index.len();
        t.index.insert(v.clone(), n);
        t.low.insert(v.clone(), n);
        t.stack.push(v.clone());
        t.on.insert(v.clone());
        for w in t.edges[v].clone() {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let low = t.low[v].min(t.low[&w]);
                t.low.insert(v.clone(), low);
            } else if t.on.contains(&w) {
                let low = t.low[v].min(t.index[&w]);
                t.low.insert(v.clone(), low);
            }
        }
        if t.low[v] == t.index[v] {
            let mut scc = BTreeSet::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(&w);
                let done = &w == v;
                scc.insert(w);
                if done {
                    break;
                }
            }
            if scc.len() > 1 {
                t.out.push(scc);
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let modules: BTreeSet<Module> = all.iter().map(|f| module_of(&src, f)).collect();
    let resolve = |path: &[String]| {
        (1..=path.len())
            .rev()
            .map(|k| path[..k].to_vec())
            .find(|p| modules.contains(p))
    };
    let mut edges = BTreeMap::new();
    for file in &all {
        let m = module_of(&src, file);
        let code = std::fs::read_to_string(file).unwrap();
        // Unit tests come last, in a `mod tests` whose `super::` is the file itself: not read.
        let code = code.split("\n#[cfg(test)]\nmod tests").next().unwrap_or_default();
        let parent: Module = m[..m.len().saturating_sub(1)].to_vec();
        let mut to = BTreeSet::new();
        for (base, prefix) in [("crate", Vec::new()), ("super", parent)] {
            for p in paths(code, base) {
                let full: Module = prefix.iter().cloned().chain(p).collect();
                if let Some(target) = resolve(&full) {
                    if target != m && !target.is_empty() {
                        to.insert(target);
                    }
                }
            }
        }
        edges.insert(m, to);
    }
    edges
}

#[test]
fn the_reader_finds_the_paths_a_use_line_names() {
    let code = "use crate::{admin::{self, Actor}, app::App};\n// use crate::ignored;\nlet x = crate::store::now();\nmycrate::no;";
    let found = paths(code, "crate");
    let names: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        names,
        ["admin::self", "admin::Actor", "app::App", "store::now"],
        "{names:?}"
    );
}

#[test]
fn no_import_cycle_between_files() {
    let edges = graph();
    assert!(
        edges.len() > 30,
        "the source was not found: {} modules",
        edges.len()
    );
    // A sample of edges the code has, so that a reader that finds nothing cannot pass.
    let has = |from: &str, to: &str| {
        let m = |s: &str| s.split('/').map(str::to_string).collect::<Module>();
        edges[&m(from)].contains(&m(to))
    };
    assert!(has("server", "store") && has("oauth/token", "app") && has("store/sql/engine", "store"));
    let found: Vec<BTreeSet<String>> = cycles(&edges)
        .iter()
        .map(|scc| scc.iter().map(|m| m.join("/")).collect())
        .collect();
    assert!(found.is_empty(), "import cycles between files: {found:?}");
}

/// ARCHITECTURE.md's layers, bottom up, by the first part of a module's path.
fn layer(module: &Module) -> usize {
    match module.first().map(String::as_str) {
        Some("model" | "json" | "sync" | "claims") => 1,
        Some("store") => 2,
        Some(
            "operation" | "keys" | "clients" | "client_keys" | "client_documents" | "trust" | "users"
            | "signing" | "revocations" | "replay" | "limits" | "metrics",
        ) => 3,
        Some("config" | "app") => 4,
        Some("oauth") => 5,
        Some("admin" | "transfer" | "views") => 6,
        Some("http") => 7,
        Some("server") => 8,
        Some("cli" | "main") => 9,
        // lib.rs (the crate root) and any new top-level module must be placed first.
        _ => 0,
    }
}

#[test]
fn every_import_runs_down_the_layers_architecture_md_states() {
    let edges = graph();
    let mut unplaced = Vec::new();
    let mut upward = Vec::new();
    for (from, tos) in &edges {
        if from.is_empty() {
            continue; // lib.rs names every module.
        }
        if layer(from) == 0 {
            unplaced.push(from.join("/"));
        }
        for to in tos {
            if layer(to) > layer(from) {
                upward.push(format!(
                    "{} ({}) -> {} ({})",
                    from.join("/"),
                    layer(from),
                    to.join("/"),
                    layer(to)
                ));
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules with no layer in ARCHITECTURE.md: {unplaced:?}"
    );
    assert!(
        upward.is_empty(),
        "imports that run up the layers:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_protocol_knows_no_web_framework() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src.join("oauth"), &mut all);
    files(&src.join("model"), &mut all);
    assert!(all.len() > 20, "the protocol's files were not found");
    let framework: Vec<String> = all
        .iter()
        .filter(|f| std::fs::read_to_string(f).unwrap().contains("axum"))
        .map(|f| f.strip_prefix(&src).unwrap().display().to_string())
        .collect();
    assert!(
        framework.is_empty(),
        "the protocol and the model use the web framework (answers are made in http/): {framework:?}"
    );
}
