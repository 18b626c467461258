"""netweave adapter for ETSI OSM (entry point ``osm`` in ``netweave.adapters``)."""

from netweave_osm.__about__ import __version__
from netweave_osm.adapter import OsmAdapter
from netweave_osm.config import OsmConfig

__all__ = ["OsmAdapter", "OsmConfig", "__version__"]
