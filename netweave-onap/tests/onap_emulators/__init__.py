"""HTTP emulators of ONAP's SO API handler and MultiCloud k8s plugin, on 127.0.0.1."""
