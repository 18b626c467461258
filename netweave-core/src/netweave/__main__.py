"""``python -m netweave`` is the ``netweave`` command."""

from netweave.cli.main import main

main()
