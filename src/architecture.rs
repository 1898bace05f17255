#![cfg(test)]
//! The import rules of `docs/architecture.md`, checked on the source text: every `use`
//! and every `crate::`/`super::`/`self::` path of every file under `src/` (test code
//! aside) must point to the same or a lower floor, and neither files nor top-level
//! modules may import each other in a circle. `pub use` lines are a module's list of
//! what it offers, not a dependency: a path through one is followed to where the item
//! lives.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first. A module may import its own floor and the ones below.
const FLOORS: &[&[&str]] = &[
    &["vocabulary"],
    &["config", "wire", "auth", "state"],
    &[
        "exec",
        "net",
        "heartbeat",
        "health",
        "status",
        "metrics",
        "notify",
        "environment",
        "logging",
        "election",
    ],
    &["daemon"],
    &["cli"],
];

/// Modules held to less than their floor allows: the machine decides on vocabulary alone,
/// the OS side and the threads take plain values, never the configuration or the status.
const ONLY: &[(&str, &[&str])] = &[
    ("state", &["vocabulary"]),
    ("net", &["vocabulary", "exec"]),
    ("heartbeat", &["vocabulary", "auth", "wire"]),
    ("health", &["vocabulary", "config", "exec"]),
    ("metrics", &["vocabulary"]),
    ("election", &["vocabulary", "config"]),
];

type ModPath = Vec<String>;

struct File {
    path: PathBuf,
    module: ModPath,
    /// Absolute paths named by private `use`s and inline paths.
    imports: Vec<ModPath>,
    /// `pub use` lines: name offered → absolute path of the item.
    offers: BTreeMap<String, ModPath>,
}

fn floor(top: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&top))
}

/// The source with comments, strings and char literals blanked, and the test code cut.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod ").next().unwrap_or_default();
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let at = |j: usize| b.get(j).copied().unwrap_or(' ');
        if b[i] == '/' && at(i + 1) == '/' {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if b[i] == '/' && at(i + 1) == '*' {
            i += 2;
            while i < b.len() && !(b[i] == '*' && at(i + 1) == '/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == 'r' && (at(i + 1) == '"' || (at(i + 1) == '#' && at(i + 2) == '"'))
            || (b[i] == 'r' && at(i + 1) == '#' && at(i + 2) == '#')
        {
            let hashes = b[i + 1..].iter().take_while(|&&c| c == '#').count();
            i += 2 + hashes;
            let close: String = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            while i < b.len() && !b[i..].iter().collect::<String>().starts_with(&close) {
                i += 1;
            }
            i += close.len();
            out.push_str("\"\"");
        } else if b[i] == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == '\'' && (at(i + 1) == '\\' || at(i + 2) == '\'') {
            i += 1;
            while i < b.len() && b[i] != '\'' {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// `a::{b, c::{d as e, self}}` → `a::b`, `a::c::d`, `a::c` (renames and globs kept by path).
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        let path = tree.split("as").next().unwrap_or(&tree);
        let path = path.strip_suffix("::self").unwrap_or(path);
        return vec![path.to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.len() - 1];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| {
            expand(p).into_iter().map(move |s| match s.as_str() {
                "self" => prefix.trim_end_matches("::").to_string(),
                _ => format!("{prefix}{s}"),
            })
        })
        .collect()
}

/// Turns `crate::`, `super::`, `self::` and child-module paths into absolute ones;
/// `None` for other crates and the standard library.
fn absolute(module: &ModPath, path: &str, children: &BTreeSet<String>) -> Option<ModPath> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let first = *segs.first()?;
    let mut base: ModPath;
    let mut rest = &segs[..];
    match first {
        "crate" => {
            base = Vec::new();
            rest = &segs[1..];
        }
        "self" => {
            base = module.clone();
            rest = &segs[1..];
        }
        "super" => {
            base = module.clone();
            while rest.first() == Some(&"super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        name if children.contains(name) => base = module.clone(),
        _ => return None,
    }
    base.extend(rest.iter().map(|s| s.to_string()));
    Some(base)
}

fn read_files(root: &Path) -> Vec<File> {
    let mut paths = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                paths.push(path);
            }
        }
    }
    let module_of = |path: &Path| -> ModPath {
        let rel = path.strip_prefix(root).expect("under src/");
        let mut segs: ModPath = rel
            .iter()
            .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if matches!(segs.last().map(String::as_str), Some("mod" | "lib")) {
            segs.pop();
        }
        segs
    };
    let modules: BTreeSet<ModPath> = paths.iter().map(|p| module_of(p)).collect();
    let mut files = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("a source file is readable");
        let name = path.file_name().unwrap_or_default();
        if name == "main.rs" || name == "tests.rs" || text.starts_with("#![cfg(test)]") {
            continue;
        }
        let module = module_of(&path);
        let children: BTreeSet<String> = modules
            .iter()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(&module))
            .map(|m| m[module.len()].clone())
            .collect();
        let code = code_of(&text);
        let mut file = File {
            path: path.clone(),
            module: module.clone(),
            imports: Vec::new(),
            offers: BTreeMap::new(),
        };
        let mut inline = code.clone();
        let mut at = 0;
        while let Some(found) = code[at..].find("use ") {
            let start = at + found;
            at = start + 4;
            let before = code[..start].trim_end();
            let word_start = code[..start]
                .chars()
                .last()
                .map_or(true, |c| !c.is_alphanumeric() && c != '_');
            if !word_start {
                continue;
            }
            let Some(len) = code[start..].find(';') else {
                break;
            };
            let statement = &code[start + 4..start + len];
            inline.replace_range(start..start + len, &" ".repeat(len));
            let offered = before.ends_with("pub") || before.ends_with(')');
            for path in expand(statement) {
                let Some(abs) = absolute(&module, &path, &children) else {
                    continue;
                };
                if offered {
                    let name = path.rsplit("::").next().unwrap_or_default().to_string();
                    file.offers.insert(name, abs);
                } else {
                    file.imports.push(abs);
                }
            }
        }
        for anchor in ["crate::", "super::", "self::"] {
            let mut at = 0;
            while let Some(found) = inline[at..].find(anchor) {
                let start = at + found;
                at = start + anchor.len();
                let boundary = inline[..start]
                    .chars()
                    .last()
                    .map_or(true, |c| !c.is_alphanumeric() && c != '_' && c != ':');
                if !boundary {
                    continue;
                }
                let path: String = inline[start..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                if let Some(abs) = absolute(&module, &path, &children) {
                    file.imports.push(abs);
                }
            }
        }
        files.push(file);
    }
    files
}

/// The file a path lands in, following `pub use` offers to where the item lives.
fn target(path: &ModPath, by_module: &BTreeMap<ModPath, usize>, files: &[File]) -> Option<usize> {
    let mut path = path.clone();
    for _ in 0..8 {
        let depth = (0..=path.len())
            .rev()
            .find(|&n| by_module.contains_key(&path[..n]))?;
        let index = by_module[&path[..depth]];
        match path
            .get(depth)
            .and_then(|name| files[index].offers.get(name))
        {
            Some(offered) => {
                let mut next = offered.clone();
                next.extend(path[depth + 1..].iter().cloned());
                path = next;
            }
            None => return Some(index),
        }
    }
    None
}

/// Strongly connected groups of more than one node (Tarjan), each sorted.
fn cycles<T: Ord + Clone>(edges: &BTreeMap<T, BTreeSet<T>>) -> Vec<Vec<T>> {
    struct Walk<'a, T> {
        edges: &'a BTreeMap<T, BTreeSet<T>>,
        index: BTreeMap<T, usize>,
        low: BTreeMap<T, usize>,
        stack: Vec<T>,
        found: Vec<Vec<T>>,
    }
    fn visit<T: Ord + Clone>(w: &mut Walk<'_, T>, v: &T) {
        let n = w.index.len();
        w.index.insert(v.clone(), n);
        w.low.insert(v.clone(), n);
        w.stack.push(v.clone());
        for next in w.edges.get(v).into_iter().flatten() {
            if !w.index.contains_key(next) {
                visit(w, next);
                let low = w.low[v].min(w.low[next]);
                w.low.insert(v.clone(), low);
            } else if w.stack.contains(next) {
                let low = w.low[v].min(w.index[next]);
                w.low.insert(v.clone(), low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut group = Vec::new();
            while let Some(top) = w.stack.pop() {
                let done = &top == v;
                group.push(top);
                if done {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                w.found.push(group);
            }
        }
    }
    let mut w = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !w.index.contains_key(v) {
            visit(&mut w, v);
        }
    }
    w.found
}

struct Graph {
    files: BTreeMap<String, BTreeSet<String>>,
    modules: BTreeMap<String, BTreeSet<String>>,
}

fn graph() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = read_files(&root);
    let by_module: BTreeMap<ModPath, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.module.clone(), i))
        .collect();
    let name = |f: &File| {
        f.path
            .strip_prefix(&root)
            .unwrap_or(&f.path)
            .display()
            .to_string()
    };
    let mut g = Graph {
        files: BTreeMap::new(),
        modules: BTreeMap::new(),
    };
    for f in &files {
        g.files.entry(name(f)).or_default();
        let Some(top) = f.module.first() else {
            continue;
        };
        g.modules.entry(top.clone()).or_default();
        for import in &f.imports {
            let Some(t) = target(import, &by_module, &files) else {
                continue;
            };
            if files[t].path != f.path && !files[t].module.is_empty() {
                g.files.entry(name(f)).or_default().insert(name(&files[t]));
            }
            let to = &files[t].module.first();
            if let Some(to) = to.filter(|to| *to != top) {
                g.modules.entry(top.clone()).or_default().insert(to.clone());
            }
        }
    }
    g
}

#[test]
fn imports_go_down_the_floors_and_never_in_a_circle() {
    let g = graph();
    let mut wrong = Vec::new();
    for (from, tos) in &g.modules {
        let Some(here) = floor(from) else {
            wrong.push(format!("module {from} has no floor in FLOORS"));
            continue;
        };
        for to in tos {
            if floor(to).map_or(true, |there| there > here) {
                wrong.push(format!("{from} imports {to}, a higher floor"));
            }
            let only = ONLY.iter().find(|(m, _)| m == from);
            if only.is_some_and(|(_, allowed)| !allowed.contains(&to.as_str())) {
                wrong.push(format!("{from} imports {to}; it may import only {only:?}"));
            }
        }
    }
    for group in cycles(&g.modules) {
        wrong.push(format!("modules import each other: {}", group.join(" ↔ ")));
    }
    for group in cycles(&g.files) {
        wrong.push(format!("files import each other: {}", group.join(" ↔ ")));
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_upward_imports_and_circles() {
    let code = code_of("use crate::a::{b, c::{self, d}};\n// use crate::x;\nlet s = \"crate::y\";");
    assert!(!code.contains("crate::x") && !code.contains("crate::y"));
    assert_eq!(
        expand("crate::a::{b, c::{self, d}}"),
        ["crate::a::b", "crate::a::c", "crate::a::c::d"]
    );
    let edges = BTreeMap::from([
        ("a", BTreeSet::from(["b"])),
        ("b", BTreeSet::from(["a"])),
        ("c", BTreeSet::from(["a"])),
    ]);
    assert_eq!(cycles(&edges), [vec!["a", "b"]]);
    assert!(floor("cli") > floor("daemon") && floor("vocabulary") == Some(0));
}

/// The module graph, printed by `cargo test architecture -- --nocapture --ignored`.
#[test]
#[ignore = "prints the graph for the docs"]
fn print_the_module_graph() {
    for (from, tos) in graph().modules {
        let tos: Vec<_> = tos.into_iter().collect();
        println!("{from} → {}", tos.join(", "));
    }
}
