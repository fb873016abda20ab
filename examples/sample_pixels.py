"""Recipe: sample random foreground pixels and their camera rays from random (camera, time) frames.

    python examples/sample_pixels.py CUBE

Reads frames with read_frame (no dask), picks pixels where alpha > 0, and turns them into world-space
rays with the frame's calibration (OpenCV convention, pixel centres at u + 0.5).
"""

import sys

import numpy as np

import nersemble_cube

cube = sys.argv[1]
seq = "nvs/388/sequences/GLASSES"
ds = nersemble_cube.open(cube, dask=False)[seq].to_dataset()
rng = np.random.default_rng(0)
for _ in range(3):
    serial = str(rng.choice(ds.camera.values))
    t = int(rng.integers(ds.sizes["time"]))
    rgb = nersemble_cube.read_frame(cube, seq, serial, t)
    alpha = nersemble_cube.read_frame(cube, seq, serial, t, variable="alpha")
    v, u = np.nonzero(alpha > 0)
    pick = rng.choice(len(u), size=1024)
    u, v = u[pick], v[pick]
    K = ds.intrinsics.sel(camera=serial).values
    E = ds.world_2_cam.sel(camera=serial).values
    d_cam = np.linalg.inv(K) @ np.stack([u + 0.5, v + 0.5, np.ones(len(u))])
    c2w = np.linalg.inv(E)
    origins = np.broadcast_to(c2w[:3, 3], (len(u), 3))
    directions = (c2w[:3, :3] @ d_cam).T
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    colors = rgb[v, u] / 255.0
    # every sampled ray passes the sample head (a sphere of radius 0.11 m near the origin)
    miss = np.linalg.norm(np.cross(directions, -origins), axis=1)
    print(f"camera {serial} t={t}: {len(u)} rays, colour mean {colors.mean():.3f}, "
          f"closest approach to the head centre <= {miss.max():.3f} m")
