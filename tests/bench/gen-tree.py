#!/usr/bin/env python3
"""Writes a deterministic file tree that stands in for a distribution's files, offline.

    gen-tree.py DIR [FILES] [SEED]

FILES files (default 6400) in 64 directories of usr/lib/bench-*/ and usr/share/bench-*/, sizes
spread log-uniformly from 200 B to 120 KiB (about 110 MB in all), one in six
incompressible (like compressed data and stripped binaries), the rest text made of a small
vocabulary (gzip packs it about 3:1), plus a symlink every 16 files. Same arguments, same bytes.
"""
import math
import os
import random
import sys


def main() -> None:
    root = sys.argv[1]
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 6400
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 20261128)
    alphabet = "abcdefghijklmnopqrstuvwxyz_0123456789"
    words = ["".join(rng.choices(alphabet, k=rng.randint(2, 12))) for _ in range(600)]
    lo, hi = math.log(200), math.log(120 * 1024)
    dirs = []
    for d in range(64):
        top = "usr/lib" if d % 2 == 0 else "usr/share"
        path = os.path.join(root, top, f"bench-{d:02d}")
        os.makedirs(path, exist_ok=True)
        dirs.append(path)
    for i in range(files):
        size = int(math.exp(rng.uniform(lo, hi)))
        d = dirs[i % len(dirs)]
        name = os.path.join(d, f"f{i:05d}" + (".bin" if i % 6 == 0 else ".txt"))
        if i % 6 == 0:
            data = rng.randbytes(size)
        else:
            parts, n = [], 0
            while n < size:
                line = " ".join(rng.choices(words, k=rng.randint(4, 14))) + "\n"
                parts.append(line)
                n += len(line)
            data = "".join(parts).encode()[:size]
        with open(name, "wb") as f:
            f.write(data)
        os.chmod(name, 0o755 if i % 9 == 0 else 0o644)
        if i % 16 == 0:
            os.symlink(os.path.basename(name), name + ".link")


if __name__ == "__main__":
    main()
