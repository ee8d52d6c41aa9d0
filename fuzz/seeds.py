#!/usr/bin/env python3
"""Writes the seed corpora fuzz/seeds/<target>/ (committed; `tests/fuzz.sh` copies them into
the working corpus, and the stable suite replays them). Run from anywhere:
`python3 fuzz/seeds.py`. The inputs come from the project's tests: the references of the
hostile-input tests, the Dockerfiles of the parser and build tests, the shipped policy and the
policy tests' rules, the hostile layers of the image tests (aimed at the unpack target's
OUTSIDE directory), and the requests the docker CLI and `berth --host` send."""

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "seeds")
OUTSIDE = "/var/tmp/berth-fuzz-outside"  # fuzz/src/lib.rs OUTSIDE
DIGEST = "sha256:" + "0123456789abcdef" * 4


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def references():
    refs = [
        "busybox",
        "library/busybox:1.36",
        "docker.io/library/busybox:latest",
        "index.docker.io/x/y",
        "127.0.0.1:5000/team/app:v1",
        "localhost/x:y",
        "localhost:5055/berth-test/evil-multi:v1",
        "ghcr.io/a/b@" + DIGEST,
        "localhost/x:y@" + DIGEST,
        "[::1]:5000/x",
        "a.b.c/d/e/f__g-h.i:TAG_1.2-rc",
        "UPPER/case",
        "0123456789abcdef" * 4,
        "x@sha512:" + "ab" * 64,
    ]
    for i, r in enumerate(refs):
        write("reference", f"seed-{i:02}", r)


DOCKERFILES = [
    '# syntax=docker/dockerfile:1\nARG BASE=busybox\nFROM ${BASE} AS build\n# a comment\nRUN echo a \\\n  # inside\n  && echo b\nRUN ["sh", "-c", "true"]\n\nFROM scratch\nCOPY --from=build --chown=1:2 /a /b /dst/\n',
    '# escape=`\nFROM x\nENV A=1 B="two words" `\n    C=3\nENV LEGACY some value\n',
    'FROM x\nHEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost\nHEALTHCHECK NONE\nSHELL ["/bin/sh", "-ec"]\nEXPOSE 80/tcp 53/udp\nVOLUME ["/data"]\nSTOPSIGNAL SIGINT\nLABEL a=b "c d"=e\n',
    "FROM x\nRUN true\nCOPY onlyone\n",
    "FROM a AS one\nFROM b AS one\n",
    "FROM --platform=linux/amd64 busybox\nADD --chmod=755 a.tar /srv/\nUSER 1000:1000\nWORKDIR $HOME/${SET:-x}/${EMPTY:+y}\nMAINTAINER me\nENTRYPOINT exec sh\nCMD [\"a\", 'b']\n",
    'FROM x\nENV A="${B:?must be set}"\nARG C D=${C:-d}\nONBUILD RUN x\n',
]


def dockerfiles():
    for i, d in enumerate(DOCKERFILES):
        write("dockerfile", f"seed-{i:02}", d)
    src = open(os.path.join(ROOT, "tests/build/main.rs")).read()
    start = src.index('const MULTI_STAGE: &str = r#"') + len('const MULTI_STAGE: &str = r#"')
    write("dockerfile", "multi-stage", src[start : src.index('"#;', start)])


def policies():
    write("policy", "shipped", open(os.path.join(ROOT, "assets/policy.toml")).read())
    rules = [
        '[[rule]]\naction = "image.*"\ndecision = "deny"\nreason = "no pulls"\n[[rule]]\naction = "*"\nsubject = "uid:0"\ndecision = "allow"\n',
        '[[rule]]\naction = "container.create"\nsubject = "group:docker"\nregistries = ["docker.io", "*.corp.example"]\nrepositories = ["busybox", "docker.io/bitnami/*", "127.0.0.1:5000/*"]\ndecision = "allow"\n',
        '[[rule]]\naction = "container.create"\ncap_add = ["SYS_ADMIN", "CAP_NET_ADMIN"]\ncap_add_only = ["ALL"]\nbind_prefixes = ["/srv", "/home"]\nbind_read_only = true\nroot_user = false\ndecision = "confirm"\nreason = "r"\n',
        '[[rule]]\naction = "container.create"\nrequire_limits = ["memory", "cpus", "pids"]\nmax_memory = "1.5g"\nmax_cpus = 2\nmax_pids = 512\nsubject = "uid:1000"\ndecision = "allow"\n',
        '[[rule]]\naction = "container.exec"\nprivileged = false\nroot_user = true\nsubject = "user:root"\ndecision = "deny"\n',
    ]
    for i, r in enumerate(rules):
        write("policy", f"seed-{i:02}", r)


def tar_of(entries, fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for e in entries:
            kind, name = e[0], e[1]
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            data = None
            if kind == "file":
                data = e[2]
                info.size = len(data)
                info.mode = e[3] if len(e) > 3 else 0o644
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = e[2]
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = e[2]
            elif kind == "chr":
                info.type = tarfile.CHRTYPE
                info.devmajor, info.devminor = e[2], e[3]
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            if len(e) > 4:
                info.pax_headers = e[4]
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    # Drop the record padding: keep the entries and the two zero blocks that end the archive.
    end = len(raw.rstrip(b"\0"))
    end = (end + 511) // 512 * 512
    return raw[: end + 1024]


def layers():
    t = OUTSIDE
    up = "../../../../../../../../../../.."
    cases = {
        "plain": [
            ("dir", "etc/"),
            ("file", "etc/hostname", b"fuzz\n"),
            ("file", "bin/tool", b"#!/bin/sh\n", 0o4755),
            ("symlink", "bin/sh", "tool"),
            ("hardlink", "bin/sh2", "bin/tool"),
            ("fifo", "run/fifo"),
            ("chr", "dev/null", 1, 3),
        ],
        "whiteouts": [
            ("dir", "a/"),
            ("file", "a/.wh.gone", b""),
            ("file", "a/.wh..wh..opq", b""),
            ("file", ".wh.top", b""),
        ],
        "pax-xattrs": [
            ("file", "x", b"x", 0o600, {"SCHILY.xattr.user.k": "v", "SCHILY.xattr.trusted.overlay.opaque": "y"}),
            ("file", "long/" + "n" * 200, b"long name", 0o644, {"path": "long/" + "n" * 200}),
        ],
        "dotdot": [("file", f"{up}{t}/dotdot", b"pwned")],
        "absolute": [("file", f"{t}/absolute", b"pwned")],
        "symlink-abs": [("symlink", "lnk", t), ("file", "lnk/via-abs-symlink", b"pwned")],
        "symlink-rel": [("symlink", "up", f"{up}{t}"), ("file", "up/via-rel-symlink", b"pwned")],
        "symlink-dir": [("symlink", "d", t), ("dir", "d/newdir/")],
        "symlink-parent": [("symlink", "p", ".."), ("file", "p/beside2", b"pwned")],
        "hardlink-abs": [("hardlink", "h", f"{t}/victim")],
        "hardlink-dotdot": [("hardlink", "h", f"{up}{t}/victim")],
        "hardlink-symlink": [("symlink", "s", t), ("hardlink", "h", "s/victim")],
        "replace-dir-with-symlink": [("dir", "d/"), ("symlink", "d", t), ("file", "d/x", b"pwned")],
        "overwrite-symlink": [("symlink", "f", f"{t}/victim"), ("file", "f", b"pwned")],
    }
    for name, entries in cases.items():
        raw = tar_of(entries, tarfile.PAX_FORMAT if name == "pax-xattrs" else tarfile.GNU_FORMAT)
        write("unpack", f"none-{name}", b"\x00" + raw)
        if name in ("plain", "whiteouts", "symlink-abs"):
            write("unpack", f"gzip-{name}", b"\x01" + gzip.compress(raw, mtime=0))
            if shutil.which("zstd"):
                z = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True).stdout
                write("unpack", f"zstd-{name}", b"\x02" + z)


def http(method, path, body=b"", headers=(), chunked=False):
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} HTTP/1.1", "Host: api.moby.localhost", "User-Agent: Docker-Client/28.2.2 (linux)"]
    lines += list(headers)
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        payload = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n" if body else b"0\r\n\r\n"
    else:
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def api():
    create = {
        "Hostname": "h",
        "User": "1000:1000",
        "Tty": True,
        "OpenStdin": True,
        "Env": ["A=1", "B"],
        "Cmd": ["sh", "-c", "echo hi"],
        "Entrypoint": "/bin/sh",
        "Image": "busybox",
        "Volumes": {"/data": {}},
        "WorkingDir": "/w",
        "Labels": {"a": "b"},
        "StopSignal": "SIGINT",
        "StopTimeout": 3,
        "HostConfig": {
            "Binds": ["/srv/x:/x:ro", "vol:/v"],
            "NetworkMode": "host",
            "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "53/udp": None},
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
            "AutoRemove": True,
            "CapAdd": ["SYS_ADMIN"],
            "CapDrop": ["ALL"],
            "Privileged": True,
            "ReadonlyRootfs": True,
            "SecurityOpt": ["seccomp=unconfined", "no-new-privileges"],
            "Memory": 1 << 30,
            "MemorySwap": -1,
            "NanoCpus": 1500000000,
            "CpuShares": 512,
            "CpusetCpus": "0-1",
            "PidsLimit": 100,
            "PidMode": "host",
            "IpcMode": "private",
            "Tmpfs": {"/tmp": "size=64m"},
            "Mounts": [{"Type": "bind", "Source": "/srv", "Target": "/m", "ReadOnly": True}],
        },
    }
    q = urllib.parse.quote
    filters = q(json.dumps({"status": {"running": True}, "exited": ["0"], "ancestor": ["busybox"]}), safe="")
    event_filters = q(json.dumps({"type": ["container"], "event": ["start", "die"], "container": ["web"]}), safe="")
    reqs = {
        "ping": http("GET", "/_ping"),
        "head-ping": http("HEAD", "/v1.44/_ping"),
        "version": http("GET", "/version"),
        "info": http("GET", "/v1.44/info"),
        "create": http("POST", "/v1.44/containers/create?name=web&platform=linux%2Famd64", json.dumps(create), ["Content-Type: application/json"]),
        "create-min": http("POST", "/v1.44/containers/create", '{"Image":"nosuch"}', ["Content-Type: application/json"]),
        "list": http("GET", f"/v1.44/containers/json?all=1&limit=3&filters={filters}"),
        "inspect": http("GET", "/v1.44/containers/web/json?size=1"),
        "start": http("POST", "/v1.44/containers/web/start"),
        "stop": http("POST", "/v1.44/containers/web/stop?t=5&signal=SIGTERM"),
        "kill": http("POST", "/v1.44/containers/web/kill?signal=HUP"),
        "rename": http("POST", "/v1.44/containers/web/rename?name=other"),
        "remove": http("DELETE", "/v1.44/containers/web?force=1&v=1"),
        "wait": http("POST", "/v1.44/containers/web/wait?condition=next-exit"),
        "logs": http("GET", "/v1.44/containers/web/logs?stdout=1&stderr=1&follow=0&tail=10&since=1700000000.5&timestamps=1"),
        "resize": http("POST", "/v1.44/containers/web/resize?h=40&w=120"),
        "attach": http("POST", "/v1.44/containers/web/attach?stream=1&stdin=1&stdout=1", headers=["Connection: Upgrade", "Upgrade: tcp"]),
        "exec": http("POST", "/v1.44/containers/web/exec", '{"Cmd":["ls"],"AttachStdout":true,"Tty":false,"Env":["X=1"],"User":"0","Privileged":true,"WorkingDir":"/"}'),
        "exec-start": http("POST", "/v1.44/exec/abc/start", '{"Detach":false,"Tty":true,"ConsoleSize":[24,80]}'),
        "exec-inspect": http("GET", "/v1.44/exec/abc/json"),
        "prune": http("POST", "/v1.44/containers/prune"),
        "stats": http("GET", "/v1.44/containers/web/stats?stream=0&one-shot=1"),
        "top": http("GET", "/v1.44/containers/web/top?ps_args=aux"),
        "images": http("GET", "/v1.44/images/json?all=1&filters=%7B%22reference%22%3A%5B%22busybox%22%5D%7D"),
        "pull": http("POST", "/v1.44/images/create?fromImage=a%2Fb&tag=c&platform=linux%2Farm64"),
        "push": http("POST", "/v1.44/images/127.0.0.1:5000%2Fx/push?tag=v1", headers=["X-Registry-Auth: e30="]),
        "tag": http("POST", "/v1.44/images/busybox/tag?repo=me%2Fbox&tag=v2"),
        "rmi": http("DELETE", "/v1.44/images/busybox?force=1&noprune=0"),
        "history": http("GET", "/v1.44/images/busybox/history"),
        "image-inspect": http("GET", "/v1.44/images/" + DIGEST + "/json"),
        "save": http("GET", "/v1.44/images/get?names=busybox&names=alpine"),
        "load": http("POST", "/v1.44/images/load?quiet=1", tar_of([("file", "manifest.json", b"[]")]), ["Content-Type: application/x-tar"]),
        "build": http(
            "POST",
            "/v1.44/build?t=me%2Fapp%3Av1&dockerfile=Dockerfile&buildargs=%7B%22A%22%3A%221%22%7D&nocache=1&target=final",
            tar_of([("file", "Dockerfile", DOCKERFILES[0].encode()), ("file", "a", b"a")]),
            ["Content-Type: application/x-tar"],
            chunked=True,
        ),
        "events": http("GET", f"/v1.44/events?since=0&until=1&filters={event_filters}"),
        "df": http("GET", "/v1.44/system/df"),
        "networks": http("GET", "/v1.44/networks"),
        "volumes": http("GET", "/v1.44/volumes/x"),
        "old-version": http("GET", "/v1.12/containers/json"),
        "berth-command": http("POST", "/berth/v1/command", '{"command":{"command":"image_list"},"confirmed":false}'),
        "berth-create": http("POST", "/berth/v1/command", '{"command":{"command":"container_create","config":{"image":"busybox"},"pull":true},"confirmed":true}'),
        "berth-events": http("GET", "/berth/v1/events"),
        "pipelined": http("GET", "/_ping") + http("GET", "/v1.44/containers/json") + http("POST", "/v1.44/containers/create", "{}"),
    }
    for name, data in reqs.items():
        write("api", name, data)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    references()
    dockerfiles()
    policies()
    layers()
    api()


if __name__ == "__main__":
    main()
