//! State of the panes that are more than a list: logs, stats, inspect.

use berth::api::{ContainerId, LogLine, StatsSample};
use std::collections::{HashSet, VecDeque};

/// Lines kept per log view; older ones scroll away.
const LOG_LINES_KEPT: usize = 50_000;
/// Samples kept for the stats charts.
const SAMPLES_KEPT: usize = 300;

/// The log of one container: follow, scroll, wrap, timestamps, search.
#[derive(Debug, Default)]
pub struct LogView {
    pub container: Option<(ContainerId, String)>,
    pub lines: VecDeque<LogLine>,
    /// Stick to the end as lines arrive.
    pub follow: bool,
    pub wrap: bool,
    pub timestamps: bool,
    /// First line shown when not following.
    pub top: usize,
    /// Lines the pane shows.
    pub page: usize,
    pub search: Option<String>,
    /// Indices of lines that match the search, and which one is current.
    pub matches: Vec<usize>,
    pub current: Option<usize>,
    /// The stream ended (container stopped or removed).
    pub ended: bool,
}

impl LogView {
    pub fn open(id: ContainerId, name: String, page: usize) -> Self {
        Self {
            container: Some((id, name)),
            follow: true,
            page,
            ..Default::default()
        }
    }

    pub fn push(&mut self, line: LogLine) {
        if self.lines.len() == LOG_LINES_KEPT {
            self.lines.pop_front();
            self.top = self.top.saturating_sub(1);
            self.matches.retain_mut(|m| {
                *m = m.wrapping_sub(1);
                *m != usize::MAX
            });
        }
        if let Some(q) = &self.search
            && line.line.contains(q.as_str())
        {
            self.matches.push(self.lines.len());
        }
        self.lines.push_back(line);
    }

    /// The first line to show.
    pub fn first_visible(&self) -> usize {
        if self.follow {
            self.lines.len().saturating_sub(self.page)
        } else {
            self.top.min(self.lines.len().saturating_sub(1))
        }
    }

    pub fn scroll_by(&mut self, delta: isize) {
        let start = self.first_visible() as isize;
        let max = self.lines.len().saturating_sub(self.page) as isize;
        self.top = (start.saturating_add(delta)).clamp(0, max.max(0)) as usize;
        self.follow = delta > 0 && self.top as isize >= max;
    }

    pub fn set_search(&mut self, q: Option<String>) {
        self.matches = match &q {
            Some(q) => self
                .lines
                .iter()
                .enumerate()
                .filter(|(_, l)| l.line.contains(q.as_str()))
                .map(|(i, _)| i)
                .collect(),
            None => Vec::new(),
        };
        self.search = q;
        self.current = None;
        if !self.matches.is_empty() {
            self.next_match(false);
        }
    }

    /// Jump to the next (or previous) match, wrapping around.
    pub fn next_match(&mut self, forward: bool) {
        if self.matches.is_empty() {
            return;
        }
        let n = self.matches.len();
        let i = match (self.current, forward) {
            (None, _) => n - 1,
            (Some(c), true) => (c + 1) % n,
            (Some(c), false) => (c + n - 1) % n,
        };
        self.current = Some(i);
        self.follow = false;
        self.top = self.matches[i].saturating_sub(self.page / 2);
    }

    /// The whole log as text, for saving.
    pub fn export(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            if self.timestamps {
                s.push_str(&super::view::rfc3339(l.time));
                s.push(' ');
            }
            s.push_str(&l.line);
            s.push('\n');
        }
        s
    }
}

/// CPU and memory history of one container.
#[derive(Debug, Default)]
pub struct StatsView {
    pub container: Option<(ContainerId, String)>,
    pub samples: VecDeque<StatsSample>,
}

impl StatsView {
    pub fn open(id: ContainerId, name: String) -> Self {
        Self {
            container: Some((id, name)),
            samples: VecDeque::new(),
        }
    }

    pub fn push(&mut self, s: StatsSample) {
        if self.samples.len() == SAMPLES_KEPT {
            self.samples.pop_front();
        }
        self.samples.push_back(s);
    }
}

/// One visible row of the inspect tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeRow {
    pub depth: usize,
    /// JSON pointer of the node (`/Config/Env/0`).
    pub path: String,
    pub key: String,
    /// The value for leaves; `{…}` / `[n]` for folded containers.
    pub value: String,
    pub foldable: bool,
    pub folded: bool,
}

/// A container's or image's full config as a folding tree.
#[derive(Debug, Default)]
pub struct InspectView {
    pub title: String,
    pub value: serde_json::Value,
    pub folded: HashSet<String>,
    pub rows: Vec<TreeRow>,
    pub selected: usize,
    pub offset: usize,
    pub page: usize,
}

impl InspectView {
    pub fn new(title: String, value: serde_json::Value, page: usize) -> Self {
        let mut v = Self {
            title,
            value,
            page,
            ..Default::default()
        };
        // Start with the big sub-trees folded, as people scan the top level first.
        if let serde_json::Value::Object(m) = &v.value {
            for (k, child) in m {
                if matches!(child, serde_json::Value::Object(o) if o.len() > 8)
                    || matches!(child, serde_json::Value::Array(a) if a.len() > 8)
                {
                    v.folded.insert(format!("/{k}"));
                }
            }
        }
        v.rebuild();
        v
    }

    fn rebuild(&mut self) {
        let mut rows = Vec::new();
        walk(&self.value, "", String::new(), 0, &self.folded, &mut rows);
        self.rows = rows;
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    pub fn toggle(&mut self) {
        let Some(row) = self.rows.get(self.selected) else {
            return;
        };
        if !row.foldable {
            return;
        }
        let path = row.path.clone();
        if !self.folded.remove(&path) {
            self.folded.insert(path);
        }
        self.rebuild();
    }

    pub fn move_by(&mut self, delta: isize) {
        let max = self.rows.len().saturating_sub(1) as isize;
        self.selected = (self.selected as isize)
            .saturating_add(delta)
            .clamp(0, max.max(0)) as usize;
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + self.page.saturating_sub(1).max(1) {
            self.offset = self.selected + 1 - self.page.saturating_sub(1).max(1);
        }
    }
}

fn walk(
    v: &serde_json::Value,
    path: &str,
    key: String,
    depth: usize,
    folded: &HashSet<String>,
    rows: &mut Vec<TreeRow>,
) {
    use serde_json::Value as V;
    let is_root = path.is_empty() && key.is_empty();
    let (foldable, summary) = match v {
        V::Object(m) => (true, format!("{{{}}}", m.len())),
        V::Array(a) => (true, format!("[{}]", a.len())),
        V::String(s) => (false, format!("{s:?}")),
        other => (false, other.to_string()),
    };
    let is_folded = folded.contains(path);
    if !is_root {
        rows.push(TreeRow {
            depth,
            path: path.to_owned(),
            key,
            value: if foldable && !is_folded {
                String::new()
            } else {
                summary
            },
            foldable,
            folded: is_folded,
        });
    }
    if is_folded {
        return;
    }
    let child_depth = if is_root { 0 } else { depth + 1 };
    match v {
        V::Object(m) => {
            for (k, c) in m {
                walk(
                    c,
                    &format!("{path}/{k}"),
                    k.clone(),
                    child_depth,
                    folded,
                    rows,
                );
            }
        }
        V::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                walk(
                    c,
                    &format!("{path}/{i}"),
                    format!("[{i}]"),
                    child_depth,
                    folded,
                    rows,
                );
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth::api::Stream;

    fn line(s: &str) -> LogLine {
        LogLine {
            stream: Stream::Stdout,
            time: 0,
            line: s.into(),
        }
    }

    #[test]
    fn search_jumps_between_matches_and_stops_following() {
        let mut v = LogView::open(ContainerId("c".into()), "c".into(), 5);
        for i in 0..50 {
            v.push(line(&format!(
                "line {i}{}",
                if i % 10 == 3 { " ERROR" } else { "" }
            )));
        }
        v.set_search(Some("ERROR".into()));
        assert_eq!(v.matches, [3, 13, 23, 33, 43]);
        assert!(!v.follow);
        assert_eq!(v.current, Some(4));
        v.next_match(true);
        assert_eq!(v.current, Some(0));
        assert_eq!(v.first_visible(), 1);
        v.next_match(false);
        assert_eq!(v.current, Some(4));
        // new matching lines extend the match list
        v.push(line("late ERROR"));
        assert_eq!(v.matches.last(), Some(&50));
    }

    #[test]
    fn scrolling_to_the_end_resumes_follow() {
        let mut v = LogView::open(ContainerId("c".into()), "c".into(), 5);
        for i in 0..20 {
            v.push(line(&i.to_string()));
        }
        assert_eq!(v.first_visible(), 15);
        v.scroll_by(-3);
        assert!(!v.follow);
        assert_eq!(v.first_visible(), 12);
        v.scroll_by(100);
        assert!(v.follow);
    }

    #[test]
    fn inspect_tree_folds() {
        let value =
            serde_json::json!({"Id": "abc", "Config": {"Env": ["A=1", "B=2"], "Cmd": ["sh"]}});
        let mut t = InspectView::new("x".into(), value, 10);
        let keys: Vec<&str> = t.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["Config", "Cmd", "[0]", "Env", "[0]", "[1]", "Id"]);
        t.selected = 3; // Env
        t.toggle();
        let keys: Vec<&str> = t.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["Config", "Cmd", "[0]", "Env", "Id"]);
        assert_eq!(t.rows[3].value, "[2]");
    }
}
