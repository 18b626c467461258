"""The ``netweave`` command (``netweave.cli.main:main``)."""
