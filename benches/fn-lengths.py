#!/usr/bin/env python3
"""Functions longer than a limit (issue 16: "no function over ~120 lines in
the encoder's frame path").

Usage: benches/fn-lengths.py [--max N] [--tests] PATH...   (files or directories of .rs)

A function runs from its `fn` line to the line of its closing brace
(braces counted outside strings, chars and comments). Test modules
(`#[cfg(test)]` to the end of the file) are skipped unless --tests. Prints
every function over N lines (default 120), longest first, and exits 1 if
there is one.
"""

import os
import re
import sys

FN = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?"
                r"(?:extern\s+\"C\"\s+)?fn\s+(\w+)")


def strip(line, state):
    """The line without strings, chars and comments; state carries a
    block comment across lines."""
    out, i = [], 0
    while i < len(line):
        if state["block"]:
            j = line.find("*/", i)
            if j < 0:
                return "".join(out)
            state["block"], i = False, j + 2
            continue
        c = line[i]
        if line.startswith("//", i):
            break
        if line.startswith("/*", i):
            state["block"], i = True, i + 2
            continue
        if c == '"':
            j = i + 1
            while j < len(line) and line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            i = j + 1
            continue
        m = re.match(r"'(\\.|[^\\'])'", line[i:])
        if m:
            i += len(m.group(0))
            continue
        out.append(c)
        i += 1
    return "".join(out)


def functions(path, tests):
    lines = open(path, encoding="utf-8").read().split("\n")
    state = {"block": False}
    found, stack, depth = [], [], 0
    for n, raw in enumerate(lines, 1):
        if not tests and raw.strip().startswith("#[cfg(test)]"):
            break
        code = strip(raw, state)
        m = FN.match(code)
        if m and "{" in code[m.end():] or (m and not code.rstrip().endswith(";")):
            stack.append((m.group(1), n, depth))
        for c in code:
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                while stack and stack[-1][2] == depth and stack[-1][1] <= n:
                    name, start, _ = stack.pop()
                    found.append((n - start + 1, name, start))
                    break
    return found


def main(argv):
    limit, tests, paths = 120, False, []
    while argv:
        a = argv.pop(0)
        if a == "--max":
            limit = int(argv.pop(0))
        elif a == "--tests":
            tests = True
        else:
            paths.append(a)
    files = []
    for p in paths:
        if os.path.isdir(p):
            for d, _, fs in os.walk(p):
                files += [os.path.join(d, f) for f in fs if f.endswith(".rs")]
        else:
            files.append(p)
    long = []
    for f in sorted(files):
        long += [(n, name, f, start) for n, name, start in functions(f, tests) if n > limit]
    for n, name, f, start in sorted(long, reverse=True):
        print(f"{n:5} lines  {f}:{start} {name}")
    print(f"{len(long)} functions over {limit} lines in {len(files)} files")
    return 1 if long else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
