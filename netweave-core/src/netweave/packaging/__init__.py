"""Standard VNF packages: SOL004 CSAR archives and SOL001 VNF descriptors (read from a CSAR or
generated for a bare chart). Used by the ETSI ``vnfpkgm`` face (netweave.api.etsi.vnfpkgm)."""
