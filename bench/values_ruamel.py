#!/usr/bin/env python3
"""Time ruamel.yaml (round-trip mode) doing the same edits as `benches/values.rs`.

Usage: values_ruamel.py DIR   (DIR holds values.yaml and sets.txt, written by the Rust bench)
Writes DIR/ruamel-out.yaml and prints the best wall time of a few runs, in seconds.
Each run loads the file, applies every set (keeping a quoted scalar's quote style, as our edit
does) and dumps it: the whole round trip a promotion needs.
"""
import io
import re
import sys
import time

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import ScalarString


def parse_path(text):
    """Same syntax as the product: a.b, list[0], list[name=web], quoted "a.b/c" keys."""
    steps, i = [], 0
    while i < len(text):
        c = text[i]
        if c == ".":
            i += 1
        elif c == "[":
            j = text.index("]", i)
            inner = text[i + 1 : j]
            steps.append(tuple(inner.split("=", 1)) if "=" in inner else int(inner))
            i = j + 1
        elif c == '"':
            j = text.index('"', i + 1)
            steps.append(text[i + 1 : j])
            i = j + 1
        else:
            m = re.match(r"[^.\[]+", text[i:])
            steps.append(m.group(0))
            i += len(m.group(0))
    return steps


def split_set(line):
    # The path ends at the first '=' outside quotes and brackets.
    depth, quoted = 0, False
    for i, c in enumerate(line):
        if c == '"':
            quoted = not quoted
        elif not quoted and c == "[":
            depth += 1
        elif not quoted and c == "]":
            depth -= 1
        elif not quoted and depth == 0 and c == "=":
            return parse_path(line[:i]), line[i + 1 :]
    raise ValueError(line)


def apply(doc, steps, value):
    node = doc
    for s in steps[:-1]:
        if isinstance(s, tuple):
            node = next(item for item in node if str(item.get(s[0])) == s[1])
        else:
            node = node[s]
    last = steps[-1]
    old = node[last]
    # Keep the old quote style, as our edit does; plain strings stay plain.
    node[last] = type(old)(value) if isinstance(old, ScalarString) else value


def run(text, sets):
    yaml = YAML()  # round-trip mode: comments, order and anchors are kept
    yaml.preserve_quotes = True
    yaml.width = 4096
    doc = yaml.load(text)
    for steps, value in sets:
        apply(doc, steps, value)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def main():
    d = sys.argv[1]
    text = open(f"{d}/values.yaml", encoding="utf-8").read()
    sets = [split_set(l) for l in open(f"{d}/sets.txt", encoding="utf-8").read().splitlines() if l]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    best, out = None, None
    for _ in range(runs):
        t = time.perf_counter()
        out = run(text, sets)
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    open(f"{d}/ruamel-out.yaml", "w", encoding="utf-8").write(out)
    print(f"{best:.3f}")


if __name__ == "__main__":
    main()
