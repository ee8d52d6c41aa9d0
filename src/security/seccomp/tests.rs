use super::*;
use seccompiler::sock_filter;

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;

/// What the kernel would answer for a syscall: a classic-BPF interpreter for the instructions
/// seccompiler emits, combining several programs the way `seccomp_run_filters` does (the
/// answer with the lowest signed action value wins; on a tie, the most recently installed).
fn run(filter: &CompiledFilter, audit_arch: u32, nr: i64, args: [u64; 6]) -> u32 {
    let mut data = Vec::with_capacity(64);
    data.extend_from_slice(&(nr as i32).to_le_bytes());
    data.extend_from_slice(&audit_arch.to_le_bytes());
    data.extend_from_slice(&0u64.to_le_bytes());
    for a in args {
        data.extend_from_slice(&a.to_le_bytes());
    }
    let action = |r: u32| (r & 0xffff_0000) as i32;
    let mut ret = libc::SECCOMP_RET_ALLOW;
    for prog in filter.programs().iter().rev() {
        let cur = interpret(prog, &data);
        if action(cur) < action(ret) {
            ret = cur;
        }
    }
    ret
}

fn interpret(prog: &[sock_filter], data: &[u8]) -> u32 {
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let i = &prog[pc];
        pc += 1;
        match i.code {
            0x20 => {
                let k = i.k as usize;
                a = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
            }
            0x54 => a &= i.k,
            0x05 => pc += i.k as usize,
            0x15 | 0x25 | 0x35 => {
                let taken = match i.code {
                    0x15 => a == i.k,
                    0x25 => a > i.k,
                    _ => a >= i.k,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            0x06 => return i.k,
            other => panic!("instruction {other:#x} not interpreted"),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Allow,
    Errno(u32),
    KillProcess,
}

fn outcome_on(filter: &CompiledFilter, arch: Arch, name: &str, args: [u64; 6]) -> Outcome {
    let nr = arch
        .syscall(name)
        .unwrap_or_else(|| panic!("{name} on {arch}"));
    let audit = match arch {
        Arch::X86_64 => AUDIT_ARCH_X86_64,
        Arch::Aarch64 => AUDIT_ARCH_AARCH64,
    };
    decode(run(filter, audit, nr, args))
}

fn decode(r: u32) -> Outcome {
    match r & 0xffff_0000 {
        0x7fff_0000 => Outcome::Allow,
        0x0005_0000 => Outcome::Errno(r & 0xffff),
        0x8000_0000 => Outcome::KillProcess,
        other => panic!("unexpected action {other:#x}"),
    }
}

fn default_for(arch: Arch, caps: CapSet) -> CompiledFilter {
    Profile::default_profile()
        .compile(arch, caps, KernelVersion(6, 18))
        .unwrap()
}

const EPERM: Outcome = Outcome::Errno(1);
const ENOSYS: Outcome = Outcome::Errno(38);

#[test]
fn shipped_profile_is_valid_reviewed_data() {
    let p = Profile::parse(DEFAULT_PROFILE_JSON, "default.json").unwrap();
    p.validate().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.default_action, Action::Errno(1));
    // every name is known on x86_64, and the x86_64 allow-list is about Docker's size
    let allowed: std::collections::BTreeSet<&str> = p
        .syscalls
        .iter()
        .filter(|g| g.action == Action::Allow)
        .flat_map(|g| g.names.iter().map(String::as_str))
        .collect();
    assert!(allowed.len() > 330, "{}", allowed.len());
    // what Docker never allows by default stays out of every unconditional group
    for never in [
        "keyctl",
        "add_key",
        "request_key",
        "userfaultfd",
        "kexec_load",
        "pivot_root",
        "swapon",
        "io_uring_setup",
    ] {
        assert!(!allowed.contains(never), "{never}");
    }
}

#[test]
fn syscall_tables_agree_with_libc_on_this_machine() {
    let arch = Arch::native().unwrap();
    macro_rules! check {
        ($($name:ident),* $(,)?) => {$(
            assert_eq!(
                arch.syscall(&stringify!($name)[4..]),
                Some(libc::$name),
                "{}",
                stringify!($name)
            );
        )*};
    }
    check!(
        SYS_read,
        SYS_write,
        SYS_openat,
        SYS_close,
        SYS_mmap,
        SYS_clone,
        SYS_clone3,
        SYS_execve,
        SYS_socket,
        SYS_personality,
        SYS_mount,
        SYS_umount2,
        SYS_unshare,
        SYS_setns,
        SYS_keyctl,
        SYS_ptrace,
        SYS_process_vm_readv,
        SYS_bpf,
        SYS_perf_event_open,
        SYS_open_by_handle_at,
        SYS_init_module,
        SYS_finit_module,
        SYS_reboot,
        SYS_chroot,
        SYS_pivot_root,
        SYS_syslog,
        SYS_settimeofday,
        SYS_clock_settime,
        SYS_mbind,
        SYS_vhangup,
        SYS_kcmp,
        SYS_pidfd_getfd,
        SYS_io_uring_setup,
        SYS_landlock_create_ruleset,
        SYS_memfd_secret,
        SYS_futex_waitv,
        SYS_mseal,
        SYS_exit_group,
    );
    // every entry of both tables is unique
    for a in Arch::ALL {
        let mut nrs: Vec<i64> = a.table().iter().map(|(_, n)| *n).collect();
        let len = nrs.len();
        nrs.sort();
        nrs.dedup();
        assert_eq!(nrs.len(), len, "{a}");
    }
}

fn group(names: &[&str], action: Action) -> SyscallGroup {
    SyscallGroup {
        names: names.iter().map(|s| s.to_string()).collect(),
        action,
        args: vec![],
        includes: Applicability::default(),
        excludes: Applicability::default(),
        reason: "test".into(),
    }
}

fn profile(groups: Vec<SyscallGroup>) -> Profile {
    Profile {
        comment: vec![],
        default_action: Action::Errno(1),
        syscalls: groups,
    }
}

fn problems(p: &Profile) -> Vec<String> {
    match p.validate() {
        Ok(()) => vec![],
        Err(SeccompError::Invalid(v)) => v,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn validate_rejects_unknown_syscall_names() {
    let p = profile(vec![group(&["read", "raed", "chown32"], Action::Allow)]);
    let v = problems(&p);
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v[0].contains("unknown syscall \"raed\""), "{v:?}");
    assert!(v[1].contains("unknown syscall \"chown32\""), "{v:?}");
    // a name of one architecture is fine without a restriction, not when limited to the other
    assert!(problems(&profile(vec![group(&["iopl"], Action::Allow)])).is_empty());
    let mut g = group(&["iopl"], Action::Allow);
    g.includes.arches = vec!["aarch64".into()];
    assert!(problems(&profile(vec![g]))[0].contains("not a syscall of aarch64"));
}

#[test]
fn validate_rejects_duplicates() {
    let v = problems(&profile(vec![group(
        &["read", "write", "read"],
        Action::Allow,
    )]));
    assert_eq!(v, vec!["group 0 (read): read is listed twice"]);
    // the same group twice: reported once, on the later one
    let v = problems(&profile(vec![
        group(&["read"], Action::Allow),
        group(&["read"], Action::Allow),
    ]));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].starts_with("group 1: read is redundant"), "{v:?}");
}

#[test]
fn validate_rejects_redundant_rules() {
    // unconditional allow makes a cap-gated or argument-conditioned allow of the same call moot
    let mut gated = group(&["chroot", "acct"], Action::Allow);
    gated.includes.caps = vec!["CAP_SYS_CHROOT".into()];
    let mut conditioned = group(&["personality"], Action::Allow);
    conditioned.args = vec![ArgCondition {
        index: 0,
        width: ArgWidth::Dword,
        op: ArgOp::Eq,
        value: 8,
        mask: None,
    }];
    let v = problems(&profile(vec![
        gated.clone(),
        conditioned.clone(),
        group(&["chroot", "personality"], Action::Allow),
    ]));
    assert_eq!(
        v,
        vec![
            "group 0: chroot is redundant: group 2 already Allows it whenever group 0 would",
            "group 1: personality is redundant: group 2 already Allows it whenever group 1 would",
        ]
    );
    // a group repeating the default action
    let v = problems(&profile(vec![group(&["read"], Action::Errno(1))]));
    assert!(v[0].contains("is the default action"), "{v:?}");
    // not redundant: different caps, an exclusion, a different action, disjoint arches
    let mut a = group(&["syslog"], Action::Allow);
    a.includes.caps = vec!["CAP_SYS_ADMIN".into()];
    let mut b = group(&["syslog"], Action::Allow);
    b.includes.caps = vec!["CAP_SYSLOG".into()];
    let mut c = group(&["clone3"], Action::Errno(38));
    c.excludes.caps = vec!["CAP_SYS_ADMIN".into()];
    let mut d = group(&["clone3"], Action::Allow);
    d.includes.caps = vec!["CAP_SYS_ADMIN".into()];
    assert_eq!(problems(&profile(vec![a, b, c, d])), Vec::<String>::new());
}

#[test]
fn validate_rejects_bad_fields() {
    let mut g = group(&["read"], Action::Allow);
    g.reason = " ".into();
    g.includes.caps = vec!["CAP_FLY".into()];
    g.excludes.arches = vec!["vax".into()];
    g.includes.min_kernel = Some("new".into());
    g.args = vec![
        ArgCondition {
            index: 0,
            width: ArgWidth::Dword,
            op: ArgOp::MaskedEq,
            value: 0,
            mask: None,
        },
        ArgCondition {
            index: 1,
            width: ArgWidth::Dword,
            op: ArgOp::Eq,
            value: 1 << 40,
            mask: None,
        },
        ArgCondition {
            index: 6,
            width: ArgWidth::Qword,
            op: ArgOp::Eq,
            value: 0,
            mask: None,
        },
    ];
    let v = problems(&profile(vec![g]));
    for want in [
        "no reason",
        "unknown capability \"CAP_FLY\"",
        "unknown architecture \"vax\"",
        "bad minKernel \"new\"",
        "masked_eq without a mask",
        "a dword condition cannot compare",
        "invalid argument index",
    ] {
        assert!(v.iter().any(|p| p.contains(want)), "{want}: {v:?}");
    }
    // unknown JSON keys are errors too
    let e = Profile::parse(
        r#"{"defaultAction":"allow","syscalls":[],"colour":1}"#,
        "x.json",
    )
    .unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");
}

#[test]
fn default_profile_semantics_for_docker_default_caps() {
    for arch in Arch::ALL {
        let f = default_for(arch, CapSet::docker_default());
        assert_eq!(f.programs().len(), 2, "main filter plus clone3 → ENOSYS");
        let on = |name: &str, args: [u64; 6]| outcome_on(&f, arch, name, args);
        let none = [0; 6];
        for allowed in [
            "read",
            "write",
            "openat",
            "execve",
            "exit_group",
            "chroot",
            "getrandom",
        ] {
            assert_eq!(on(allowed, none), Outcome::Allow, "{arch} {allowed}");
        }
        for blocked in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "keyctl",
            "add_key",
            "ptrace",
            "process_vm_readv",
            "bpf",
            "perf_event_open",
            "open_by_handle_at",
            "init_module",
            "reboot",
            "settimeofday",
            "pivot_root",
            "io_uring_setup",
            "userfaultfd",
        ] {
            assert_eq!(on(blocked, none), EPERM, "{arch} {blocked}");
        }
        assert_eq!(on("clone3", none), ENOSYS, "{arch}");
        // clone: threads and forks yes, namespaces no
        let thread_flags = 0x3d0f00; // CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|…TID
        assert_eq!(on("clone", [thread_flags, 0, 0, 0, 0, 0]), Outcome::Allow);
        assert_eq!(on("clone", [0x11, 0, 0, 0, 0, 0]), Outcome::Allow);
        for ns in [
            0x2000_0000u64,
            0x1000_0000,
            0x4000_0000,
            0x0002_0000,
            0x0800_0000,
        ] {
            assert_eq!(
                on("clone", [ns | 0x11, 0, 0, 0, 0, 0]),
                EPERM,
                "{arch} {ns:#x}"
            );
        }
        // socket: AF_ALG and AF_VSOCK blocked, even with junk in the upper half
        assert_eq!(on("socket", [2, 1, 0, 0, 0, 0]), Outcome::Allow);
        assert_eq!(on("socket", [16, 3, 0, 0, 0, 0]), Outcome::Allow);
        assert_eq!(on("socket", [39, 0, 0, 0, 0, 0]), Outcome::Allow);
        assert_eq!(on("socket", [44, 0, 0, 0, 0, 0]), Outcome::Allow);
        assert_eq!(on("socket", [38, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(on("socket", [40, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(on("socket", [(1 << 32) | 38, 0, 0, 0, 0, 0]), EPERM);
        // personality: only the listed values
        for ok in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
            assert_eq!(
                on("personality", [ok, 0, 0, 0, 0, 0]),
                Outcome::Allow,
                "{ok:#x}"
            );
        }
        assert_eq!(on("personality", [0x40_0000, 0, 0, 0, 0, 0]), EPERM);
        // another architecture's syscalls kill the process
        let other = match arch {
            Arch::X86_64 => AUDIT_ARCH_AARCH64,
            Arch::Aarch64 => AUDIT_ARCH_X86_64,
        };
        assert_eq!(decode(run(&f, other, 0, none)), Outcome::KillProcess);
    }
    let x86 = default_for(Arch::X86_64, CapSet::docker_default());
    assert_eq!(
        outcome_on(&x86, Arch::X86_64, "arch_prctl", [0; 6]),
        Outcome::Allow
    );
    // an x32 syscall number (bit 30) matches nothing
    assert_eq!(
        decode(run(&x86, AUDIT_ARCH_X86_64, 0x4000_0000, [0; 6])),
        EPERM
    );
}

#[test]
fn capabilities_open_their_groups() {
    let caps = |names: &[&str]| CapSet::docker_default().union(CapSet::parse(names).unwrap());
    let admin = default_for(Arch::X86_64, caps(&["SYS_ADMIN"]));
    assert_eq!(
        admin.programs().len(),
        1,
        "no ENOSYS filter with CAP_SYS_ADMIN"
    );
    let on = |f: &CompiledFilter, name: &str, a0: u64| {
        outcome_on(f, Arch::X86_64, name, [a0, 0, 0, 0, 0, 0])
    };
    for n in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "clone3",
        "bpf",
        "sethostname",
    ] {
        assert_eq!(on(&admin, n, 0), Outcome::Allow, "{n}");
    }
    assert_eq!(on(&admin, "clone", 0x1000_0000), Outcome::Allow);
    assert_eq!(on(&admin, "keyctl", 0), EPERM, "never allowed");
    assert_eq!(on(&admin, "ptrace", 0), EPERM);

    let ptrace = default_for(Arch::X86_64, caps(&["SYS_PTRACE"]));
    for n in ["ptrace", "process_vm_readv", "kcmp", "pidfd_getfd"] {
        assert_eq!(on(&ptrace, n, 0), Outcome::Allow, "{n}");
    }
    assert_eq!(on(&ptrace, "clone3", 0), ENOSYS);

    // dropping a default capability closes its group
    let no_chroot = default_for(
        Arch::X86_64,
        CapSet::docker_default()
            .difference(caps(&[]).intersection(CapSet::parse(&["SYS_CHROOT"]).unwrap())),
    );
    assert_eq!(on(&no_chroot, "chroot", 0), EPERM);

    // every capability: still within the kernel's program size limit
    let all = default_for(Arch::X86_64, CapSet::all());
    assert!(all.programs().iter().all(|p| p.len() <= BPF_MAX_LEN));
    assert_eq!(on(&all, "reboot", 0), Outcome::Allow);
    assert_eq!(on(&all, "iopl", 0), Outcome::Allow);
    let arm_all = default_for(Arch::Aarch64, CapSet::all());
    assert!(Arch::Aarch64.syscall("iopl").is_none());
    assert_eq!(
        outcome_on(&arm_all, Arch::Aarch64, "reboot", [0; 6]),
        Outcome::Allow
    );
}

#[test]
fn min_kernel_includes_follow_the_kernel_version() {
    let mut g = group(&["ptrace"], Action::Allow);
    g.includes.min_kernel = Some("4.8".into());
    let p = profile(vec![g]);
    let on = |k: KernelVersion| {
        let f = p.compile(Arch::X86_64, CapSet::empty(), k).unwrap();
        outcome_on(&f, Arch::X86_64, "ptrace", [0; 6])
    };
    assert_eq!(on(KernelVersion(4, 7)), EPERM);
    assert_eq!(on(KernelVersion(4, 8)), Outcome::Allow);
    assert_eq!(on(KernelVersion(6, 18)), Outcome::Allow);
    assert_eq!(
        KernelVersion::parse("6.18.44-fc-v595"),
        Some(KernelVersion(6, 18))
    );
    assert_eq!(KernelVersion::parse("5"), Some(KernelVersion(5, 0)));
}

#[test]
fn default_allow_profiles_and_several_actions() {
    // a deny-list profile: default allow, kill on one call, errno on another
    let p = Profile {
        comment: vec![],
        default_action: Action::Allow,
        syscalls: vec![
            group(&["mkdir", "mkdirat"], Action::Errno(13)),
            group(&["reboot"], Action::KillProcess),
        ],
    };
    let f = p
        .compile(Arch::X86_64, CapSet::empty(), KernelVersion(6, 1))
        .unwrap();
    assert_eq!(f.programs().len(), 2);
    let on = |n: &str| outcome_on(&f, Arch::X86_64, n, [0; 6]);
    assert_eq!(on("mkdirat"), Outcome::Errno(13));
    assert_eq!(on("reboot"), Outcome::KillProcess);
    assert_eq!(on("read"), Outcome::Allow);
    // nothing to filter at all
    let empty = Profile {
        comment: vec![],
        default_action: Action::Allow,
        syscalls: vec![],
    };
    assert!(
        empty
            .compile(Arch::X86_64, CapSet::empty(), KernelVersion(6, 1))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn compiled_filters_round_trip_through_bytes() {
    let f = default_for(Arch::X86_64, CapSet::docker_default());
    let bytes = f.to_bytes();
    assert_eq!(
        bytes.len(),
        12 + 4 * f.programs().len() + 8 * f.instruction_count()
    );
    assert_eq!(CompiledFilter::from_bytes(&bytes).unwrap(), f);
    for bad in [
        &bytes[..bytes.len() - 1],
        &bytes[1..],
        &[bytes.as_slice(), &[0]].concat(),
    ] {
        assert!(CompiledFilter::from_bytes(bad).is_err());
    }
    let k = |caps| {
        cache_key(
            Profile::default_profile(),
            Arch::X86_64,
            caps,
            KernelVersion(6, 18),
        )
    };
    assert_eq!(k(CapSet::docker_default()), k(CapSet::docker_default()));
    assert_ne!(k(CapSet::docker_default()), k(CapSet::all()));
    assert_ne!(
        k(CapSet::empty()),
        cache_key(
            Profile::default_profile(),
            Arch::Aarch64,
            CapSet::empty(),
            KernelVersion(6, 18)
        )
    );
}

#[test]
fn compile_time_is_small() {
    let p = Profile::default_profile();
    let start = std::time::Instant::now();
    let n = 20;
    for i in 0..n {
        // vary the caps so nothing is cached
        let caps = CapSet::from_bits(CapSet::docker_default().bits() ^ (1 << (i % 41)));
        p.compile(Arch::native().unwrap(), caps, KernelVersion(6, 18))
            .unwrap();
    }
    let per = start.elapsed() / n;
    let f = default_for(Arch::native().unwrap(), CapSet::docker_default());
    eprintln!(
        "compiling the default profile: {per:?} per container, {} programs, {} instructions",
        f.programs().len(),
        f.instruction_count()
    );
    // generous for an unoptimised build on a loaded 2-core machine; release is far below 1 ms
    assert!(per < std::time::Duration::from_millis(50), "{per:?}");
    // the cache answers the second call with the same program
    let a = default_program(CapSet::docker_default()).unwrap();
    let b = default_program(CapSet::docker_default()).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
}

#[test]
fn docker_format_profiles_convert() {
    let json = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
        "syscalls": [
            {"names": ["read", "write", "exit_group", "chown32"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "comment": "old style"}
        ]
    }"#;
    let p = Profile::from_docker_json(json, "custom.json").unwrap();
    assert_eq!(p.syscalls[1].args[0].mask, Some(2114060288));
    assert_eq!(p.syscalls[1].args[0].value, 0);
    assert_eq!(p.syscalls[4].reason, "old style");
    let f = p
        .compile(Arch::X86_64, CapSet::docker_default(), KernelVersion(6, 1))
        .unwrap();
    let on = |n: &str, a0: u64| outcome_on(&f, Arch::X86_64, n, [a0, 0, 0, 0, 0, 0]);
    assert_eq!(on("read", 0), Outcome::Allow);
    assert_eq!(on("arch_prctl", 0), Outcome::Allow);
    assert_eq!(on("clone", 0x11), Outcome::Allow);
    assert_eq!(on("clone", 0x1000_0011), EPERM);
    assert_eq!(on("clone3", 0), ENOSYS);
    assert_eq!(on("mkdir", 0), EPERM);
    assert_eq!(on("openat", 0), EPERM);

    let e = Profile::from_docker_json(
        r#"{"defaultAction":"SCMP_ACT_NOTIFY","syscalls":[]}"#,
        "n.json",
    )
    .unwrap_err();
    assert!(e.to_string().contains("seccomp agent"), "{e}");
    assert!(
        Profile::from_docker_json(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_LIKE"}]}]}"#, "o").is_err()
    );
}

#[test]
fn security_opts_choose_the_filter() {
    let none: &[&str] = &[];
    assert_eq!(
        SeccompConfig::from_security_opts(none, false).unwrap(),
        SeccompConfig::Default
    );
    assert_eq!(
        SeccompConfig::from_security_opts(&["no-new-privileges", "seccomp=unconfined"], false)
            .unwrap(),
        SeccompConfig::Unconfined
    );
    assert_eq!(
        SeccompConfig::from_security_opts(&["seccomp:unconfined"], false).unwrap(),
        SeccompConfig::Unconfined
    );
    assert_eq!(
        SeccompConfig::from_security_opts(none, true).unwrap(),
        SeccompConfig::Unconfined
    );
    assert!(
        SeccompConfig::Unconfined
            .program(CapSet::all())
            .unwrap()
            .is_none()
    );

    let dir = tempfile::tempdir().unwrap();
    let docker = dir.path().join("docker.json");
    std::fs::write(&docker, r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#).unwrap();
    let opt = format!("seccomp={}", docker.display());
    let SeccompConfig::Custom(p) =
        SeccompConfig::from_security_opts(&[opt.as_str()], false).unwrap()
    else {
        panic!("expected a custom profile");
    };
    assert_eq!(p.default_action, Action::Allow);
    // berth's own format loads as is
    let ours = dir.path().join("ours.json");
    std::fs::write(&ours, DEFAULT_PROFILE_JSON).unwrap();
    let opt = format!("seccomp={}", ours.display());
    match SeccompConfig::from_security_opts(&[opt.as_str()], false).unwrap() {
        SeccompConfig::Custom(p) => assert_eq!(&*p, Profile::default_profile()),
        other => panic!("{other:?}"),
    }
    let missing = format!("seccomp={}", dir.path().join("nope.json").display());
    assert!(matches!(
        SeccompConfig::from_security_opts(&[missing.as_str()], false),
        Err(SeccompError::Read { .. })
    ));
    assert!(SeccompConfig::from_security_opts(&["seccomp="], false).is_err());
}

#[test]
fn docker_export_round_trips_through_the_docker_importer() {
    let ours = Profile::default_profile();
    let exported = ours.to_docker_json();
    assert_eq!(exported["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(exported["defaultErrnoRet"], 1);
    let back = Profile::from_docker_json(&exported.to_string(), "exported").unwrap();
    // Same groups and reasons; arguments come back as 64-bit comparisons (Docker's format has
    // no width), everything else is identical.
    assert_eq!(back.syscalls.len(), ours.syscalls.len());
    for (a, b) in ours.syscalls.iter().zip(&back.syscalls) {
        assert_eq!(
            (&a.names, a.action, &a.reason),
            (&b.names, b.action, &b.reason)
        );
        assert_eq!(a.args.len(), b.args.len());
        for (x, y) in a.args.iter().zip(&b.args) {
            assert_eq!(
                (x.index, x.op, x.value, x.mask),
                (y.index, y.op, y.value, y.mask)
            );
        }
        assert_eq!(a.includes.caps, b.includes.caps);
    }
    // …so it decides the same way, except for junk in the upper half of int arguments
    let f = back
        .compile(Arch::X86_64, CapSet::docker_default(), KernelVersion(6, 18))
        .unwrap();
    let on = |n: &str, a0: u64| outcome_on(&f, Arch::X86_64, n, [a0, 0, 0, 0, 0, 0]);
    assert_eq!(on("mount", 0), EPERM);
    assert_eq!(on("clone3", 0), ENOSYS);
    assert_eq!(on("socket", 38), EPERM);
    assert_eq!(on("arch_prctl", 0), Outcome::Allow);
    assert_eq!(
        on("socket", (1 << 32) | 38),
        Outcome::Allow,
        "why berth's own format uses dword"
    );
    // the libc form is the same program
    let c = default_for(Arch::X86_64, CapSet::docker_default());
    let l = c.libc_programs();
    assert_eq!(l.len(), c.programs().len());
    assert_eq!(l[0][5].k, c.programs()[0][5].k);
}
