"""``netweave adapter new NAME``: write a ready-to-build third-party adapter distribution.

The generated distribution has the entry point, an adapter class whose hooks each raise a
clear ``NotImplementedError`` naming themselves, a test module wired to the conformance kit
(so its first run lists exactly the hooks still to write) and a README.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from netweave.__about__ import CONTRACT_VERSION, __version__

_NAME = re.compile(r"^[a-z][a-z0-9]{1,30}$")


class ScaffoldError(ValueError):
    pass


@dataclass(frozen=True)
class AdapterNames:
    type: str
    distribution: str
    package: str
    class_name: str

    @classmethod
    def from_type(cls, name: str) -> AdapterNames:
        if not _NAME.match(name):
            raise ScaffoldError(
                f"adapter name {name!r} must be 2-31 lowercase letters or digits, starting "
                "with a letter (it becomes the entry-point name and part of the package name)"
            )
        return cls(
            type=name,
            distribution=f"netweave-{name}",
            package=f"netweave_{name}",
            class_name=f"{name.capitalize()}Adapter",
        )


def render_adapter(name: str, destination: Path) -> Path:
    """Write the distribution into ``destination/netweave-<name>``; refuse to overwrite."""
    names = AdapterNames.from_type(name)
    root = destination / names.distribution
    if root.exists():
        raise ScaffoldError(f"{root} already exists; choose another name or directory")
    mapping = {
        "type": names.type,
        "distribution": names.distribution,
        "package": names.package,
        "class_name": names.class_name,
        "core_version": __version__,
        "core_major": __version__.split(".")[0],
        "contract_version": CONTRACT_VERSION,
    }
    template = resources.files(__package__).joinpath("template")
    for source, relative in _walk(template, Path()):
        target = root / Path(string.Template(str(relative)).substitute(mapping))
        target = target.with_name(target.name.removesuffix(".tmpl"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(string.Template(source.read_text()).substitute(mapping))
    return root


def _walk(node: Traversable, relative: Path) -> Iterator[tuple[Traversable, Path]]:
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.is_dir():
            yield from _walk(child, relative / child.name)
        elif child.name.endswith(".tmpl"):
            yield child, relative / child.name


__all__ = ["AdapterNames", "ScaffoldError", "render_adapter"]
