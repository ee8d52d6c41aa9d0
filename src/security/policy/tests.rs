use super::*;

const ACTIONS: &[&str] = &[
    "container.create",
    "container.list",
    "container.exec",
    "container.start",
    "image.pull",
    "image.push",
];

fn root() -> Subject {
    Subject {
        uid: 0,
        gid: 0,
        groups: vec![],
    }
}

fn user(uid: u32) -> Subject {
    Subject {
        uid,
        gid: uid,
        groups: vec![],
    }
}

fn req(action: &str) -> Request {
    Request {
        action: action.into(),
        ..Default::default()
    }
}

#[test]
fn first_match_wins_and_default_is_deny() {
    let p = Policy::parse(
        "[[rule]]\naction = \"image.*\"\ndecision = \"deny\"\nreason = \"no pulls\"\n\
         [[rule]]\naction = \"*\"\nsubject = \"uid:0\"\ndecision = \"allow\"\n",
        "t.toml",
        ACTIONS,
    )
    .unwrap();
    let d = p.decide(&root(), &req("image.pull"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.rule.as_deref(), Some("t.toml:1"));
    assert_eq!(d.reason, "no pulls");
    assert_eq!(
        p.decide(&root(), &req("container.list")).verdict,
        Verdict::Allow
    );
    let d = p.decide(&user(1000), &req("container.list"));
    assert_eq!((d.verdict, d.rule), (Verdict::Deny, None));
}

#[test]
fn builtin_lets_root_work_and_confirms_privileged() {
    let p = Policy::builtin(ACTIONS).unwrap();
    assert_eq!(
        p.decide(&root(), &req("container.create")).verdict,
        Verdict::Allow
    );
    let mut r = req("container.create");
    r.facts.privileged = true;
    assert_eq!(p.decide(&root(), &r).verdict, Verdict::Confirm);
}

#[test]
fn load_errors_name_the_line() {
    let e = Policy::parse(
        "\n[[rule]]\naction = \"container.fly\"\ndecision = \"allow\"\n",
        "p",
        ACTIONS,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "p:2: unknown action \"container.fly\"");
    let e = Policy::parse(
        "[[rule]]\naction = \"*\"\ndecision = \"maybe\"\n",
        "p",
        ACTIONS,
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("p:3: "), "{e}");
    let e = Policy::parse(
        "[[rule]]\naction = \"*\"\ndecision = \"allow\"\nsubject = \"uid:x\"\n",
        "p",
        ACTIONS,
    )
    .unwrap_err();
    assert!(e.to_string().contains("not a number"), "{e}");
    let e = Policy::parse(
        "[[rule]]\naction = \"*\"\ndecision = \"allow\"\ncolour = 1\n",
        "p",
        ACTIONS,
    )
    .unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");
}

fn create(f: impl FnOnce(&mut Facts)) -> Request {
    let mut r = req("container.create");
    r.facts.image = Some("busybox".into());
    r.facts.user = Some("1000".into());
    f(&mut r.facts);
    r
}

/// Whether `condition` (one TOML line) holds for `request`, through a real policy: an allow
/// rule with it, and nothing else.
fn holds(condition: &str, request: &Request) -> bool {
    let text = format!(
        "[[rule]]\naction = \"{}\"\ndecision = \"allow\"\n{condition}\n",
        request.action
    );
    let p = Policy::parse(&text, "c.toml", ACTIONS).unwrap_or_else(|e| panic!("{e}"));
    let d = p.decide(&root(), request);
    // The explanation must agree with the decision.
    let e = p.explain(&root(), request);
    assert_eq!(e.decision, d);
    assert_eq!(e.rules[0].miss.is_none(), d.verdict == Verdict::Allow);
    d.verdict == Verdict::Allow
}

fn load_err(text: &str) -> String {
    Policy::parse(text, "p.toml", ACTIONS)
        .expect_err("the policy should not load")
        .to_string()
}

#[test]
fn registries_match_the_normalised_registry() {
    let c = r#"registries = ["docker.io", "*.corp.example"]"#;
    assert!(holds(c, &create(|_| {})));
    assert!(holds(
        c,
        &create(|f| f.image = Some("library/busybox:1".into()))
    ));
    assert!(holds(
        c,
        &create(|f| f.image = Some("reg.corp.example/app".into()))
    ));
    assert!(!holds(
        c,
        &create(|f| f.image = Some("ghcr.io/o/app".into()))
    ));
    assert!(!holds(
        c,
        &create(|f| f.image = Some("127.0.0.1:5000/busybox".into()))
    ));
    // a pull carries the image too
    let mut pull = req("image.pull");
    pull.facts.image = Some("quay.io/x/y".into());
    assert!(!holds(c, &pull));
    pull.facts.image = Some("alpine".into());
    assert!(holds(c, &pull));
}

#[test]
fn repositories_match_normalised_names_and_patterns() {
    let c = r#"repositories = ["busybox", "docker.io/bitnami/*", "127.0.0.1:5000/*"]"#;
    assert!(holds(c, &create(|_| {})));
    assert!(holds(
        c,
        &create(|f| f.image = Some("docker.io/library/busybox:1.36".into()))
    ));
    assert!(holds(
        c,
        &create(|f| f.image = Some("bitnami/redis@sha256:00".into()))
    ));
    assert!(holds(
        c,
        &create(|f| f.image = Some("127.0.0.1:5000/a/b:c".into()))
    ));
    assert!(!holds(c, &create(|f| f.image = Some("alpine".into()))));
    assert!(!holds(
        c,
        &create(|f| f.image = Some("evil.io/library/busybox".into()))
    ));
}

#[test]
fn privileged_condition_applies_to_create_and_exec() {
    assert!(holds("privileged = true", &create(|f| f.privileged = true)));
    assert!(!holds("privileged = true", &create(|_| {})));
    assert!(holds("privileged = false", &create(|_| {})));
    let mut exec = req("container.exec");
    exec.facts.privileged = true;
    assert!(holds("privileged = true", &exec));
    assert!(!holds("privileged = false", &exec));
}

#[test]
fn cap_add_holds_when_any_listed_cap_is_added() {
    let c = r#"cap_add = ["SYS_ADMIN", "CAP_NET_ADMIN"]"#;
    let adds = |caps: &[&str]| create(|f| f.cap_add = caps.iter().map(|s| s.to_string()).collect());
    assert!(holds(c, &adds(&["net_admin"])));
    assert!(holds(c, &adds(&["CHOWN", "CAP_SYS_ADMIN"])));
    assert!(holds(c, &adds(&["ALL"])));
    assert!(
        holds(c, &adds(&["SYS_ADMINN"])),
        "a typo must not dodge a deny-list"
    );
    assert!(!holds(c, &adds(&["CHOWN"])));
    assert!(!holds(c, &adds(&[])));
    assert!(holds(r#"cap_add = ["ALL"]"#, &adds(&["CHOWN"])));
    assert!(!holds(r#"cap_add = ["ALL"]"#, &adds(&[])));
}

#[test]
fn cap_add_only_holds_when_every_added_cap_is_listed() {
    let c = r#"cap_add_only = ["NET_BIND_SERVICE", "NET_ADMIN"]"#;
    let adds = |caps: &[&str]| create(|f| f.cap_add = caps.iter().map(|s| s.to_string()).collect());
    assert!(holds(c, &adds(&[])));
    assert!(holds(c, &adds(&["NET_ADMIN", "cap_net_bind_service"])));
    assert!(!holds(c, &adds(&["NET_ADMIN", "SYS_ADMIN"])));
    assert!(!holds(c, &adds(&["ALL"])));
    assert!(!holds(c, &adds(&["NET_ADMN"])));
}

#[test]
fn bind_prefixes_hold_when_every_bind_is_under_a_prefix_after_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("srv");
    let secret = dir.path().join("etc");
    std::fs::create_dir_all(allowed.join("data")).unwrap();
    std::fs::create_dir_all(&secret).unwrap();
    std::os::unix::fs::symlink(&secret, allowed.join("link")).unwrap();
    let c = format!("bind_prefixes = [{:?}]", allowed.display().to_string());
    let binds = |paths: &[PathBuf]| {
        create(|f| {
            f.binds = paths
                .iter()
                .map(|p| HostBind {
                    path: p.clone(),
                    read_only: false,
                })
                .collect()
        })
    };
    assert!(holds(&c, &binds(&[])));
    assert!(holds(&c, &binds(std::slice::from_ref(&allowed))));
    assert!(holds(
        &c,
        &binds(&[allowed.join("data"), allowed.join("new/dir")])
    ));
    // `..` and symlinks out of the prefix
    assert!(!holds(&c, &binds(&[allowed.join("../etc")])));
    assert!(!holds(&c, &binds(&[allowed.join("data/../../etc/x")])));
    assert!(!holds(&c, &binds(&[allowed.join("link")])));
    assert!(!holds(&c, &binds(&[allowed.join("link/not-yet")])));
    // a sibling whose name starts with the prefix is not under it
    assert!(!holds(&c, &binds(&[dir.path().join("srv2")])));
    // one bad bind is enough
    assert!(!holds(&c, &binds(&[allowed.join("data"), secret.clone()])));
    assert!(!holds(&c, &binds(&[PathBuf::from("relative/path")])));
}

#[test]
fn bind_read_only_true_needs_every_bind_read_only() {
    let bind = |ro: &[bool]| {
        create(|f| {
            f.binds = ro
                .iter()
                .map(|r| HostBind {
                    path: "/srv".into(),
                    read_only: *r,
                })
                .collect()
        })
    };
    assert!(holds("bind_read_only = true", &bind(&[])));
    assert!(holds("bind_read_only = true", &bind(&[true, true])));
    assert!(!holds("bind_read_only = true", &bind(&[true, false])));
    assert!(holds("bind_read_only = false", &bind(&[true, false])));
    assert!(!holds("bind_read_only = false", &bind(&[true])));
}

#[test]
fn root_user_counts_the_image_default_as_root() {
    let user = |u: Option<&str>| create(|f| f.user = u.map(str::to_owned));
    for root in [
        None,
        Some("0"),
        Some("root"),
        Some("0:0"),
        Some("root:wheel"),
        Some(""),
    ] {
        assert!(holds("root_user = true", &user(root)), "{root:?}");
        assert!(!holds("root_user = false", &user(root)), "{root:?}");
    }
    for not_root in [Some("1000"), Some("1000:0"), Some("nobody"), Some("00x")] {
        assert!(holds("root_user = false", &user(not_root)), "{not_root:?}");
    }
    let mut exec = req("container.exec");
    exec.facts.user = Some("0".into());
    assert!(holds("root_user = true", &exec));
}

#[test]
fn limits_required_and_maxima() {
    let limits = |m: Option<u64>, c: Option<f64>, p: Option<i64>| {
        create(|f| {
            f.memory = m;
            f.cpus = c;
            f.pids_limit = p;
        })
    };
    let r = r#"require_limits = ["memory", "pids"]"#;
    assert!(holds(r, &limits(Some(1), None, Some(10))));
    assert!(!holds(r, &limits(Some(1), Some(1.0), None)));
    assert!(
        !holds(r, &limits(Some(0), None, Some(10))),
        "0 means unlimited"
    );
    assert!(
        !holds(r, &limits(Some(1), None, Some(-1))),
        "-1 means unlimited"
    );

    let m = r#"max_memory = "2g""#;
    assert!(holds(m, &limits(Some(2 << 30), None, None)));
    assert!(!holds(m, &limits(Some((2 << 30) + 1), None, None)));
    assert!(
        !holds(m, &limits(None, None, None)),
        "no limit is over any maximum"
    );
    assert!(holds("max_memory = 1024", &limits(Some(1024), None, None)));
    assert!(holds(
        r#"max_memory = "1.5k""#,
        &limits(Some(1536), None, None)
    ));

    assert!(holds("max_cpus = 1.5", &limits(None, Some(1.5), None)));
    assert!(holds("max_cpus = 2", &limits(None, Some(0.5), None)));
    assert!(!holds(r#"max_cpus = "1""#, &limits(None, Some(1.01), None)));
    assert!(!holds("max_cpus = 2", &limits(None, None, None)));

    assert!(holds("max_pids = 100", &limits(None, None, Some(100))));
    assert!(!holds("max_pids = 100", &limits(None, None, Some(101))));
    assert!(!holds("max_pids = 100", &limits(None, None, Some(0))));
}

#[test]
fn host_namespaces_and_seccomp_unconfined() {
    assert!(holds(
        "host_network = true",
        &create(|f| f.network_host = true)
    ));
    assert!(!holds("host_network = true", &create(|_| {})));
    assert!(holds("host_pid = true", &create(|f| f.pid_host = true)));
    assert!(!holds("host_pid = true", &create(|f| f.ipc_host = true)));
    assert!(holds("host_ipc = true", &create(|f| f.ipc_host = true)));
    assert!(holds("host_ipc = false", &create(|f| f.pid_host = true)));
    assert!(holds(
        "seccomp_unconfined = true",
        &create(|f| f.seccomp_unconfined = true)
    ));
    assert!(holds("seccomp_unconfined = false", &create(|_| {})));
}

#[test]
fn privileged_ports_are_host_ports_below_1024() {
    let ports = |p: &[u16]| create(|f| f.host_ports = p.to_vec());
    assert!(holds("privileged_ports = true", &ports(&[8080, 80])));
    assert!(holds("privileged_ports = true", &ports(&[1023])));
    assert!(!holds("privileged_ports = true", &ports(&[1024, 8080])));
    assert!(
        !holds("privileged_ports = true", &ports(&[0])),
        "0 is a random port"
    );
    assert!(holds("privileged_ports = false", &ports(&[])));
    assert!(!holds("privileged_ports = false", &ports(&[443])));
}

#[test]
fn conditions_on_facts_an_action_does_not_carry_do_not_hold() {
    let p = Policy::parse(
        "[[rule]]\naction = \"*\"\ndecision = \"deny\"\nregistries = [\"evil.io\"]\n\
         [[rule]]\naction = \"*\"\ndecision = \"allow\"\nprivileged = false\n",
        "p",
        ACTIONS,
    )
    .unwrap();
    // container.start carries no image and no privileged flag: neither rule applies
    let d = p.decide(&root(), &req("container.start"));
    assert_eq!((d.verdict, d.rule), (Verdict::Deny, None));
    let e = p.explain(&root(), &req("container.start"));
    assert!(matches!(
        &e.rules[0].miss,
        Some(RuleMiss::Condition { why, .. }) if why == "container.start carries no image"
    ));
    // a pull from evil.io is caught by the first rule; one from elsewhere by neither
    let mut pull = req("image.pull");
    pull.facts.image = Some("evil.io/x".into());
    assert_eq!(p.decide(&root(), &pull).rule.as_deref(), Some("p:1"));
    pull.facts.image = Some("busybox".into());
    assert_eq!(p.decide(&root(), &pull).rule, None);
    // create carries both
    assert_eq!(
        p.decide(&root(), &create(|_| {})).rule.as_deref(),
        Some("p:5")
    );
}

#[test]
fn allow_list_then_catch_all_deny() {
    let p = Policy::parse(
        r#"
[[rule]]
action = "container.create"
decision = "deny"
cap_add = ["SYS_ADMIN"]
reason = "no SYS_ADMIN"

[[rule]]
action = "container.create"
decision = "allow"
registries = ["docker.io"]
bind_prefixes = ["/srv"]
bind_read_only = true
max_memory = "1g"

[[rule]]
action = "container.create"
decision = "deny"
reason = "outside the allow-list"

[[rule]]
action = "*"
decision = "allow"
"#,
        "p",
        ACTIONS,
    )
    .unwrap();
    let ok = create(|f| {
        f.memory = Some(512 << 20);
        f.binds = vec![HostBind {
            path: "/srv/x".into(),
            read_only: true,
        }];
    });
    assert_eq!(p.decide(&root(), &ok).verdict, Verdict::Allow);
    let mut bad = ok.clone();
    bad.facts.image = Some("ghcr.io/a/b".into());
    let d = p.decide(&root(), &bad);
    assert_eq!(
        (d.verdict, d.reason.as_str()),
        (Verdict::Deny, "outside the allow-list")
    );
    let mut bad = ok.clone();
    bad.facts.cap_add = vec!["SYS_ADMIN".into()];
    assert_eq!(p.decide(&root(), &bad).reason, "no SYS_ADMIN");
    let mut bad = ok.clone();
    bad.facts.memory = None;
    assert_eq!(p.decide(&root(), &bad).rule.as_deref(), Some("p:16"));
    // other actions are untouched
    assert_eq!(
        p.decide(&root(), &req("container.list")).verdict,
        Verdict::Allow
    );
}

#[test]
fn subjects_by_uid_and_group() {
    let p = Policy::parse(
        "[[rule]]\naction = \"*\"\nsubject = \"gid:100\"\ndecision = \"allow\"\n\
         [[rule]]\naction = \"*\"\nsubject = \"user:root\"\ndecision = \"confirm\"\n",
        "p",
        ACTIONS,
    )
    .unwrap();
    let member = Subject {
        uid: 1000,
        gid: 1000,
        groups: vec![100],
    };
    assert_eq!(
        p.decide(&member, &req("container.list")).verdict,
        Verdict::Allow
    );
    assert_eq!(
        p.decide(&root(), &req("container.list")).verdict,
        Verdict::Confirm
    );
    assert_eq!(
        p.decide(&user(5), &req("container.list")).verdict,
        Verdict::Deny
    );
}

#[test]
fn explain_lists_each_rule_and_why_it_did_not_apply() {
    let p = Policy::parse(
        r#"[[rule]]
action = "image.*"
decision = "deny"

[[rule]]
action = "container.create"
subject = "uid:1000"
decision = "allow"

[[rule]]
action = "container.create"
decision = "confirm"
registries = ["docker.io"]
max_memory = "1g"

[[rule]]
action = "container.create"
decision = "allow"

[[rule]]
action = "*"
decision = "deny"
"#,
        "x.toml",
        ACTIONS,
    )
    .unwrap();
    let r = create(|f| f.memory = Some(2 << 30));
    let e = p.explain(&root(), &r);
    let misses: Vec<_> = e.rules.iter().map(|t| t.miss.clone()).collect();
    assert_eq!(
        misses,
        vec![
            Some(RuleMiss::Action),
            Some(RuleMiss::Subject),
            Some(RuleMiss::Condition {
                condition: "max_memory = 1073741824".into(),
                why: "memory limit 2147483648 bytes is over 1073741824".into()
            }),
            None,
        ],
        "the last rule is never reached and not listed"
    );
    assert_eq!(e.decision.rule.as_deref(), Some("x.toml:16"));
    assert_eq!(e.decision, p.decide(&root(), &r));
    let text = e.to_string();
    assert!(
        text.contains("x.toml:10  confirm container.create"),
        "{text}"
    );
    assert!(text.contains("=> allow by x.toml:16"), "{text}");
    // no rule applies
    let e = p.explain(&user(7), &req("container.start"));
    assert_eq!(e.rules.len(), 5);
    assert_eq!(e.decision.verdict, Verdict::Deny);
    assert_eq!(e.decision.rule.as_deref(), Some("x.toml:20"));
}

#[test]
fn load_error_bad_condition_values() {
    let rule =
        |c: &str| format!("[[rule]]\naction = \"container.create\"\ndecision = \"deny\"\n{c}\n");
    let cases = [
        (
            r#"cap_add = ["NET_ADMN"]"#,
            "unknown capability \"NET_ADMN\"",
        ),
        (r#"cap_add_only = []"#, "cap_add_only: empty list"),
        (r#"registries = []"#, "registries: empty list"),
        (r#"registries = ["a[b"]"#, "registries: pattern \"a[b\""),
        (
            r#"repositories = ["bitnami/*"]"#,
            "must start with its registry",
        ),
        (r#"max_memory = "2x""#, "max_memory: \"2x\" is not a size"),
        (r#"max_memory = 0"#, "max_memory: expected a positive size"),
        (r#"max_cpus = -1"#, "max_cpus: expected a positive number"),
        (r#"max_cpus = "many""#, "max_cpus: \"many\" is not a number"),
        (r#"max_pids = 0"#, "max_pids: expected a positive number"),
        (r#"max_pids = "10""#, "max_pids: expected a positive number"),
        (
            r#"bind_prefixes = ["srv"]"#,
            "\"srv\" is not an absolute path",
        ),
        (r#"bind_prefixes = ["/srv/../etc"]"#, "contains `..`"),
        (r#"require_limits = ["disk"]"#, "unknown limit \"disk\""),
        (r#"privileged = "yes""#, "invalid type"),
    ];
    for (cond, want) in cases {
        let e = load_err(&rule(cond));
        assert!(e.starts_with("p.toml:4: "), "{cond}: {e}");
        assert!(e.contains(want), "{cond}: {e}");
    }
}

#[test]
fn load_error_condition_the_action_never_carries() {
    let e = load_err(
        "[[rule]]\naction = \"container.start\"\ndecision = \"deny\"\nprivileged = true\n",
    );
    assert_eq!(
        e,
        "p.toml:4: condition privileged can never hold: no request of action \
         \"container.start\" carries privileged flag"
    );
    let e = load_err(
        "[[rule]]\naction = \"container.exec\"\ndecision = \"deny\"\n\nregistries = [\"x\"]\n",
    );
    assert!(e.starts_with("p.toml:5: condition registries"), "{e}");
    // a glob that includes one carrying action is fine
    Policy::parse(
        "[[rule]]\naction = \"container.*\"\ndecision = \"deny\"\nregistries = [\"x\"]\n",
        "p",
        ACTIONS,
    )
    .unwrap();
}

#[test]
fn load_error_bad_action_glob_and_subject() {
    let e = load_err("[[rule]]\naction = \"container.[\"\ndecision = \"deny\"\n");
    assert!(e.starts_with("p.toml:1: action \"container.[\""), "{e}");
    let e = load_err("[[rule]]\naction = \"*\"\ndecision = \"deny\"\nsubject = \"role:admin\"\n");
    assert!(
        e.starts_with("p.toml:4: ") && e.contains("unknown kind"),
        "{e}"
    );
    let e = load_err(
        "[[rule]]\naction = \"*\"\ndecision = \"deny\"\nsubject = \"user:no-such-user-xyz\"\n",
    );
    assert!(e.contains("no such user"), "{e}");
    let e = load_err("[[rule]]\naction = \"*\"\ndecision = \"deny\"\nsubject = \"root\"\n");
    assert!(e.contains("expected user:NAME"), "{e}");
    let e = load_err("[[rule]]\ndecision = \"deny\"\n");
    assert!(e.contains("missing field `action`"), "{e}");
    let e = load_err("[[rule]\naction = \"*\"\n");
    assert!(e.starts_with("p.toml:1: "), "{e}");
}

#[test]
fn load_error_unreachable_rules() {
    // a catch-all for the same subject hides everything after it
    let e = load_err(
        "[[rule]]\naction = \"*\"\nsubject = \"uid:0\"\ndecision = \"allow\"\n\n\
         [[rule]]\naction = \"container.create\"\nsubject = \"uid:0\"\ndecision = \"deny\"\nprivileged = true\n",
    );
    assert_eq!(
        e,
        "p.toml:6: unreachable rule: the rule at line 1 (action \"*\", subject uid:0, no \
         conditions) decides every request this one could match"
    );
    // `*` subject covers a specific one; a covering glob covers an exact action
    let e = load_err(
        "[[rule]]\naction = \"container.*\"\ndecision = \"deny\"\n\
         [[rule]]\naction = \"container.exec\"\nsubject = \"uid:5\"\ndecision = \"allow\"\n",
    );
    assert!(
        e.starts_with("p.toml:4: unreachable rule: the rule at line 1"),
        "{e}"
    );
    // an earlier rule whose conditions are a subset of the later one's
    let e = load_err(
        "[[rule]]\naction = \"container.create\"\ndecision = \"confirm\"\nprivileged = true\n\
         [[rule]]\naction = \"container.create\"\ndecision = \"deny\"\nhost_pid = true\nprivileged = true\n",
    );
    assert!(e.contains("conditions privileged = true"), "{e}");
    // the same rule twice
    let e = load_err(
        "[[rule]]\naction = \"image.pull\"\ndecision = \"deny\"\nregistries = [\"a\"]\n\
         [[rule]]\naction = \"image.pull\"\ndecision = \"allow\"\nregistries = [\"a\"]\n",
    );
    assert!(e.starts_with("p.toml:5: unreachable"), "{e}");

    // reachable: narrower subject first, different condition values, uncovered actions
    for ok in [
        "[[rule]]\naction = \"*\"\nsubject = \"uid:0\"\ndecision = \"allow\"\n\
         [[rule]]\naction = \"*\"\ndecision = \"deny\"\n",
        "[[rule]]\naction = \"container.create\"\ndecision = \"deny\"\nprivileged = true\n\
         [[rule]]\naction = \"container.create\"\ndecision = \"allow\"\nprivileged = false\n",
        "[[rule]]\naction = \"container.create\"\ndecision = \"deny\"\n\
         [[rule]]\naction = \"container.*\"\ndecision = \"allow\"\n",
        "[[rule]]\naction = \"*\"\nsubject = \"gid:0\"\ndecision = \"allow\"\n\
         [[rule]]\naction = \"*\"\nsubject = \"uid:0\"\ndecision = \"deny\"\n",
    ] {
        Policy::parse(ok, "p", ACTIONS).unwrap_or_else(|e| panic!("{e}\n{ok}"));
    }
}

#[test]
fn shipped_policy_keeps_its_behaviour() {
    let p = Policy::builtin(ACTIONS).unwrap();
    // root may do what a Docker user can, privileged needs confirmation, others are denied
    let everything = create(|f| {
        f.cap_add = vec!["ALL".into()];
        f.network_host = true;
        f.pid_host = true;
        f.seccomp_unconfined = true;
        f.host_ports = vec![80];
        f.binds = vec![HostBind {
            path: "/".into(),
            read_only: false,
        }];
    });
    assert_eq!(p.decide(&root(), &everything).verdict, Verdict::Allow);
    let mut privileged = everything.clone();
    privileged.facts.privileged = true;
    assert_eq!(p.decide(&root(), &privileged).verdict, Verdict::Confirm);
    assert_eq!(p.decide(&user(1000), &everything).verdict, Verdict::Deny);
    for a in ACTIONS {
        assert_eq!(p.decide(&root(), &req(a)).verdict, Verdict::Allow, "{a}");
    }
}

#[test]
fn the_example_in_the_shipped_policy_comments_loads_and_works() {
    let example: String = DEFAULT_POLICY
        .lines()
        .skip_while(|l| !l.contains("For example"))
        .skip(1)
        .take_while(|l| !l.contains("A rule that can never apply"))
        .map(|l| l.strip_prefix("#   ").unwrap_or("").to_owned() + "\n")
        .collect::<String>()
        // the test machine may have no `docker` group
        .replace("group:docker", "gid:4242");
    let p =
        Policy::parse(&example, "example", ACTIONS).unwrap_or_else(|e| panic!("{e}\n{example}"));
    let member = Subject {
        uid: 1000,
        gid: 4242,
        groups: vec![],
    };
    let small = create(|f| f.memory = Some(1 << 30));
    assert_eq!(p.decide(&member, &small).verdict, Verdict::Allow);
    let mut big = small.clone();
    big.facts.memory = Some(3 << 30);
    assert_eq!(p.decide(&member, &big).verdict, Verdict::Deny);
}

#[test]
fn load_refuses_a_policy_file_others_can_write() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, "[[rule]]\naction = \"*\"\ndecision = \"allow\"\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(Policy::load(&path, ACTIONS).unwrap().rule_count(), 1);
    // group-writable by the engine's own group (a umask of 002) is fine
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
    Policy::load(&path, ACTIONS).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o646)).unwrap();
    let e = Policy::load(&path, ACTIONS).unwrap_err();
    assert!(matches!(e, PolicyError::Insecure { .. }), "{e}");
    assert!(e.to_string().contains("writable by everyone"), "{e}");
    // another group, or another owner (only root can hand a file away)
    if nix::unistd::geteuid().is_root() {
        nix::unistd::chown(&path, None, Some(nix::unistd::Gid::from_raw(4242))).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
        let e = Policy::load(&path, ACTIONS).unwrap_err();
        assert!(e.to_string().contains("writable by group 4242"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        Policy::load(&path, ACTIONS).unwrap();
        nix::unistd::chown(&path, Some(nix::unistd::Uid::from_raw(4242)), None).unwrap();
        let e = Policy::load(&path, ACTIONS).unwrap_err();
        assert!(e.to_string().contains("owned by uid 4242"), "{e}");
    }
    let e = Policy::load(&dir.path().join("missing.toml"), ACTIONS).unwrap_err();
    assert!(matches!(e, PolicyError::Read { .. }), "{e}");
}
