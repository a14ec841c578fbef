#!/usr/bin/env python3
"""Fails when a crate's top-level modules import each other in a circle.

    python3 scripts/check-module-cycles.py

For every crate of the workspace it reads the production sources (not `tests/`,
`tests.rs` or what follows `#[cfg(test)]`), takes each `crate::<module>` path outside
comments as an edge from the file's top-level module to that module, and reports every
circle it finds. Items of the crate root (`crate::Sink`) are the crate's seams and no
module of their own.
"""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
members = re.search(r"members\s*=\s*\[(.*?)\]", (root / "Cargo.toml").read_text(), re.S)
crates = re.findall(r'"([^"]+)"', members.group(1)) if members else []


def graph(src):
    modules = {p.stem for p in src.glob("*.rs")} | {p.name for p in src.iterdir() if p.is_dir()}
    edges = {}
    for path in src.rglob("*.rs"):
        rel = path.relative_to(src).with_suffix("").parts
        if rel[-1] in ("mod", "lib", "main") or rel[-1] == "tests":
            rel = rel[:-1] if rel[-1] != "tests" else None
        if rel is None or not rel or rel[0] == "tests":
            continue
        text = re.split(r"#\[cfg\(test\)\]", path.read_text(encoding="utf-8"))[0]
        code = "\n".join(line for line in text.splitlines() if not line.strip().startswith("//"))
        for target in re.findall(r"\bcrate::([a-z_][a-z0-9_]*)\b", code):
            if target in modules and target != rel[0]:
                edges.setdefault(rel[0], set()).add(target)
    return edges


def circles(edges):
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


failed = False
for crate in crates:
    src = root / crate / "src"
    if not src.is_dir():
        continue
    for circle in circles(graph(src)):
        failed = True
        print(f"{crate}/src: import circle {' -> '.join(circle)}")
if failed:
    sys.exit(1)
print(f"no import circle between the modules of {len(crates)} crates")
