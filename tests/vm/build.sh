#!/bin/sh
# Fetch the Debian kernel and build the VM initramfs into tests/vm/.cache (cached:
# a second run is instant).  All the logic is in harness.py; see README.md.
set -e
exec python3 "$(dirname "$0")/harness.py" build "$@"
