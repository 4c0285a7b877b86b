#!/usr/bin/env python3
"""Time ruamel.yaml (round-trip mode) doing the same edits as `benches/values.rs`.

Usage: values_ruamel.py DIR [RUNS]   (DIR holds values.yaml and sets.txt from the Rust bench)
       values_ruamel.py --fixtures tests/fixtures/values
The first writes DIR/ruamel-out.yaml and prints the best wall time of RUNS runs, in seconds; the
second prints, per fixture, the lines our edit changed and the lines ruamel.yaml changed.
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


def changed_lines(a, b):
    import difflib

    return sum(1 for l in difflib.ndiff(a.splitlines(), b.splitlines()) if l.startswith("- "))


def fixtures(d):
    """Same sets on each fixture: lines ruamel.yaml changes vs the lines our edit changes."""
    import glob
    import os

    print("| fixture | ours | ruamel.yaml |")
    print("|---|---|---|")
    for sets_file in sorted(glob.glob(f"{d}/*.sets")):
        name = os.path.basename(sets_file)[: -len(".sets")]
        raw = open(f"{d}/{name}.yaml", "rb").read()
        text = raw.decode("utf-8-sig")
        lines = open(sets_file, encoding="utf-8").read().splitlines()
        doc_index = 0
        for l in lines:
            if l.startswith("# flags: --document"):
                doc_index = int(l.split()[-1])
        sets = [split_set(l) for l in lines if l and not l.startswith("#")]
        ours = open(f"{d}/{name}.expected.yaml", "rb").read().decode("utf-8-sig")
        yaml = YAML()
        yaml.preserve_quotes = True
        yaml.width = 4096
        try:
            docs = list(yaml.load_all(text))
            for steps, value in sets:
                apply(docs[doc_index], steps, value)
            out = io.StringIO()
            yaml.dump_all(docs, out) if len(docs) > 1 else yaml.dump(docs[0], out)
            theirs = out.getvalue()
            if raw.startswith(b"\xef\xbb\xbf") or b"\r\n" in raw:
                # ruamel drops the BOM and writes \n: every line differs in bytes.
                theirs_n = changed_lines(text.replace("\r\n", "\n"), theirs)
                result = f"{theirs_n} (+ BOM dropped, CRLF to LF on all {len(text.splitlines())} lines)"
            else:
                result = str(changed_lines(text, theirs))
        except Exception as e:  # noqa: BLE001 - report, do not stop the table
            result = f"error: {type(e).__name__}"
        print(f"| {name} | {changed_lines(text, ours)} | {result} |")


def main():
    if sys.argv[1] == "--fixtures":
        fixtures(sys.argv[2])
        return
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
