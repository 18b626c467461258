"""``live.load_documents``: the documents of a manifest's chunk, exactly as
``yaml.load_all(..., Loader=yaml.CSafeLoader)`` builds them (values, types, key order, shared
objects), or the same YAML error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REAL_CHARTS, shared_dir
from netweave_helm.live import _DOCUMENT, load_documents
from test_manifest_resources import CASES


def _reference(text: str) -> list[Any] | type[Exception]:
    try:
        return list(yaml.load_all(text, Loader=yaml.CSafeLoader))
    except yaml.YAMLError as exc:
        return type(exc)


def _loaded(text: str) -> list[Any] | type[Exception]:
    try:
        return load_documents(text)
    except yaml.YAMLError as exc:
        return type(exc)


def _same(text: str) -> None:
    # repr: types (1, 1.0, True, "1"), key order and NaN compare too.
    assert repr(_loaded(text)) == repr(_reference(text)), text


SCALARS = """
plain: text
quoted: "1"
single: 'yes'
ints: [1, -2, 0x1F, 0o17, 010, 1_000, +3]
floats: [1.5, -2e3, .inf, -.Inf, .nan, 1.0e+3, 6.8523015e+5]
bools: [true, True, on, off, yes, no, y, n, false]
nulls: [null, ~, Null, ]
empty:
times: [2001-12-14t21:59:43.10-05:00, 2002-12-14, "2002-12-14"]
binary: !!binary aGVsbG8=
explicit: [!!str 1, !!int "2", !!float "3", !!bool "true", !!null ""]
block: |
  kind: NotAKind
  line two
folded: >
  a
  b
version: 1.16.0
image: "nginx:1.16.0"
port: 80
"""

SPECIAL = {
    "scalars": SCALARS,
    "scalars again (resolved from the memo)": SCALARS + SCALARS.replace("plain:", "plain2:"),
    "merge key": "base: &b {a: 1, b: 2}\nderived:\n  <<: *b\n  b: 3\n",
    "merge key list": "x: &x {a: 1}\ny: &y {b: 2}\nz:\n  <<: [*x, *y]\n",
    "set": "s: !!set {a, b}\n",
    "omap": "o: !!omap [a: 1, b: 2]\n",
    "pairs": "p: !!pairs [a: 1, a: 2]\n",
    "custom tag": "x: !custom 1\n",
    "custom mapping tag": "x: !thing {a: 1}\n",
    "unhashable key": "? [a, b]\n: 1\n",
    "mapping key": "? {a: 1}\n: 1\n",
    "non-string keys": "1: a\ntrue: b\nnull: c\n1.5: d\n",
    "duplicate keys": "a: 1\na: 2\n",
    "syntax error": "a: [unclosed\n",
    "bad indentation": "a:\n  b: 1\n c: 2\n",
    "undefined alias": "a: *nope\n",
    "several documents": "a: 1\n---\n- b\n--- c\n...\n---\n",
    "empty": "",
    "comment only": "# nothing\n",
    "scalar document": "just text\n",
    "explicit map and seq tags": "!!map {a: !!seq [1]}\n",
    "tab in a value": "a: \tb\n",
}


@pytest.mark.parametrize("text", SPECIAL.values(), ids=SPECIAL.keys())
def test_special_documents(text: str) -> None:
    _same(text)


@pytest.mark.parametrize("manifest", CASES.values(), ids=CASES.keys())
def test_manifest_cases(manifest: str) -> None:
    _same(manifest)
    for chunk in _DOCUMENT.split(manifest):
        _same(chunk)


def test_aliases_are_the_same_object_and_recursion_is_kept() -> None:
    (doc,) = load_documents("a: &x {k: [1]}\nb: *x\nr: &r [*r]\n")
    assert doc["a"] is doc["b"]
    assert doc["r"][0] is doc["r"]


@pytest.mark.parametrize("filename", sorted(REAL_CHARTS))
def test_real_charts_rendered(filename: str) -> None:
    import helm_python

    path: Path = shared_dir() / "charts" / filename
    if not path.is_file():
        pytest.skip(f"{path} is not there (NETWEAVE_SHARED_DIR)")
    chart = helm_python.Chart.load(str(path))
    try:
        rendered = chart.render({}, name="rel", namespace="ns")
    finally:
        chart.close()
    manifest = "\n---\n".join(rendered.values())
    chunks = [c for c in _DOCUMENT.split(manifest) if c.strip()]
    assert len(chunks) > 1
    for chunk in chunks:
        _same(chunk)
