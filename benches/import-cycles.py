#!/usr/bin/env python3
"""Import cycles between the source files of a crate (issue 16's "no import
cycles among the encoder's files or between coordinator modules").

Usage: benches/import-cycles.py SRC_DIR [SRC_DIR ...]   (e.g. codec/src coordinator/src)

Each .rs file is a module (`a/b.rs` and `a/b/mod.rs` are `a::b`). A file
depends on another when it names it by a `crate::` or `super::` path, in a
`use` (braces expanded) or inline. A module naming its own submodules
(`mod x;`, `pub use x::Y`) is how Rust builds a tree, not a cycle, so edges
from a module into its own subtree are left out; a submodule naming its
parent counts. Test modules (`#[cfg(test)]` to the end of the file) and
comments are skipped: tests may reach anywhere. Prints each cycle (a
strongly connected component of more than one file, with the edges inside
it and the line that makes each) and exits 1 if there is one.
"""

import os
import re
import sys


def modules(root):
    """Module path (tuple) -> file, for every .rs file under root."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(d, f), root)
            parts = rel[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            if rel in ("main.rs",) or (parts and parts[0] == "bin"):
                continue  # binaries are crates of their own
            out[tuple(parts)] = os.path.join(d, f)
    return out


def code_lines(path):
    """(line number, text) of the non-test, non-comment code."""
    lines = open(path, encoding="utf-8").read().split("\n")
    out = []
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("#[cfg(test)]"):
            break
        if s.startswith("//"):
            continue
        out.append((i + 1, re.sub(r"//.*", "", line)))
    return out


def expand(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]."""
    tree = tree.strip()
    m = re.match(r"^(.*?)\{(.*)\}$", tree, re.S)
    if not m:
        return [re.sub(r"\s+as\s+\w+$", "", tree).strip()]
    head, body = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for part in parts if part.strip() for p in expand(head + part.strip())]


def paths(lines):
    """(line, path) for every crate:: / super:: path named."""
    text = "\n".join(t for _, t in lines)
    starts = {}
    pos = 0
    for n, t in lines:
        starts[pos] = n
        pos += len(t) + 1
    offsets = sorted(starts)

    def line_of(off):
        lo = 0
        for o in offsets:
            if o > off:
                break
            lo = o
        return starts[lo]

    found = []
    for m in re.finditer(r"\buse\s+([^;]*);", text, re.S):
        for p in expand(m.group(1)):
            if p.startswith(("crate::", "super::", "self::")):
                found.append((line_of(m.start()), p))
    for m in re.finditer(r"(?<![\w:])((?:crate|super)(?:::\w+)+)", text):
        found.append((line_of(m.start()), m.group(1)))
    return found


def resolve(cur, path, mods):
    """The module a path from module `cur` names (the longest module prefix)."""
    segs = path.split("::")
    if segs[0] == "crate":
        base, segs = (), segs[1:]
    else:
        base = cur
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                base = base[:-1]
            segs = segs[1:]
    full = base + tuple(segs)
    for k in range(len(full), -1, -1):
        if full[:k] in mods:
            return full[:k]
    return None


def sccs(nodes, edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return out


def main(roots):
    bad = 0
    for root in roots:
        mods = modules(root)
        edges = {}
        for m, f in mods.items():
            for line, p in paths(code_lines(f)):
                t = resolve(m, p, mods)
                if t is None or t == m or t[: len(m)] == m:
                    continue  # itself, or its own subtree
                edges.setdefault(m, {}).setdefault(t, (line, p))
        cycles = [c for c in sccs(list(mods), edges) if len(c) > 1]
        name = lambda m: "::".join(m) or "crate"
        print(f"{root}: {len(mods)} files, {sum(map(len, edges.values()))} edges, "
              f"{len(cycles)} cycles")
        for c in cycles:
            bad += 1
            print("  cycle: " + ", ".join(sorted(map(name, c))))
            for a in c:
                for b, (line, p) in edges.get(a, {}).items():
                    if b in c:
                        print(f"    {os.path.relpath(mods[a])}:{line} {name(a)} -> {name(b)} ({p})")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
