//! The build context: `.dockerignore` rules, and the files a COPY/ADD source names (globs
//! included), never outside the context directory.

use std::fs;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

/// `.dockerignore` rules: Go `filepath.Match` patterns plus `**`, `!` exceptions, the last
/// matching rule wins, and a rule that matches a directory also matches everything in it.
#[derive(Debug, Default)]
pub struct Ignore {
    rules: Vec<(GlobMatcher, bool)>,
}

fn glob(pattern: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("invalid pattern {pattern:?}: {e}"))
}

/// Cleans a relative path like Go's `filepath.Clean` without leaving the root.
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => out.push(s.to_str().unwrap_or("")),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out.join("/")
}

impl Ignore {
    /// Parses `.dockerignore` text. Errors carry the line.
    pub fn parse(text: &str) -> Result<Ignore, (usize, String)> {
        let mut rules = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (neg, pat) = match l.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, l),
            };
            let pat = clean(pat);
            if pat.is_empty() {
                continue;
            }
            rules.push((glob(&pat).map_err(|e| (i + 1, e))?, neg));
        }
        Ok(Ignore { rules })
    }

    /// Reads `<context>/.dockerignore` if there is one.
    pub fn load(context: &Path) -> Result<Ignore, (usize, String)> {
        match fs::read_to_string(context.join(".dockerignore")) {
            Ok(t) => Ignore::parse(&t),
            Err(_) => Ok(Ignore::default()),
        }
    }

    /// Whether the context path `rel` (relative, `/`-separated) is excluded.
    pub fn excluded(&self, rel: &str) -> bool {
        let rel = clean(rel);
        if rel.is_empty() {
            return false;
        }
        let mut prefixes = Vec::new();
        let mut acc = String::new();
        for part in rel.split('/') {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            prefixes.push(acc.clone());
        }
        let mut out = false;
        for (m, neg) in &self.rules {
            if prefixes.iter().any(|p| m.is_match(p)) {
                out = !neg;
            }
        }
        out
    }
}

/// One source a COPY/ADD names: its path in the context and its path relative to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub rel: String,
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Resolves a (variable-expanded) source against `root`: a path or a glob, never escaping the
/// root, never an excluded path. `exists` errors are messages for the caller to place.
pub fn resolve_sources(root: &Path, pattern: &str, ignore: &Ignore) -> Result<Vec<Source>, String> {
    let rel = clean(pattern);
    if !has_meta(&rel) {
        let path = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        if fs::symlink_metadata(&path).is_err() || ignore.excluded(&rel) {
            return Err(format!(
                "{pattern}: not found in the build context (or excluded by .dockerignore)"
            ));
        }
        inside(root, &path, pattern)?;
        return Ok(vec![Source { path, rel }]);
    }
    let m = glob(&rel)?;
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    let depth = rel.split('/').count();
    while let Some((dir, prefix)) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        let mut names: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for n in names {
            let r = format!("{prefix}{}", n.to_string_lossy());
            if ignore.excluded(&r) {
                continue;
            }
            let p = dir.join(&n);
            if m.is_match(&r) {
                out.push(Source {
                    path: p.clone(),
                    rel: r.clone(),
                });
            } else if (rel.contains("**") || r.split('/').count() < depth)
                && fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir())
            {
                stack.push((p, format!("{r}/")));
            }
        }
    }
    if out.is_empty() {
        return Err(format!(
            "{pattern}: no source files were specified (nothing matches)"
        ));
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// Refuses a path that resolves (through symlinks) outside `root`.
fn inside(root: &Path, path: &Path, what: &str) -> Result<(), String> {
    let (Ok(r), Ok(p)) = (fs::canonicalize(root), fs::canonicalize(path)) else {
        return Ok(()); // a dangling symlink is copied as a link
    };
    if p.starts_with(&r) {
        Ok(())
    } else {
        Err(format!("{what}: forbidden path outside the build context"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_rules() {
        let ig = Ignore::parse("# comment\n*.log\n/build\n!build/keep.txt\n**/tmp\n").unwrap();
        assert!(ig.excluded("a.log"));
        assert!(!ig.excluded("sub/a.log"));
        assert!(ig.excluded("build/x"));
        assert!(!ig.excluded("build/keep.txt"));
        assert!(ig.excluded("a/b/tmp/c"));
        assert!(!ig.excluded("src/main.rs"));
        assert!(Ignore::parse("[\n").is_err());
    }

    #[test]
    fn sources_and_globs_stay_in_the_context() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("src/sub")).unwrap();
        fs::write(root.join("src/a.txt"), "a").unwrap();
        fs::write(root.join("src/b.txt"), "b").unwrap();
        fs::write(root.join("src/sub/c.txt"), "c").unwrap();
        fs::write(root.join("x.log"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        let ig = Ignore::parse("src/b.txt").unwrap();
        let got: Vec<String> = resolve_sources(root, "src/*.txt", &ig)
            .unwrap()
            .into_iter()
            .map(|s| s.rel)
            .collect();
        assert_eq!(got, vec!["src/a.txt"]);
        let got: Vec<String> = resolve_sources(root, "**/*.txt", &ig)
            .unwrap()
            .into_iter()
            .map(|s| s.rel)
            .collect();
        assert_eq!(got, vec!["src/a.txt", "src/sub/c.txt"]);
        assert!(resolve_sources(root, "src/b.txt", &ig).is_err());
        assert!(resolve_sources(root, "../../etc/passwd", &ig).is_err());
        assert!(resolve_sources(root, "escape/passwd", &ig).is_err());
        assert_eq!(
            resolve_sources(root, "/x.log", &ig).unwrap()[0].rel,
            "x.log"
        );
    }
}
