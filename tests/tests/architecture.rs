//! The rules of `ARCHITECTURE.md` that a machine can check: which crate may depend on which,
//! module imports that point one way inside each crate, and `unsafe` only where it is fenced.
//! Read from the sources as text, so breaking a rule fails here, not in review.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Each crate folder, and the Berth crates it may depend on (normal dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("interfaces", &[]),
    ("os", &[]),
    ("service-runtime", &["berth-interfaces", "berth-os"]),
    (
        "machine-registry",
        &["berth-interfaces", "berth-os", "berth-service-runtime"],
    ),
    (
        "userdb-bridge",
        &["berth-interfaces", "berth-os", "berth-service-runtime"],
    ),
    (
        "supervisor-proto",
        &["berth-interfaces", "berth-os", "berth-service-runtime"],
    ),
    ("nss-module", &["berth-interfaces"]),
    ("berthctl", &["berth-interfaces", "berth-os"]),
    ("machine-helper", &["berth-interfaces", "berth-os"]),
    ("tests", &["berth-interfaces"]),
    // The build helper (man pages, completions) reads each program's command line.
    (
        "xtask",
        &[
            "berth-machine-registry",
            "berth-userdb-bridge",
            "berth-supervisor",
            "berthctl",
        ],
    ),
];

/// Crates that must not link an async runtime (or zlink, which brings one), unless a feature
/// asks for it.
const NO_RUNTIME: &[&str] = &[
    "os",
    "supervisor-proto",
    "nss-module",
    "berthctl",
    "machine-helper",
];

/// The only files that may hold `unsafe` code.
const UNSAFE_ALLOWED: &[&str] = &["os/src/sys.rs", "nss-module/src/ffi.rs"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

/// The names of the normal `[dependencies]` of a crate's manifest, and whether each is
/// optional.
fn dependencies(krate: &str) -> Vec<(String, bool)> {
    let manifest = fs::read_to_string(root().join(krate).join("Cargo.toml")).expect("manifest");
    let mut in_section = false;
    let mut names = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[dependencies]";
            continue;
        }
        if !in_section || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split(['=', '.', ' ']).next().unwrap_or_default();
        names.push((key.to_owned(), line.contains("optional = true")));
    }
    names
}

#[test]
fn crates_depend_only_on_what_the_architecture_allows() {
    for (krate, allowed) in ALLOWED {
        for (dependency, _) in dependencies(krate) {
            if dependency.starts_with("berth-") {
                assert!(
                    allowed.contains(&dependency.as_str()),
                    "{krate} must not depend on {dependency}"
                );
            }
        }
    }
    for krate in NO_RUNTIME {
        for (dependency, optional) in dependencies(krate) {
            assert!(
                optional || !matches!(dependency.as_str(), "tokio" | "zlink"),
                "{krate} must not depend on {dependency}"
            );
        }
    }
    let runtime = fs::read_to_string(root().join("service-runtime/Cargo.toml")).unwrap();
    let protocol = runtime
        .split("protocol = [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("a protocol feature");
    assert!(
        !protocol.contains("tokio"),
        "the protocol core needs no runtime"
    );
}

/// Every `.rs` file below `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found
}

/// The code of a file without comments, string literals and its trailing `#[cfg(test)] mod
/// tests`.
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).expect("source");
    let text = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    text.lines()
        .map(|line| without_strings(line.split("//").next().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `line` with the contents of its (one-line) string literals left out.
fn without_strings(line: &str) -> String {
    let mut kept = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in line.chars() {
        match (quoted, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, true, _) => escaped = false,
            (_, _, '"') => quoted = !quoted,
            (false, _, c) => kept.push(c),
            (true, false, _) => {}
        }
    }
    kept
}

/// The module path of a source file of `src` (`a::b` for `src/a/b.rs` or `src/a/b/mod.rs`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file
        .strip_prefix(src)
        .expect("below src")
        .with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// The modules a path such as `crate::a::b::Item` or `super::x` names, resolved from `current`.
fn target(current: &str, path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let mut segments: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = match segments.first()? {
        &"crate" => Vec::new(),
        &"super" | &"self" => current.split("::").filter(|s| !s.is_empty()).collect(),
        _ => return None,
    };
    while let Some(&head) = segments.first() {
        match head {
            "crate" | "self" => {}
            "super" => {
                base.pop();
            }
            _ => break,
        }
        segments.remove(0);
    }
    (0..=segments.len()).rev().find_map(|n| {
        let candidate = base
            .iter()
            .chain(&segments[..n])
            .copied()
            .collect::<Vec<_>>()
            .join("::");
        modules.contains(&candidate).then_some(candidate)
    })
}

/// Every path starting with `crate`, `super` or `self` in `code`, with `use a::{b, c::{d}}`
/// groups spelled out.
fn paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(start) = ["crate::", "super::", "self::"]
        .iter()
        .filter_map(|p| rest.find(p))
        .min()
    {
        let preceded_by_word = rest[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        let path = tail[..end].trim_end_matches(':');
        rest = &tail[end..];
        if preceded_by_word {
            continue;
        }
        match rest.strip_prefix('{') {
            Some(group) => {
                let close = matching_brace(group);
                found.extend(expand(path, &group[..close]));
                rest = &group[close..];
            }
            None => found.push(path.to_owned()),
        }
    }
    found
}

/// Where the `}` closing an opened `{` is in `text` (which starts after the `{`).
fn matching_brace(text: &str) -> usize {
    let mut depth = 0;
    for (at, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return at,
            '}' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

/// The paths of a `use prefix::{…}` group.
fn expand(prefix: &str, group: &str) -> Vec<String> {
    let mut items = Vec::new();
    let (mut depth, mut from) = (0, 0);
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[from..at]);
                from = at + 1;
            }
            _ => {}
        }
    }
    items.push(&group[from..]);
    items
        .into_iter()
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .flat_map(|item| match item.split_once("::{") {
            Some((head, inner)) => {
                expand(&format!("{prefix}::{head}"), inner.trim_end_matches('}'))
            }
            None if item == "self" => vec![prefix.to_owned()],
            None => vec![format!(
                "{prefix}::{}",
                item.split(" as ").next().unwrap_or(item)
            )],
        })
        .collect()
}

/// The module graph of one crate: each module and the modules of the same crate it uses.
fn module_graph(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join(krate).join("src");
    let files = sources(&src);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        let uses: BTreeSet<String> = paths(&code(file))
            .iter()
            .filter_map(|path| target(&module, path, &modules))
            .filter(|t| !t.is_empty() && *t != module && !module.starts_with(&format!("{t}::")))
            .collect();
        graph.insert(module, uses);
    }
    graph
}

/// A cycle through `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            return Some(path[at..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn every_workspace_member_has_its_rules() {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let members = &manifest[manifest.find("members = [").unwrap()..];
    let members = &members[..members.find(']').unwrap()];
    for member in members.split('"').skip(1).step_by(2) {
        assert!(
            ALLOWED.iter().any(|(krate, _)| *krate == member),
            "{member} has no dependency rules in ALLOWED"
        );
    }
}

#[test]
fn module_imports_point_one_way_in_every_crate() {
    for (krate, _) in ALLOWED {
        let graph = module_graph(krate);
        if let Some(cycle) = find_cycle(&graph) {
            panic!("{krate}: modules import each other in a circle: {cycle:?}");
        }
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(find_cycle(&graph).map(|c| c.len()), Some(3));
    let modules: BTreeSet<String> = ["a", "a::b", "c"].iter().map(|s| s.to_string()).collect();
    assert_eq!(target("a::b", "super::Thing", &modules), Some("a".into()));
    assert_eq!(target("c", "crate::a::b::f", &modules), Some("a::b".into()));
    assert_eq!(paths("use crate::{a, b::C};"), ["crate::a", "crate::b::C"]);
}

#[test]
fn unsafe_code_lives_only_in_the_fenced_modules() {
    for (krate, _) in ALLOWED {
        for file in sources(&root().join(krate)) {
            let relative = file
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if UNSAFE_ALLOWED.contains(&relative.as_str()) || relative.contains("/target/") {
                continue;
            }
            let code = code(&file);
            let unsafe_code = ["unsafe {", "unsafe fn", "unsafe impl", "unsafe extern"]
                .iter()
                .any(|form| code.contains(form));
            assert!(!unsafe_code, "{relative} has unsafe code");
        }
    }
}
