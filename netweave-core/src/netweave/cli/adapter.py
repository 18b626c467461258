"""``netweave adapter …``: tools for adapter authors.

Only the group lives here for now; ``adapter new NAME`` (the scaffold for third-party adapter
distributions) is added by the conformance-kit work as a command of this group.
"""

from __future__ import annotations

import click


@click.group(name="adapter")
def adapter_group() -> None:
    """Tools for adapter authors (third-party adapter distributions)."""
