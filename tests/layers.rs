//! The layers of `src/` have no import circle across folders.
//!
//! This test reads every source file of the crate (plain Rust, no compiler help), collects
//! the paths it names (`use crate::...`, `crate::a::b::f()`, `super::...`, and in a
//! `mod.rs` its own child modules), skips `#[cfg(test)]` items, and builds a graph:
//!
//! - A **node** is a top-level module: a folder (`src/db/`, `src/web/`, ...) or a file
//!   (`src/servers.rs`); `src/lib.rs` is `crate`, `src/main.rs` is `main`.
//! - Except the [`PURE`] modules: files of plain types and pure functions (no I/O, no
//!   database, no Rocket guards), each its own node, so that `db` may know the domain types
//!   it stores without knowing the folder they live in.
//! - An **arrow** `a → b` means a file of `a` names an item of `b`. A path through a
//!   folder's `mod.rs` re-export (`crate::media::ActiveSession`) is an arrow to the folder:
//!   name the pure file (`crate::media::model::ActiveSession`) to depend on it alone.
//!
//! It fails when:
//! 1. arrows form a circle (it prints the circle, each arrow with the line that makes it);
//! 2. a [`PURE`] module names anything but [`BASE`] and [`PURE`] modules, or a [`BASE`]
//!    module anything but [`BASE`] modules;
//! 3. an entry of [`KNOWN_EDGES`] matches nothing any more (delete it).
//!
//! `cargo test --test layers -- --nocapture` prints the whole graph.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The modules below everything: any module may use them, and they use only each other.
const BASE: &[&str] = &["error", "format", "startup", "time"];

/// Pure modules, each its own node: they may use only [`BASE`] and each other.
const PURE: &[&str] = &[
    // Role and Scope, without the request guards of `auth`.
    "auth::model",
    // Locations, distances, local addresses, networks, the admin's overrides.
    "geo::model",
    // A media server's sessions, users, items and their normalized fields.
    "media::model",
    // The tracker: snapshot in, events out.
    "poller::tracker",
    // Rules as typed and validated, severities, actions.
    "rules::model",
    // The evaluator and the evidence (`Verdict`) it returns.
    "rules::eval",
    // Trust score arithmetic.
    "rules::trust",
];

/// Arrows that still close a circle, each until the named change removes it: `(from node,
/// module path prefix it names, why)`. Matching references are left out of the graph. The
/// test fails when an entry matches nothing, so the list only shrinks.
/// Empty since the poller owns its hand-off to the rules engine (issue 17); keep it so.
const KNOWN_EDGES: &[(&str, &str, &str)] = &[];

#[test]
fn the_layers_have_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let crate_ = Crate::read(&src);
    let (graph, exempted) = crate_.graph(KNOWN_EDGES);
    eprintln!("{}", graph.describe());

    let mut problems = graph.circles();
    problems.extend(graph.impure_arrows());
    for (i, (from, prefix, why)) in KNOWN_EDGES.iter().enumerate() {
        if exempted[i] == 0 {
            problems.push(format!(
                "KNOWN_EDGES lists {from} → {prefix} ({why}), but no such arrow is left: \
                 delete the entry"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n\n"));
}

// ---------------------------------------------------------------------------------------
// Reading the source

/// A module path: `["db", "plays"]`; the crate root is empty.
type ModPath = Vec<String>;

/// A path a file names, resolved to the module it lands in.
#[derive(Debug, Clone)]
struct Reference {
    /// The file and line, for the report.
    at: String,
    /// The path as resolved from the crate root (`rules::engine::Job`).
    path: Vec<String>,
    /// The module it lands in (`rules::engine`).
    module: ModPath,
}

/// Every module of the crate with the paths its files name.
struct Crate {
    /// Module path → what it names. Files and inline modules alike.
    modules: BTreeMap<ModPath, Vec<Reference>>,
    /// Modules of the binary (`main.rs` and below), rooted in the library's namespace.
    binary: Vec<ModPath>,
}

impl Crate {
    fn read(src: &Path) -> Self {
        let mut crate_ = Crate { modules: BTreeMap::new(), binary: Vec::new() };
        let mut pending = Vec::new();
        crate_.load(&src.join("lib.rs"), Vec::new(), true, src, &mut pending);
        if src.join("main.rs").exists() {
            crate_.load(&src.join("main.rs"), vec!["main".to_owned()], true, src, &mut pending);
        }
        // Paths are resolved once every module is known (a child module declared later in
        // a file is still a module).
        let known: BTreeSet<ModPath> = crate_.modules.keys().cloned().collect();
        for (module, raw, at) in pending {
            if let Some((path, target)) = resolve(&known, &module, &raw) {
                let r = Reference { at, path, module: target };
                crate_.modules.get_mut(&module).expect("loaded").push(r);
            }
        }
        crate_
    }

    /// Reads one file as module `module`, and the files of the modules it declares.
    fn load(
        &mut self,
        file: &Path,
        module: ModPath,
        owns_dir: bool,
        src: &Path,
        pending: &mut Vec<(ModPath, Vec<String>, String)>,
    ) {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let shown = file.strip_prefix(src.parent().unwrap_or(src)).unwrap_or(file);
        let tokens = strip_test_items(tokenize(&text));
        // `foo.rs` declares its children in `foo/`; `mod.rs`, `lib.rs`, `main.rs` beside them.
        let dir = if owns_dir {
            file.parent().expect("a file has a folder").to_owned()
        } else {
            file.with_extension("")
        };
        self.scan(&tokens, module, &dir, &shown.display().to_string(), src, pending);
    }

    /// Records the references of `tokens` (one module's text) and loads the modules it
    /// declares, inline or in files.
    fn scan(
        &mut self,
        tokens: &[Token],
        module: ModPath,
        dir: &Path,
        shown: &str,
        src: &Path,
        pending: &mut Vec<(ModPath, Vec<String>, String)>,
    ) {
        if module.first().is_some_and(|m| m == "main") {
            self.binary.push(module.clone());
        }
        self.modules.entry(module.clone()).or_default();
        let mut i = 0;
        while i < tokens.len() {
            let t = &tokens[i];
            if t.is("mod") && tokens.get(i + 1).is_some_and(Token::is_ident) {
                let name = tokens[i + 1].text.clone();
                let mut child = module.clone();
                child.push(name.clone());
                match tokens.get(i + 2).map(|t| t.text.as_str()) {
                    Some(";") => {
                        let flat = dir.join(format!("{name}.rs"));
                        let nested = dir.join(&name).join("mod.rs");
                        if flat.exists() {
                            self.load(&flat, child, false, src, pending);
                        } else if nested.exists() {
                            self.load(&nested, child, true, src, pending);
                        } else {
                            panic!("{shown}: mod {name}; has no file");
                        }
                        i += 3;
                    }
                    Some("{") => {
                        let end = matching(tokens, i + 2);
                        let inner = &tokens[i + 3..end];
                        self.scan(inner, child, &dir.join(&name), shown, src, pending);
                        i = end + 1;
                    }
                    _ => i += 1,
                }
                continue;
            }
            if t.is("use") {
                let end = (i..tokens.len()).find(|&j| tokens[j].is(";")).unwrap_or(tokens.len());
                for path in use_paths(&tokens[i + 1..end]) {
                    pending.push((module.clone(), path, format!("{shown}:{}", t.line)));
                }
                i = end + 1;
                continue;
            }
            // An expression or type path: `a::b::c`, not the tail of a longer one.
            let starts_path = t.is_ident()
                && tokens.get(i + 1).is_some_and(|n| n.is("::"))
                && (i == 0 || !tokens[i - 1].is("::"));
            if starts_path {
                let mut path = vec![t.text.clone()];
                let mut j = i + 1;
                while j + 1 < tokens.len() && tokens[j].is("::") && tokens[j + 1].is_ident() {
                    path.push(tokens[j + 1].text.clone());
                    j += 2;
                }
                pending.push((module.clone(), path, format!("{shown}:{}", t.line)));
                i = j;
                continue;
            }
            i += 1;
        }
    }

    /// The node graph, leaving out the references `known` exempts (and how many each did).
    fn graph(&self, known: &[(&str, &str, &str)]) -> (Graph, Vec<usize>) {
        let mut graph = Graph::default();
        let mut exempted = vec![0; known.len()];
        for (module, refs) in &self.modules {
            let from = node_of(module);
            graph.nodes.insert(from.clone());
            for r in refs {
                let to = node_of(&r.module);
                if to == from {
                    continue;
                }
                let joined = r.path.join("::");
                let exemption = known.iter().position(|(f, prefix, _)| {
                    *f == from && (joined == *prefix || joined.starts_with(&format!("{prefix}::")))
                });
                if let Some(k) = exemption {
                    exempted[k] += 1;
                    continue;
                }
                graph.nodes.insert(to.clone());
                graph.edges.entry((from.clone(), to)).or_default().push(format!(
                    "{} names crate::{}",
                    r.at,
                    r.path.join("::")
                ));
            }
        }
        (graph, exempted)
    }
}

/// The node a module path belongs to.
fn node_of(path: &[String]) -> String {
    let joined = path.join("::");
    if let Some(pure) = PURE
        .iter()
        .filter(|p| joined == **p || joined.starts_with(&format!("{p}::")))
        .max_by_key(|p| p.len())
    {
        return (*pure).to_owned();
    }
    path.first().cloned().unwrap_or_else(|| "crate".to_owned())
}

/// Turns a path as written in `module` into one from the crate root and the module it lands
/// in, when it names something of this crate; `None` for std, other crates, local items.
fn resolve(
    known: &BTreeSet<ModPath>,
    module: &ModPath,
    raw: &[String],
) -> Option<(Vec<String>, ModPath)> {
    let first = raw.first()?;
    // Where the path starts.
    let (mut base, rest): (ModPath, &[String]) = match first.as_str() {
        "crate" if module.first().is_some_and(|m| m == "main") => return None,
        "crate" => (Vec::new(), &raw[1..]),
        // The binary names the library by its crate name.
        "streamwarden" if module.first().is_some_and(|m| m == "main") => (Vec::new(), &raw[1..]),
        "self" => (module.clone(), &raw[1..]),
        "super" => {
            let mut base = module.clone();
            let mut k = 0;
            while raw.get(k).is_some_and(|s| s == "super") {
                base.pop();
                k += 1;
            }
            (base, &raw[k..])
        }
        // A child module named without `self::` (2018 paths).
        name => {
            let mut child = module.clone();
            child.push(name.to_owned());
            if known.contains(&child) {
                (module.clone(), raw)
            } else {
                return None;
            }
        }
    };
    base.extend(rest.iter().cloned());
    // The binary's own modules are not part of the library's graph.
    if base.first().is_some_and(|m| m == "main") {
        return None;
    }
    // Keep the longest prefix that is a module, plus the item it names.
    let mut len = base.len();
    while len > 0 && !known.contains(&base[..len].to_vec()) {
        len -= 1;
    }
    base.truncate((len + 1).min(base.len()));
    let target = base[..len].to_vec();
    Some((base, target))
}

// ---------------------------------------------------------------------------------------
// The graph

#[derive(Default)]
struct Graph {
    nodes: BTreeSet<String>,
    /// (from, to) → the lines that make the arrow.
    edges: BTreeMap<(String, String), Vec<String>>,
}

impl Graph {
    fn successors(&self, node: &str) -> impl Iterator<Item = &str> {
        self.edges.keys().filter(move |(f, _)| f == node).map(|(_, t)| t.as_str())
    }

    /// Every node and its arrows, for `--nocapture`.
    fn describe(&self) -> String {
        let mut out = String::from("module graph (node → nodes it uses):\n");
        for node in &self.nodes {
            let targets: Vec<&str> = self.successors(node).collect();
            let _ = writeln!(out, "  {node} → {}", targets.join(", "));
        }
        out
    }

    /// One message per strongly connected component of more than one node, naming one
    /// circle through it with the lines behind each arrow.
    fn circles(&self) -> Vec<String> {
        let mut messages = Vec::new();
        for component in self.components() {
            if component.len() < 2 {
                continue;
            }
            let start = component.iter().next().expect("not empty");
            let circle = self.shortest_circle(start, &component);
            let mut message = format!(
                "import circle across folders ({} nodes in it: {}):\n  {}",
                component.len(),
                component.iter().cloned().collect::<Vec<_>>().join(", "),
                circle.join(" → ")
            );
            for pair in circle.windows(2) {
                let lines = &self.edges[&(pair[0].clone(), pair[1].clone())];
                let _ = write!(message, "\n  {} → {}:", pair[0], pair[1]);
                for line in lines.iter().take(3) {
                    let _ = write!(message, "\n      {line}");
                }
                if lines.len() > 3 {
                    let _ = write!(message, "\n      ... and {} more", lines.len() - 3);
                }
            }
            messages.push(message);
        }
        messages
    }

    /// Tarjan's strongly connected components.
    fn components(&self) -> Vec<BTreeSet<String>> {
        struct State<'g> {
            graph: &'g Graph,
            index: HashMap<&'g str, usize>,
            low: HashMap<&'g str, usize>,
            stack: Vec<&'g str>,
            on_stack: BTreeSet<&'g str>,
            out: Vec<BTreeSet<String>>,
        }
        fn visit<'g>(s: &mut State<'g>, v: &'g str) {
            let n = s.index.len();
            s.index.insert(v, n);
            s.low.insert(v, n);
            s.stack.push(v);
            s.on_stack.insert(v);
            let graph = s.graph;
            for w in graph.successors(v) {
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
            if s.low[v] == s.index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = s.stack.pop() {
                    s.on_stack.remove(w);
                    component.insert(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                s.out.push(component);
            }
        }
        let mut state = State {
            graph: self,
            index: HashMap::new(),
            low: HashMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            out: Vec::new(),
        };
        for node in &self.nodes {
            if !state.index.contains_key(node.as_str()) {
                visit(&mut state, node);
            }
        }
        state.out
    }

    /// `start → ... → start` through the fewest arrows inside `within`.
    fn shortest_circle(&self, start: &str, within: &BTreeSet<String>) -> Vec<String> {
        let mut came_from: HashMap<&str, &str> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(v) = queue.pop_front() {
            for w in self.successors(v).filter(|w| within.contains(*w)) {
                if w == start {
                    let mut back = Vec::new();
                    let mut at = v;
                    while at != start {
                        back.push(at.to_owned());
                        at = came_from[at];
                    }
                    back.reverse();
                    let mut path = vec![start.to_owned()];
                    path.extend(back);
                    path.push(start.to_owned());
                    return path;
                }
                if !came_from.contains_key(w) {
                    came_from.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        unreachable!("a strongly connected component has a circle through each node")
    }

    /// Arrows out of [`PURE`] and [`BASE`] modules that their rule forbids.
    fn impure_arrows(&self) -> Vec<String> {
        let mut messages = Vec::new();
        for ((from, to), lines) in &self.edges {
            let allowed: &[&str] = if PURE.contains(&from.as_str()) {
                &[BASE, PURE].concat()
            } else if BASE.contains(&from.as_str()) {
                BASE
            } else {
                continue;
            };
            if !allowed.contains(&to.as_str()) {
                let kind = if PURE.contains(&from.as_str()) { "pure" } else { "base" };
                messages.push(format!(
                    "{from} is a {kind} module but uses {to}:\n      {}",
                    lines.join("\n      ")
                ));
            }
        }
        messages
    }
}

// ---------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    line: usize,
}

impl Token {
    fn is(&self, text: &str) -> bool {
        self.text == text
    }

    fn is_ident(&self) -> bool {
        self.text.starts_with(|c: char| c.is_alphabetic() || c == '_' || c == '$')
    }
}

/// Identifiers, `::` and single punctuation; comments, strings, chars, lifetimes and
/// numbers are dropped.
fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let count_lines = |from: usize, to: usize, line: &mut usize| {
        *line += chars[from..to].iter().filter(|c| **c == '\n').count();
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let (start, mut depth) = (i, 0);
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            count_lines(start, i, &mut line);
        } else if let Some(end) = raw_string_end(&chars, i) {
            count_lines(i, end, &mut line);
            i = end;
        } else if c == '"' || (matches!(c, 'b' | 'c') && next == Some('"')) {
            let start = i;
            i += if c == '"' { 1 } else { 2 };
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            count_lines(start, i.min(chars.len()), &mut line);
        } else if c == '\'' || (c == 'b' && next == Some('\'')) {
            // A char literal ('x', '\n', '\u{1F600}', b'x'), else a lifetime ('a).
            let open = if c == '\'' { i } else { i + 1 };
            let close = if chars.get(open + 1) == Some(&'\\') {
                (open + 2..chars.len()).find(|&j| chars[j] == '\'')
            } else {
                (chars.get(open + 2) == Some(&'\'')).then_some(open + 2)
            };
            match close {
                Some(close) => i = close + 1,
                None => {
                    i = open + 1;
                    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                }
            }
        } else if c.is_alphabetic()
            || c == '_'
            || (c == '$' && next.is_some_and(char::is_alphabetic))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            // `r#type` is the identifier `type`.
            let word = word.strip_prefix("r#").map(str::to_owned).unwrap_or(word);
            tokens.push(Token { text: word, line });
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else if c == ':' && next == Some(':') {
            tokens.push(Token { text: "::".to_owned(), line });
            i += 2;
        } else {
            tokens.push(Token { text: c.to_string(), line });
            i += 1;
        }
    }
    tokens
}

/// Where a raw string (`r"..."`, `r#"..."#`, `br"..."`) starting at `i` ends, if one does.
fn raw_string_end(chars: &[char], i: usize) -> Option<usize> {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') || chars.get(j) == Some(&'c') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|c| **c == '#').count();
    j += hashes;
    if chars.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    loop {
        if j >= chars.len() {
            return Some(chars.len());
        }
        if chars[j] == '"'
            && chars[j + 1..].iter().take(hashes).filter(|c| **c == '#').count() == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
}

/// The index of the bracket closing the one at `open`.
fn matching(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, t) in tokens.iter().enumerate().skip(open) {
        match t.text.as_str() {
            "{" | "(" | "[" => depth += 1,
            "}" | ")" | "]" => {
                depth -= 1;
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
    }
    tokens.len().saturating_sub(1)
}

/// Drops every item marked `#[cfg(test)]` (and a whole file marked `#![cfg(test)]`).
fn strip_test_items(tokens: Vec<Token>) -> Vec<Token> {
    let texts = |from: usize, n: usize| -> Vec<&str> {
        tokens.iter().skip(from).take(n).map(|t| t.text.as_str()).collect()
    };
    if texts(0, 8) == ["#", "!", "[", "cfg", "(", "test", ")", "]"] {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if texts(i, 7) != ["#", "[", "cfg", "(", "test", ")", "]"] {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        i += 7;
        // Further attributes of the same item.
        while tokens.get(i).is_some_and(|t| t.is("#"))
            && tokens.get(i + 1).is_some_and(|t| t.is("["))
        {
            i = matching(&tokens, i + 1) + 1;
        }
        // The item: up to its `;`, or through its `{ ... }` body.
        while i < tokens.len() {
            match tokens[i].text.as_str() {
                ";" => {
                    i += 1;
                    break;
                }
                "{" => {
                    i = matching(&tokens, i) + 1;
                    break;
                }
                "(" | "[" => i = matching(&tokens, i) + 1,
                _ => i += 1,
            }
        }
    }
    out
}

/// The paths of a `use` tree (the tokens between `use` and `;`): `a::{self, b::c as d, e::*}`
/// is `a`, `a::b::c` and `a::e`. A leading `::` names another crate: nothing.
fn use_paths(tokens: &[Token]) -> Vec<Vec<String>> {
    fn tree(tokens: &[Token], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        while let Some(t) = tokens.get(*i) {
            *i += 1;
            match t.text.as_str() {
                "{" => {
                    while tokens.get(*i).is_some_and(|t| !t.is("}")) {
                        tree(tokens, i, &path, out);
                        if tokens.get(*i).is_some_and(|t| t.is(",")) {
                            *i += 1;
                        }
                    }
                    *i += 1;
                    return;
                }
                "*" => break,
                "self" if !path.is_empty() => {}
                _ if t.is_ident() => {
                    path.push(t.text.clone());
                    if tokens.get(*i).is_some_and(|t| t.is("::")) {
                        *i += 1;
                        continue;
                    }
                }
                _ => {
                    *i -= 1;
                    break;
                }
            }
            if tokens.get(*i).is_some_and(|t| t.is("as")) {
                *i += 2;
            }
            break;
        }
        if !path.is_empty() {
            out.push(path);
        }
    }
    if tokens.first().is_some_and(|t| t.is("::")) {
        return Vec::new();
    }
    let mut out = Vec::new();
    tree(tokens, &mut 0, &[], &mut out);
    out
}

// ---------------------------------------------------------------------------------------
// The checker checks: it must see what it is meant to see.

/// A crate in a temporary folder, from `(path under src/, text)` pairs.
fn fixture(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    for (path, text) in files {
        let file = src.join(path);
        std::fs::create_dir_all(file.parent().expect("has a folder")).expect("mkdir");
        std::fs::write(file, text).expect("write");
    }
    (dir, src)
}

fn arrows(src: &Path) -> BTreeSet<(String, String)> {
    Crate::read(src).graph(&[]).0.edges.into_keys().collect()
}

fn arrow(from: &str, to: &str) -> (String, String) {
    (from.to_owned(), to.to_owned())
}

#[test]
fn a_circle_through_a_use_line_fails_and_names_its_lines() {
    let (_dir, src) = fixture(&[
        ("lib.rs", "pub mod db;\npub mod web;\n"),
        ("db/mod.rs", "//! db\npub mod plays;\n"),
        ("db/plays.rs", "use crate::web::format::{self, title};\npub fn f() {}\n"),
        ("web/mod.rs", "pub mod format;\npub fn g() { crate::db::plays::f(); }\n"),
        ("web/format.rs", "pub fn title() {}\n"),
    ]);
    let (graph, _) = Crate::read(&src).graph(&[]);
    let circles = graph.circles();
    assert_eq!(circles.len(), 1, "{circles:?}");
    assert!(circles[0].contains("db → web → db"), "{}", circles[0]);
    assert!(circles[0].contains("src/db/plays.rs:1 names crate::web::format"), "{}", circles[0]);
    assert!(circles[0].contains("src/web/mod.rs:2 names crate::db::plays::f"), "{}", circles[0]);
}

#[test]
#[expect(clippy::needless_raw_string_hashes, reason = "the text holds a raw string ending in \"#")]
fn test_items_comments_and_strings_are_not_imports() {
    let (_dir, src) = fixture(&[
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        (
            "a.rs",
            r##"
            // use crate::b::X;
            /* crate::b::Y /* nested */ crate::b::Z */
            const S: &str = "crate::b::W";
            const R: &str = r#"crate::b::V "quoted""#;
            const C: char = '"';
            fn f<'a>(x: &'a str) -> &'a str { x }
            #[cfg(test)]
            mod tests { use crate::b::T; }
            #[cfg(test)]
            #[allow(dead_code)]
            fn helper() -> Vec<u8> { crate::b::h() }
            #[cfg(test)]
            pub(crate) const LIST: &[&str] = &[crate::b::Q];
            "##,
        ),
        ("b.rs", "pub fn h() { crate::a::f(\"\"); }\n"),
    ]);
    assert_eq!(arrows(&src), BTreeSet::from([arrow("b", "a")]));
}

#[test]
fn super_self_and_child_module_paths_resolve() {
    let (_dir, src) = fixture(&[
        ("lib.rs", "pub mod media;\npub mod rules;\npub mod db;\nuse db::Db;\n"),
        ("media/mod.rs", "pub mod model;\npub use model::Kind;\n"),
        ("media/model.rs", "pub enum Kind { A }\nuse super::super::db::x;\n"),
        ("rules/mod.rs", "pub mod model;\npub mod engine;\n"),
        ("rules/model.rs", "use crate::media::model::Kind;\n"),
        ("rules/engine.rs", "use super::model;\nuse crate::media::{self, Kind as K};\n"),
        ("db/mod.rs", "pub struct Db;\npub fn x() { self::y(); }\nfn y() {}\n"),
    ]);
    assert_eq!(
        arrows(&src),
        BTreeSet::from([
            arrow("crate", "db"),
            arrow("media", "media::model"),
            arrow("media::model", "db"),
            arrow("rules", "media"),
            arrow("rules", "rules::model"),
            arrow("rules::model", "media::model"),
        ]),
        "rules::model is its own node; media::model reaches db through super::super; \
         rules::model → media::model is pure → pure"
    );
}

#[test]
fn pure_modules_may_use_only_base_and_pure_modules() {
    let (_dir, src) = fixture(&[
        ("lib.rs", "pub mod media;\npub mod error;\npub mod db;\n"),
        ("error.rs", "pub struct AppError;\n"),
        ("media/mod.rs", "pub mod model;\npub mod plex;\n"),
        ("media/model.rs", "use crate::error::AppError;\nuse crate::media::plex::P;\n"),
        ("media/plex.rs", "pub struct P;\n"),
        ("db/mod.rs", "use crate::media::model::X;\n"),
    ]);
    let (graph, _) = Crate::read(&src).graph(&[]);
    assert!(graph.circles().is_empty());
    let impure = graph.impure_arrows();
    assert_eq!(impure.len(), 1, "{impure:?}");
    assert!(impure[0].starts_with("media::model is a pure module but uses media"), "{impure:?}");
}

#[test]
fn a_known_edge_is_left_out_and_counted() {
    let (_dir, src) = fixture(&[
        ("lib.rs", "pub mod poller;\npub mod rules;\n"),
        ("poller/mod.rs", "use crate::rules::engine::Job;\nfn f() { crate::rules::admin::x(); }\n"),
        ("rules/mod.rs", "pub mod engine;\npub mod admin;\n"),
        ("rules/engine.rs", "use crate::poller::X;\npub struct Job;\n"),
        ("rules/admin.rs", "pub fn x() {}\n"),
    ]);
    let (graph, exempted) =
        Crate::read(&src).graph(&[("poller", "rules::engine", "test"), ("db", "web", "stale")]);
    assert_eq!(exempted, [1, 0]);
    // The exemption is for rules::engine only: rules::admin still closes the circle.
    let circles = graph.circles();
    assert_eq!(circles.len(), 1, "{circles:?}");
    assert!(circles[0].contains("names crate::rules::admin::x"), "{}", circles[0]);
}
