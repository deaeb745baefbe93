//! The CLI's modules, and the library's top-level ones, import each other without circles:
//! every `crate::`, `super::` and `self::` path of `src/` (and a parent's paths into its own
//! children), outside comments and unit tests, is an edge from the module that writes it to the
//! module it names, and the graph of those edges must have no cycle. A circle means two modules
//! that cannot be read, or moved, one without the other; the shared item belongs in a module
//! below both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`bench::floor`, `` for the crate root) → source without comments and tests.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "main" | "lib")
            ) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests import what they test; they are not part of the graph.
            let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            let code: Vec<&str> = text
                .lines()
                .map(|l| l.split("//").next().unwrap())
                .collect();
            out.insert(parts.join("::"), code.join("\n"));
        }
    }
    out
}

/// The paths of a `use` group's body, nested groups expanded, each prefixed with `prefix`.
fn expand(prefix: &str, body: &str, out: &mut Vec<String>) {
    let (mut depth, mut item) = (0, String::new());
    let mut items = Vec::new();
    for c in body.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    items.push(item);
    for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        match item.split_once('{') {
            Some((head, rest)) => {
                let inner = &rest[..rest.rfind('}').unwrap_or(rest.len())];
                expand(
                    &format!("{prefix}::{}", head.trim().trim_end_matches("::")),
                    inner,
                    out,
                );
            }
            None => out.push(format!("{prefix}::{}", item.split(' ').next().unwrap())),
        }
    }
}

/// Every `crate::…`, `super::…`, `self::…` path in `code`, groups expanded.
fn paths(code: &str) -> Vec<String> {
    let bytes = code.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = ["crate::", "super::", "self::"]
            .iter()
            .any(|k| bytes[i..].starts_with(k.as_bytes()));
        if !starts || (i > 0 && (ident(bytes[i - 1]) || bytes[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < bytes.len() && (ident(bytes[end]) || bytes[end] == b':') {
            end += 1;
        }
        let path = code[i..end].trim_end_matches(':');
        if end < bytes.len() && bytes[end] == b'{' {
            let (mut depth, mut close) = (1, end + 1);
            while depth > 0 && close < bytes.len() {
                depth += match bytes[close] {
                    b'{' => 1,
                    b'}' => -1,
                    _ => 0,
                };
                close += 1;
            }
            expand(path, &code[end + 1..close - 1], &mut out);
            i = close;
        } else {
            out.push(path.to_string());
            i = end;
        }
    }
    out
}

/// The module `path`, written in module `at`, names: its longest prefix that is a module.
fn resolve(at: &str, path: &str, mods: &BTreeMap<String, String>) -> Option<String> {
    let mut segs: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = if at.is_empty() {
        Vec::new()
    } else {
        at.split("::").collect()
    };
    match segs.first() {
        Some(&"crate") => base.clear(),
        Some(&"self") => {}
        _ => {
            while segs.first() == Some(&"super") {
                base.pop();
                segs.remove(0);
            }
            segs.insert(0, "super");
        }
    }
    segs.remove(0);
    (0..=segs.len()).rev().find_map(|n| {
        let m = [&base[..], &segs[..n]].concat().join("::");
        mods.contains_key(&m).then_some(m)
    })
}

fn edges(mods: &BTreeMap<String, String>) -> BTreeMap<&str, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (module, code) in mods {
        let mut to = BTreeSet::new();
        for path in paths(code) {
            if let Some(target) = resolve(module, &path, mods) {
                to.insert(target);
            }
        }
        // A parent's bare paths into its own children: `floor::run`, `use floor::Report`.
        for child in mods.keys() {
            let parent = child.rsplit_once("::").map_or("", |(p, _)| p);
            let leaf = child.rsplit("::").next().unwrap();
            if parent == module && !child.is_empty() {
                let needle = format!("{leaf}::");
                let bare = code.match_indices(&needle).any(|(at, _)| {
                    let before = code[..at].chars().last();
                    !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                });
                if bare {
                    to.insert(child.clone());
                }
            }
        }
        // The crate root declares every module; edges into it would be noise.
        to.retain(|t| !t.is_empty() && t != module);
        graph.insert(module.as_str(), to);
    }
    graph
}

/// A cycle of `graph` as its modules in order, if there is one.
fn find_cycle(graph: &BTreeMap<&str, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<&str, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node.to_string()) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_reader_finds_imports() {
    let mut mods = BTreeMap::new();
    for m in ["", "a", "a::b", "a::c", "d"] {
        mods.insert(m.to_string(), String::new());
    }
    let code = "use super::{b::X, c::{Y, Z}};\nuse crate::d::W;\nfn f() { b::g(); }";
    assert_eq!(
        paths(code),
        ["super::b::X", "super::c::Y", "super::c::Z", "crate::d::W"]
    );
    mods.insert("a::b".into(), "use super::Q; use crate::a::c::R;".into());
    mods.insert("a".into(), "fn f() { b::g(); }".into());
    let graph = edges(&mods);
    assert_eq!(
        graph["a::b"],
        BTreeSet::from(["a".to_string(), "a::c".to_string()])
    );
    assert_eq!(graph["a"], BTreeSet::from(["a::b".to_string()]));
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "a::b".into(), "a".into()])
    );
}

#[test]
fn the_cli_modules_import_each_other_without_circles() {
    let mods = modules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(mods.contains_key("torture::worker"), "{:?}", mods.keys());
    let graph = edges(&mods);
    assert!(
        graph["hold"].contains("lock"),
        "the reader missed hold's imports"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("an import circle: {}", cycle.join(" -> "));
    }
}

/// The library's top-level modules (`backend`, `guard`, `locker`, `request`, …, each with its
/// children folded in) import each other without circles. Within a backend's own directory a
/// child may still use its parent's trait and types.
#[test]
fn the_library_modules_import_each_other_without_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lockhog/src");
    let mods = modules(&src);
    assert!(mods.contains_key("backend::file"), "{:?}", mods.keys());
    let top = |m: &str| m.split("::").next().unwrap_or_default().to_string();
    let mut folded: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let names: Vec<String> = mods.keys().map(|m| top(m)).collect();
    for (from, to) in edges(&mods) {
        let from = top(from);
        let from = names.iter().find(|n| **n == from).unwrap().as_str();
        let entry = folded.entry(from).or_default();
        entry.extend(to.iter().map(|t| top(t)).filter(|t| t != from));
    }
    assert!(
        folded["request"].contains("backend"),
        "the reader missed request's imports"
    );
    if let Some(cycle) = find_cycle(&folded) {
        panic!("an import circle: {}", cycle.join(" -> "));
    }
}
