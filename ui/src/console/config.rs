//! `~/.config/berth/config.toml`: key bindings and colours.
//!
//! ```toml
//! [keys]
//! stop = "S"              # an action name (snake_case) = one key …
//! quit = ["q", "C-q"]     # … or several
//!
//! [theme]
//! color = false           # like NO_COLOR
//! ```
//! A rebound action keeps its scopes and help text; only its keys change.

use super::keys::{Action, Binding, default_keymap, parse_key};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    keys: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    theme: RawTheme,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTheme {
    color: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The console's settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub keymap: Vec<Binding>,
    /// `Some(false)` turns colour off, whatever `NO_COLOR` says.
    pub color: Option<bool>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            keymap: default_keymap(),
            color: None,
        }
    }
}

/// Where the config file is looked for.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("berth/config.toml"))
}

impl Config {
    /// Load a config file; a missing file is the defaults, a bad one an error naming it.
    pub fn load(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let mut keymap = default_keymap();
        for (name, keys) in raw.keys {
            let action: Action = serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| format!("[keys] {name}: no such action"))?;
            let keys = match keys {
                OneOrMany::One(k) => vec![k],
                OneOrMany::Many(v) => v,
            };
            let mut parsed = Vec::new();
            for k in &keys {
                parsed.push(
                    parse_key(k).ok_or_else(|| format!("[keys] {name}: cannot read key {k:?}"))?,
                );
            }
            // The action's existing bindings give the scopes and texts the new keys inherit.
            let mut templates: Vec<Binding> = Vec::new();
            for b in keymap.iter().filter(|b| b.action == action) {
                if !templates.iter().any(|t| t.scope == b.scope) {
                    templates.push(b.clone());
                }
            }
            keymap.retain(|b| b.action != action);
            for t in templates {
                for (i, (code, mods)) in parsed.iter().enumerate() {
                    // the new key replaces whatever else used it in that scope
                    keymap.retain(|b| !(b.scope == t.scope && b.code == *code && b.mods == *mods));
                    keymap.push(Binding {
                        code: *code,
                        mods: *mods,
                        footer: if i == 0 { t.footer } else { None },
                        ..t.clone()
                    });
                }
            }
        }
        Ok(Self {
            keymap,
            color: raw.theme.color,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::keys::{Scope, lookup};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    #[test]
    fn rebinding_moves_the_action_to_the_new_key() {
        let c = Config::parse(
            "[keys]\nstop = \"S\"\nquit = [\"q\", \"C-q\"]\n[theme]\ncolor = false\n",
        )
        .unwrap();
        let k = |c: char, m| KeyEvent::new(KeyCode::Char(c), m);
        let scopes = [Scope::Containers, Scope::List, Scope::Global];
        assert_eq!(
            lookup(&c.keymap, &scopes, &k('S', KeyModifiers::NONE)),
            Some(Action::Stop)
        );
        assert_eq!(
            lookup(&c.keymap, &scopes, &k('s', KeyModifiers::NONE)),
            None
        );
        assert_eq!(
            lookup(&c.keymap, &scopes, &k('q', KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(c.color, Some(false));
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(
            Config::parse("[keys]\nfly = \"f\"\n")
                .unwrap_err()
                .contains("no such action")
        );
        assert!(
            Config::parse("[keys]\nstop = \"Ctrl+Alt+S\"\n")
                .unwrap_err()
                .contains("cannot read key")
        );
        assert!(Config::parse("[colours]\n").is_err());
    }
}
