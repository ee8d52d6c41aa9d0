//! Variable expansion and quote removal for the instructions Docker expands at build time
//! (FROM, ENV, ARG, COPY, ADD, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL): `$VAR`,
//! `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`,
//! single quotes (literal), double quotes (expanding), and the escape character.

/// Looks a variable up; `None` when unset.
pub trait Lookup {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Expands one word (quotes removed). Errors are messages for the caller to place.
pub fn expand(word: &str, escape: char, vars: &dyn Lookup) -> Result<String, String> {
    let mut out = expand_words(word, escape, vars, false)?;
    Ok(out.pop().unwrap_or_default())
}

/// Expands and splits on unquoted whitespace (`split`), or keeps one word.
pub fn expand_words(
    s: &str,
    escape: char,
    vars: &dyn Lookup,
    split: bool,
) -> Result<Vec<String>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut has_word = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == escape {
            if let Some(&n) = chars.get(i + 1) {
                cur.push(n);
                i += 2;
            } else {
                cur.push(c);
                i += 1;
            }
            has_word = true;
        } else if c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == '\'')
                .ok_or("unterminated single quote")?;
            cur.extend(&chars[i + 1..i + 1 + end]);
            i += end + 2;
            has_word = true;
        } else if c == '"' {
            i += 1;
            loop {
                let Some(&d) = chars.get(i) else {
                    return Err("unterminated double quote".into());
                };
                if d == '"' {
                    i += 1;
                    break;
                }
                if d == escape
                    && chars
                        .get(i + 1)
                        .is_some_and(|&n| n == '"' || n == '$' || n == escape)
                {
                    cur.push(chars[i + 1]);
                    i += 2;
                } else if d == '$' {
                    let (v, n) = variable(&chars, i, escape, vars)?;
                    cur.push_str(&v);
                    i = n;
                } else {
                    cur.push(d);
                    i += 1;
                }
            }
            has_word = true;
        } else if c == '$' {
            let (v, n) = variable(&chars, i, escape, vars)?;
            // Unquoted expansions split into words too (like the shell), when splitting.
            if split {
                let mut parts = v.split(char::is_whitespace).peekable();
                if let Some(p) = parts.next() {
                    cur.push_str(p);
                    if !p.is_empty() {
                        has_word = true;
                    }
                }
                for p in parts {
                    if has_word || !cur.is_empty() {
                        words.push(std::mem::take(&mut cur));
                    }
                    has_word = false;
                    cur.push_str(p);
                    if !p.is_empty() {
                        has_word = true;
                    }
                }
            } else {
                cur.push_str(&v);
                has_word = true;
            }
            i = n;
        } else if split && c.is_whitespace() {
            if has_word {
                words.push(std::mem::take(&mut cur));
                has_word = false;
            }
            i += 1;
        } else {
            cur.push(c);
            has_word = true;
            i += 1;
        }
    }
    if has_word || !split {
        words.push(cur);
    }
    Ok(words)
}

/// Reads a `$…` at `chars[i]`; returns its value and the index after it.
fn variable(
    chars: &[char],
    i: usize,
    escape: char,
    vars: &dyn Lookup,
) -> Result<(String, usize), String> {
    let mut j = i + 1;
    match chars.get(j) {
        Some('{') => {
            j += 1;
            let start = j;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            let name: String = chars[start..j].iter().collect();
            if name.is_empty() {
                return Err("bad substitution: empty variable name in ${}".into());
            }
            let value = vars.get(&name);
            if chars.get(j) == Some(&'}') {
                return Ok((value.unwrap_or_default(), j + 1));
            }
            let colon = chars.get(j) == Some(&':');
            if colon {
                j += 1;
            }
            let op = *chars.get(j).ok_or("bad substitution: missing }")?;
            j += 1;
            // The word runs to the matching brace.
            let wstart = j;
            let mut depth = 1;
            while j < chars.len() {
                match chars[j] {
                    c if c == escape => j += 1,
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            if j >= chars.len() {
                return Err(format!("bad substitution: missing }} after ${{{name}"));
            }
            let word: String = chars[wstart..j].iter().collect();
            let set = match &value {
                Some(v) => !colon || !v.is_empty(),
                None => false,
            };
            let expanded = || expand(&word, escape, vars);
            let out = match op {
                '-' => {
                    if set {
                        value.unwrap_or_default()
                    } else {
                        expanded()?
                    }
                }
                '+' => {
                    if set {
                        expanded()?
                    } else {
                        String::new()
                    }
                }
                '?' => {
                    if set {
                        value.unwrap_or_default()
                    } else {
                        let m = expanded()?;
                        return Err(if m.is_empty() {
                            format!("{name}: is not allowed to be unset")
                        } else {
                            format!("{name}: {m}")
                        });
                    }
                }
                other => {
                    return Err(format!(
                        "bad substitution: unsupported modifier {other:?} in ${{{name}"
                    ));
                }
            };
            Ok((out, j + 1))
        }
        Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            let name: String = chars[i + 1..j].iter().collect();
            Ok((vars.get(&name).unwrap_or_default(), j))
        }
        _ => Ok(("$".into(), i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            "E" => Some(String::new()),
            "W" => Some("two words".into()),
            _ => None,
        }
    }

    fn x(s: &str) -> String {
        expand(s, '\\', &vars).unwrap()
    }

    #[test]
    fn forms() {
        assert_eq!(x("$A/${A}"), "alpha/alpha");
        assert_eq!(x("${U:-def}"), "def");
        assert_eq!(x("${E:-def}|${E-def}"), "def|");
        assert_eq!(x("${A:+set}|${U:+set}|${E+set}"), "set||set");
        assert_eq!(x("'$A'\"$A\"\\$A"), "$Aalpha$A");
        assert_eq!(x("${U:-${A}x}"), "alphax");
        assert_eq!(x("a$"), "a$");
        assert!(
            expand("${U:?needed}", '\\', &vars)
                .unwrap_err()
                .contains("needed")
        );
        assert!(expand("${A", '\\', &vars).is_err());
        assert!(expand("'open", '\\', &vars).is_err());
    }

    #[test]
    fn splitting() {
        assert_eq!(
            expand_words("a \"b c\" $W", '\\', &vars, true).unwrap(),
            vec!["a", "b c", "two", "words"]
        );
        assert_eq!(expand_words("`$A", '`', &vars, true).unwrap(), vec!["$A"]);
    }
}
