#!/usr/bin/env bash
# Regenerates docs/preview.png and docs/rig.png with the README's own commands, on the demo cube
# (tests/test_docs.py checks that the README's commands are these). Usage: bash docs/pictures.sh
set -euo pipefail
docs=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/nersemble-cube-pictures.XXXX)
cd "$work"
nersemble-cube demo > /dev/null 2>&1
cp -r nersemble_cube_demo/cube.zarr cube.zarr
nersemble-cube preview cube.zarr --out preview.png
nersemble-cube preview cube.zarr --rig nvs/388/calibration --out rig.png
cp preview.png rig.png "$docs/"
