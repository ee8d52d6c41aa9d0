//! The Dockerfile parser: parser directives, comments, line continuations, instructions with
//! their flags, shell and exec forms, and the stages they make. Pure: no file system, no
//! engine. Words are kept raw here; the builder expands variables (see [`super::vars`]) with
//! the ARG/ENV values in force at each step, as Docker does.

use std::fmt;

/// A parse or build error tied to a place in the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {instruction}: {message}")]
pub struct LineError {
    pub file: String,
    pub line: usize,
    /// The instruction keyword (`RUN`, `COPY`…), or `Dockerfile` for file-level problems.
    pub instruction: String,
    pub message: String,
}

/// A command in shell form (one string for the SHELL) or exec form (argv).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

/// The `HEALTHCHECK` instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    None,
    Check {
        test: Command,
        /// Nanoseconds, like Docker's config.
        interval: Option<u64>,
        timeout: Option<u64>,
        start_period: Option<u64>,
        start_interval: Option<u64>,
        retries: Option<u32>,
    },
}

/// What one instruction does. Strings are raw (variables not expanded yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Run(Command),
    /// COPY and ADD.
    Copy {
        add: bool,
        sources: Vec<String>,
        dest: String,
        from: Option<String>,
        chown: Option<String>,
        chmod: Option<String>,
    },
    /// `KEY=value` pairs (values raw, possibly quoted).
    Env(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Workdir(String),
    User(String),
    Label(Vec<(String, String)>),
    Expose(Vec<String>),
    Volume(Vec<String>),
    Entrypoint(Command),
    Cmd(Command),
    StopSignal(String),
    Healthcheck(Healthcheck),
    Shell(Vec<String>),
    Maintainer(String),
}

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The line the instruction starts on (1-based).
    pub line: usize,
    /// The keyword, upper case.
    pub keyword: String,
    /// The instruction as written (continuations joined), for history and the cache key.
    pub text: String,
    pub kind: Kind,
}

/// `FROM image [AS name]` and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub line: usize,
    /// Raw (may use ARGs declared before the first FROM).
    pub base: String,
    pub name: Option<String>,
    pub platform: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub file: String,
    pub escape: char,
    /// ARGs before the first FROM (usable in FROM lines).
    pub global_args: Vec<(String, Option<String>)>,
    pub stages: Vec<Stage>,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Shell(s) => f.write_str(s),
            Command::Exec(v) => write!(f, "{}", serde_json::to_string(v).unwrap_or_default()),
        }
    }
}

impl Dockerfile {
    /// Parses `text`; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Dockerfile, LineError> {
        let err = |line: usize, instruction: &str, message: String| LineError {
            file: file.to_owned(),
            line,
            instruction: instruction.to_owned(),
            message,
        };
        let lines: Vec<&str> = text.lines().collect();
        // Parser directives: `# key=value` lines at the very top.
        let mut escape = '\\';
        let mut first = 0;
        let mut seen = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let Some(rest) = l.trim().strip_prefix('#') else {
                break;
            };
            let Some((k, v)) = rest.split_once('=') else {
                break;
            };
            let k = k.trim().to_ascii_lowercase();
            if k.is_empty() || k.contains(char::is_whitespace) {
                break;
            }
            if seen.contains(&k) {
                return Err(err(
                    i + 1,
                    "Dockerfile",
                    format!("directive {k:?} given twice"),
                ));
            }
            match k.as_str() {
                "escape" => {
                    escape = match v.trim() {
                        "\\" => '\\',
                        "`" => '`',
                        other => {
                            return Err(err(
                                i + 1,
                                "Dockerfile",
                                format!(
                                    "invalid escape token {other:?}: only \\ and ` are allowed"
                                ),
                            ));
                        }
                    }
                }
                "syntax" | "check" => {}
                _ => break, // an unknown directive is a comment
            }
            seen.push(k);
            first = i + 1;
        }
        // Logical lines: comments dropped, continuations joined.
        let mut logical: Vec<(usize, String)> = Vec::new();
        let mut cur: Option<(usize, String)> = None;
        for (i, raw) in lines.iter().enumerate().skip(first) {
            let trimmed = raw.trim_start();
            if trimmed.starts_with('#') {
                continue; // comments, also inside a continued instruction
            }
            if cur.is_some() && trimmed.trim_end().is_empty() {
                continue; // empty lines inside a continuation
            }
            let body = raw.trim_end();
            let (piece, continues) = match body.strip_suffix(escape) {
                Some(p) => (p, true),
                None => (body, false),
            };
            match &mut cur {
                Some((_, s)) => s.push_str(piece),
                None => cur = Some((i + 1, piece.to_owned())),
            }
            if !continues {
                let (n, s) = cur.take().expect("set");
                if !s.trim().is_empty() {
                    logical.push((n, s));
                }
            }
        }
        if let Some((n, s)) = cur
            && !s.trim().is_empty()
        {
            logical.push((n, s));
        }

        let mut df = Dockerfile {
            file: file.to_owned(),
            escape,
            global_args: Vec::new(),
            stages: Vec::new(),
        };
        for (line, text) in logical {
            let text = text.trim().to_owned();
            let (kw, rest) = match text.find(char::is_whitespace) {
                Some(p) => (&text[..p], text[p..].trim()),
                None => (text.as_str(), ""),
            };
            let keyword = kw.to_ascii_uppercase();
            let e = |m: String| err(line, &keyword, m);
            if rest.is_empty() {
                return Err(e(format!("{keyword} requires at least one argument")));
            }
            if keyword == "FROM" {
                let (flags, args) = split_flags(rest, &["platform"]).map_err(e)?;
                let words = split_words(args, escape);
                let (base, name) = match words.as_slice() {
                    [b] => (b.clone(), None),
                    [b, as_, n] if as_.eq_ignore_ascii_case("as") => {
                        let n = n.to_ascii_lowercase();
                        if !n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                            || !n
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                        {
                            return Err(e(format!("invalid stage name {n:?}")));
                        }
                        if df
                            .stages
                            .iter()
                            .any(|s| s.name.as_deref() == Some(n.as_str()))
                        {
                            return Err(e(format!("duplicate stage name {n:?}")));
                        }
                        (b.clone(), Some(n))
                    }
                    _ => return Err(e("expected FROM <image> [AS <name>]".into())),
                };
                df.stages.push(Stage {
                    line,
                    base,
                    name,
                    platform: flag(&flags, "platform"),
                    instructions: Vec::new(),
                });
                continue;
            }
            let kind = parse_instruction(&keyword, rest, escape).map_err(e)?;
            match df.stages.last_mut() {
                Some(stage) => stage.instructions.push(Instruction {
                    line,
                    keyword,
                    text,
                    kind,
                }),
                None => match kind {
                    Kind::Arg(args) => df.global_args.extend(args),
                    _ => {
                        return Err(e(
                            "no FROM before this instruction (only ARG may come before the first FROM)"
                                .into(),
                        ));
                    }
                },
            }
        }
        if df.stages.is_empty() {
            return Err(err(
                lines.len().max(1),
                "Dockerfile",
                "no FROM instruction: the file has no build stage".into(),
            ));
        }
        Ok(df)
    }

    /// The index of the stage `name` (a stage name or a number).
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| {
                name.parse::<usize>()
                    .ok()
                    .filter(|&i| i < self.stages.len())
            })
    }
}

fn flag(flags: &[(String, String)], name: &str) -> Option<String> {
    flags
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// `--name=value` flags, in order.
type Flags = Vec<(String, String)>;

/// Splits leading `--name=value` flags off `rest`, allowing only `allowed` names.
fn split_flags<'a>(mut rest: &'a str, allowed: &[&str]) -> Result<(Flags, &'a str), String> {
    let mut flags = Vec::new();
    while let Some(f) = rest.strip_prefix("--") {
        let end = f.find(char::is_whitespace).unwrap_or(f.len());
        let (word, after) = (&f[..end], f[end..].trim_start());
        let (k, v) = match word.split_once('=') {
            Some((k, v)) => (k, v),
            None => (word, "true"),
        };
        if !allowed.contains(&k) {
            return Err(format!("unknown flag: --{k}"));
        }
        flags.push((k.to_owned(), v.to_owned()));
        rest = after;
    }
    Ok((flags, rest))
}

/// Exec form when `s` is a JSON array of strings.
fn json_array(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

fn command(s: &str) -> Command {
    match json_array(s) {
        Some(v) => Command::Exec(v),
        None => Command::Shell(s.to_owned()),
    }
}

/// Splits on unquoted whitespace, keeping quotes and escapes (expansion removes them later).
pub fn split_words(s: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    let mut in_word = false;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                cur.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// `KEY=value …` pairs, or the legacy `KEY value` form (when `legacy`).
fn name_values(rest: &str, escape: char, legacy: bool) -> Result<Vec<(String, String)>, String> {
    let words = split_words(rest, escape);
    if legacy && !words[0].contains('=') {
        let key = words[0].clone();
        let value = rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..]
            .trim()
            .to_owned();
        if value.is_empty() {
            return Err(format!("{key} needs a value (KEY value or KEY=value)"));
        }
        return Ok(vec![(key, value)]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(format!("{w:?} is not KEY=value")),
        })
        .collect()
}

fn parse_instruction(keyword: &str, rest: &str, escape: char) -> Result<Kind, String> {
    Ok(match keyword {
        "RUN" => {
            let (flags, args) = split_flags(rest, &["network", "mount", "security"])?;
            for (k, v) in &flags {
                // Build steps run without a network; nothing else is offered.
                if !(k == "network" && (v == "none" || v == "default")) {
                    return Err(format!("RUN --{k}={v} is not supported by berth"));
                }
            }
            Kind::Run(command(args))
        }
        "COPY" | "ADD" => {
            let allowed: &[&str] = if keyword == "COPY" {
                &["from", "chown", "chmod", "link", "parents", "exclude"]
            } else {
                &[
                    "chown",
                    "chmod",
                    "link",
                    "checksum",
                    "keep-git-dir",
                    "exclude",
                ]
            };
            let (flags, args) = split_flags(rest, allowed)?;
            let mut words = json_array(args).unwrap_or_else(|| split_words(args, escape));
            if words.len() < 2 {
                return Err(format!(
                    "{keyword} requires at least two arguments: source(s) and destination"
                ));
            }
            let dest = words.pop().expect("two");
            Kind::Copy {
                add: keyword == "ADD",
                sources: words,
                dest,
                from: flag(&flags, "from"),
                chown: flag(&flags, "chown"),
                chmod: flag(&flags, "chmod"),
            }
        }
        "ENV" => Kind::Env(name_values(rest, escape, true)?),
        "LABEL" => Kind::Label(name_values(rest, escape, false)?),
        "ARG" => Kind::Arg(
            split_words(rest, escape)
                .into_iter()
                .map(|w| match w.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (w, None),
                })
                .collect(),
        ),
        "WORKDIR" => Kind::Workdir(rest.to_owned()),
        "USER" => Kind::User(rest.to_owned()),
        "EXPOSE" => Kind::Expose(split_words(rest, escape)),
        "VOLUME" => Kind::Volume(json_array(rest).unwrap_or_else(|| split_words(rest, escape))),
        "ENTRYPOINT" => Kind::Entrypoint(command(rest)),
        "CMD" => Kind::Cmd(command(rest)),
        "STOPSIGNAL" => Kind::StopSignal(rest.to_owned()),
        "SHELL" => match json_array(rest) {
            Some(v) if !v.is_empty() => Kind::Shell(v),
            _ => {
                return Err(
                    "SHELL requires the arguments in JSON form, like [\"/bin/sh\", \"-c\"]".into(),
                );
            }
        },
        "MAINTAINER" => Kind::Maintainer(rest.to_owned()),
        "HEALTHCHECK" => {
            if rest.eq_ignore_ascii_case("none") {
                Kind::Healthcheck(Healthcheck::None)
            } else {
                let (flags, args) = split_flags(
                    rest,
                    &[
                        "interval",
                        "timeout",
                        "start-period",
                        "start-interval",
                        "retries",
                    ],
                )?;
                let (kw, cmd) = match args.find(char::is_whitespace) {
                    Some(p) => (&args[..p], args[p..].trim()),
                    None => (args, ""),
                };
                if !kw.eq_ignore_ascii_case("cmd") || cmd.is_empty() {
                    return Err(
                        "expected HEALTHCHECK [OPTIONS] CMD command, or HEALTHCHECK NONE".into(),
                    );
                }
                let dur = |name: &str| -> Result<Option<u64>, String> {
                    flag(&flags, name)
                        .map(|v| parse_duration(&v).ok_or(format!("invalid --{name} {v:?}")))
                        .transpose()
                };
                Kind::Healthcheck(Healthcheck::Check {
                    test: command(cmd),
                    interval: dur("interval")?,
                    timeout: dur("timeout")?,
                    start_period: dur("start-period")?,
                    start_interval: dur("start-interval")?,
                    retries: flag(&flags, "retries")
                        .map(|v| v.parse().map_err(|_| format!("invalid --retries {v:?}")))
                        .transpose()?,
                })
            }
        }
        "ONBUILD" => return Err("ONBUILD is not supported by berth".into()),
        other => return Err(format!("unknown instruction {other}")),
    })
}

/// Go-style durations: `30s`, `1m30s`, `500ms`, `1h`. Nanoseconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(0);
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&p| p > 0)?;
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit: f64 = match &rest[..u_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u_end..];
        total = total.checked_add((n * unit) as u64)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Dockerfile {
        Dockerfile::parse("Dockerfile", s).unwrap()
    }

    fn parse_err(s: &str) -> LineError {
        Dockerfile::parse("Dockerfile", s).unwrap_err()
    }

    #[test]
    fn stages_continuations_comments_and_forms() {
        let df = parse(
            "# syntax=docker/dockerfile:1\nARG BASE=busybox\nFROM ${BASE} AS build\n# a comment\nRUN echo a \\\n  # inside\n  && echo b\nRUN [\"sh\", \"-c\", \"true\"]\n\nFROM scratch\nCOPY --from=build --chown=1:2 /a /b /dst/\n",
        );
        assert_eq!(
            df.global_args,
            vec![("BASE".into(), Some("busybox".into()))]
        );
        assert_eq!(df.stages.len(), 2);
        assert_eq!(df.stages[0].name.as_deref(), Some("build"));
        assert_eq!(df.stages[0].base, "${BASE}");
        let run = &df.stages[0].instructions[0];
        assert_eq!(run.line, 5);
        assert_eq!(
            run.kind,
            Kind::Run(Command::Shell("echo a   && echo b".into()))
        );
        assert_eq!(
            df.stages[0].instructions[1].kind,
            Kind::Run(Command::Exec(vec!["sh".into(), "-c".into(), "true".into()]))
        );
        assert_eq!(df.stages[1].line, 10);
        assert_eq!(
            df.stages[1].instructions[0].kind,
            Kind::Copy {
                add: false,
                sources: vec!["/a".into(), "/b".into()],
                dest: "/dst/".into(),
                from: Some("build".into()),
                chown: Some("1:2".into()),
                chmod: None,
            }
        );
        assert_eq!(df.stage_index("BUILD"), Some(0));
        assert_eq!(df.stage_index("1"), Some(1));
    }

    #[test]
    fn escape_directive_and_env_forms() {
        let df = parse(
            "# escape=`\nFROM x\nENV A=1 B=\"two words\" `\n    C=3\nENV LEGACY some value\n",
        );
        assert_eq!(df.escape, '`');
        assert_eq!(
            df.stages[0].instructions[0].kind,
            Kind::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "\"two words\"".into()),
                ("C".into(), "3".into())
            ])
        );
        assert_eq!(
            df.stages[0].instructions[1].kind,
            Kind::Env(vec![("LEGACY".into(), "some value".into())])
        );
    }

    #[test]
    fn healthcheck_shell_and_metadata() {
        let df = parse(
            "FROM x\nHEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost\nHEALTHCHECK NONE\nSHELL [\"/bin/sh\", \"-ec\"]\nEXPOSE 80/tcp 53/udp\nVOLUME [\"/data\"]\nSTOPSIGNAL SIGINT\nLABEL a=b \"c d\"=e\n",
        );
        let i = &df.stages[0].instructions;
        assert_eq!(
            i[0].kind,
            Kind::Healthcheck(Healthcheck::Check {
                test: Command::Shell("wget -q localhost".into()),
                interval: Some(5_000_000_000),
                timeout: None,
                start_period: None,
                start_interval: None,
                retries: Some(3),
            })
        );
        assert_eq!(i[1].kind, Kind::Healthcheck(Healthcheck::None));
        assert_eq!(i[2].kind, Kind::Shell(vec!["/bin/sh".into(), "-ec".into()]));
        assert_eq!(
            i[3].kind,
            Kind::Expose(vec!["80/tcp".into(), "53/udp".into()])
        );
        assert_eq!(i[4].kind, Kind::Volume(vec!["/data".into()]));
        assert_eq!(
            i[6].kind,
            Kind::Label(vec![
                ("a".into(), "b".into()),
                ("\"c d\"".into(), "e".into())
            ])
        );
    }

    #[test]
    fn errors_name_file_line_and_instruction() {
        let e = parse_err("FROM x\nRUN true\nCOPY onlyone\n");
        assert_eq!((e.line, e.instruction.as_str()), (3, "COPY"));
        assert!(e.to_string().starts_with("Dockerfile:3: COPY: "), "{e}");
        let e = parse_err("FROM x\n\nFROBNICATE y\n");
        assert_eq!((e.line, e.instruction.as_str()), (3, "FROBNICATE"));
        let e = parse_err("RUN true\n");
        assert_eq!((e.line, e.instruction.as_str()), (1, "RUN"));
        let e = parse_err("# just a comment\n");
        assert_eq!(e.instruction, "Dockerfile");
        let e = parse_err("FROM x\nSHELL sh -c\n");
        assert_eq!(e.line, 2);
        let e = parse_err("FROM x\nCOPY --bogus=1 a b\n");
        assert!(e.message.contains("--bogus"), "{e}");
        let e = parse_err("FROM x\nRUN --mount=type=cache,target=/c true\n");
        assert!(e.message.contains("--mount"), "{e}");
        let e = parse_err("FROM a AS one\nFROM b AS one\n");
        assert_eq!(e.line, 2);
        let e = parse_err("# escape=x\nFROM a\n");
        assert_eq!(e.line, 1);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("5"), None);
    }
}
