__version__ = "0.1.0"

#: Version of the adapter contract (``DMSAdapter``). Adapters declare the contract version they
#: were written against; the loader refuses a different major version.
CONTRACT_VERSION = "1.0"
