"""Quickstart: write the sample benchmark folder, convert it, read frames and cameras lazily.

    python examples/quickstart.py [WORKDIR]

On real data, skip write_sample and point convert() at your nersemble-benchmark-download folder.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

import nersemble_cube

work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
benchmark = nersemble_cube.write_sample(work / "benchmark", n_frames=4, n_cameras=3)  # ~ a real download
nersemble_cube.convert(benchmark, work / "cube.zarr")

tree = nersemble_cube.open(work / "cube.zarr")  # lazy: nothing but metadata is read yet
ds = tree["nvs/388/sequences/GLASSES"].to_dataset()
frame = ds.images.sel(camera="222200042", time=2).values  # (y, x, channel) uint8, reads one chunk
alpha = ds.alpha.sel(camera="222200042", time=2).values  # (y, x) uint8
K = ds.intrinsics.sel(camera="222200042").values  # (3, 3) pixels
E = ds.world_2_cam.sel(camera="222200042").values  # (4, 4) OpenCV world -> camera

# hold-out cameras (what a submission renders) live in the participant's calibration node
calib = tree["nvs/388/calibration"].to_dataset()
hold_out = calib.camera.values[calib.role.values == "hold_out"].tolist()

# project the world origin (the sample head's centre) into the image
x_cam = E @ np.array([0.0, 0.0, 0.0, 1.0])
u, v = (K @ x_cam[:3])[:2] / x_cam[2]
print(f"frame {frame.shape} {frame.dtype}, alpha at the projected head centre ({u:.0f}, {v:.0f}): "
      f"{alpha[int(v), int(u)]}; hold-out cameras to render: {hold_out}")
