#!/bin/sh
# Installs netweave into a new virtual environment from a checkout: netweave-core plus the
# adapter distributions named in ADAPTERS (space or comma separated: helm argocd flux onap osm).
# The Containerfile runs it; run by hand it builds the same environment outside an image.
#
#   install.sh VENV SOURCE_DIR "helm argocd"
set -eu

if [ "$#" -ne 3 ]; then
    echo "usage: install.sh VENV SOURCE_DIR ADAPTERS" >&2
    exit 64
fi
venv=$1
src=$2
adapters=$(printf '%s' "$3" | tr ',' ' ')

set -- "$src/netweave-core"
for adapter in $adapters; do
    case $adapter in
        helm | argocd | flux | onap | osm) ;;
        *)
            echo "install.sh: unknown adapter '$adapter' (one of: helm argocd flux onap osm)" >&2
            exit 2
            ;;
    esac
    if [ ! -f "$src/netweave-$adapter/pyproject.toml" ]; then
        echo "install.sh: $src/netweave-$adapter is not in the build context" >&2
        exit 2
    fi
    set -- "$@" "$src/netweave-$adapter"
done

# The environment gets no pip of its own: the interpreter's pip (22.3 or later) installs into
# it, so the image carries only netweave and what it needs at run time.
python3 -m venv --without-pip "$venv"
python3 -m pip --python "$venv/bin/python" install --no-cache-dir --no-compile "$@"
