"""``resources_of``: the resources of a rendered manifest, read from each document's headline
(``apiVersion``, ``kind``, ``metadata``) and only read whole where that is not enough. The
answer must always equal reading every document whole."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from netweave_helm.adapter import resources_of


def read_whole(manifest: str, namespace: str) -> list[tuple[str, str, str]]:
    """The reference: every document parsed whole."""
    found = []
    for doc in yaml.load_all(manifest, Loader=yaml.CSafeLoader):
        if isinstance(doc, dict) and "kind" in doc:
            meta: Any = doc.get("metadata") or {}
            meta = meta if isinstance(meta, dict) else {}
            found.append(
                (
                    str(doc["kind"]),
                    str(meta.get("name", "")),
                    str(meta.get("namespace", namespace)),
                )
            )
    return found


def names(manifest: str, namespace: str = "ns") -> list[tuple[str, str, str]]:
    return [(r.kind, r.name, r.namespace) for r in resources_of(manifest, namespace)]


DEPLOYMENT = """# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
  annotations:
    note: |
      a block scalar
      kind: NotTheKind
spec:
  replicas: 2
  template:
    metadata:
      name: not-this-one
    spec:
      containers:
        - name: c
          image: nginx
"""

CASES = {
    "helm style": "---\n" + DEPLOYMENT + "---\n# Source: web/templates/svc.yaml\n"
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: other\n",
    "flow style": '---\n{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}\n',
    "quoted keys": '---\n"kind": Secret\n"metadata":\n  "name": s\n',
    "kind after spec": "---\nspec:\n  a: 1\nmetadata:\n  name: late\nkind: ServiceAccount\n",
    "separator with a comment": "---\napiVersion: v1\nkind: A\nmetadata: {name: a}\n"
    "--- # next\napiVersion: v1\nkind: B\nmetadata: {name: b}\n",
    "list document and empty ones": "---\n---\n- a\n- b\n---\n# only a comment\n",
    "anchor used from the spec": "---\nkind: ConfigMap\nmetadata: &m\n  name: anchored\n"
    "data:\n  copy: *m\n",
    "alias in the headline": "---\ndata: &n x\nkind: ConfigMap\nmetadata:\n  name: *n\n",
    "no metadata": "---\napiVersion: v1\nkind: Namespace\n",
    "metadata not a mapping": "---\nkind: Odd\nmetadata: just-a-string\n",
    "numbers as names": "---\nkind: ConfigMap\nmetadata:\n  name: 0123\n  namespace: 42\n",
    "yaml words as values": "---\nkind: ConfigMap\nmetadata:\n  name: true\n  namespace: off\n"
    "---\nkind: On\nmetadata:\n  name: null\n---\nkind: Secret\nmetadata:\n  name: No\n",
    "quoted and commented values": '---\nkind: ConfigMap\nmetadata:\n  name: "q"\n'
    "---\nkind: Secret # why\nmetadata:\n  name: s # why\n---\nkind: A\nmetadata:\n  name: 'x'\n",
    "four-space indent and deeper names": "---\nkind: Pod\nmetadata:\n    labels:\n"
    "        name: label\n    name: pod-1\n    namespace: team.a\nspec:\n  name: spec\n",
    "duplicate keys": "---\nkind: A\nkind: B\nmetadata:\n  name: a\n  name: b\n",
    "metadata repeated": "---\nkind: A\nmetadata:\n  name: a\nmetadata:\n  name: b\n",
    "crlf line ends": "---\r\nkind: Service\r\nmetadata:\r\n  name: crlf\r\n",
    "uppercase and digit-led names": "---\nkind: ConfigMap\nmetadata:\n  name: Web\n"
    "---\nkind: ConfigMap\nmetadata:\n  name: 5g-core\n",
    "empty name and namespace": "---\nkind: ConfigMap\nmetadata:\n  name:\n  namespace:\n",
    "block scalar under metadata": "---\nkind: ConfigMap\nmetadata:\n  description: |\n"
    "    name: inside\n  name: outside\n",
    "name only in a nested mapping": "---\nkind: ConfigMap\nmetadata:\n  labels:\n"
    "    name: nested\n",
    "spaces-only lines": "---\nkind: ConfigMap\n   \nmetadata:\n\n  name: gap\n",
}


@pytest.mark.parametrize("manifest", CASES.values(), ids=CASES.keys())
def test_same_answer_as_reading_every_document_whole(manifest: str) -> None:
    assert names(manifest) == read_whole(manifest, "ns")


def test_headline_keys_inside_the_spec_are_not_taken() -> None:
    assert names("---\n" + DEPLOYMENT) == [("Deployment", "web", "ns")]


def test_invalid_yaml_gives_no_resources() -> None:
    assert names("---\nkind: A\nmetadata:\n  name: [unclosed\n") == []
    assert names("---\nkind: A\nmetadata: {name: a}\n---\nspec: [unclosed\n") == []


def test_a_broken_spec_under_a_readable_headline_still_names_its_resource() -> None:
    """The one difference from reading whole (which gives nothing): Helm's manifests are
    valid YAML, so this cannot come from Helm; naming the resource is the more useful answer."""
    assert names("---\nkind: A\nmetadata: {name: a}\nspec: [unclosed\n") == [("A", "a", "ns")]


def test_helm_style_documents_are_read_without_the_yaml_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Helm's own style (block mappings, plain names) takes the line-by-line path; the cases
    above check it answers as the parser would, this one that it is taken."""
    import netweave_helm.adapter as adapter_module

    def no_parser(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the YAML parser was used")

    monkeypatch.setattr(adapter_module.yaml, "load", no_parser)
    monkeypatch.setattr(adapter_module.yaml, "load_all", no_parser)
    assert names(CASES["helm style"]) == [("Deployment", "web", "ns"), ("Service", "web", "other")]
