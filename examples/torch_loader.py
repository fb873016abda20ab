"""Recipe: random (camera, time) training batches with a PyTorch DataLoader whose workers read zarr directly.

    python examples/torch_loader.py CUBE

Needs ``pip install "nersemble-cube[torch]"``.

Each worker process opens the cube itself (lazily, on first use, without dask): a ``FrameReader`` per
variable keeps the arrays and the shard indexes it has read, so each frame costs one ranged read and
its decode. It returns float32 tensors: image (3, H/4, W/4) composited on white and
its camera's intrinsics for that resolution. Workers start with "spawn": zarr runs an event-loop
thread that must not be forked.
"""

import sys

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

import nersemble_cube

SEQ = "nvs/388/sequences/GLASSES"


class Frames(Dataset):
    def __init__(self, cube: str, factor: int = 4):
        self.cube, self.factor = cube, factor
        ds = nersemble_cube.open(cube, dask=False)[SEQ].to_dataset()  # metadata only
        self.serials = [str(c) for c in ds.camera.values]
        self.n_frames = ds.sizes["time"]
        self.intrinsics = ds.intrinsics.values.copy()
        self.readers = None  # opened in each worker on first use (they are not sent to the workers)

    def __len__(self) -> int:
        return len(self.serials) * self.n_frames

    def __getitem__(self, i: int):
        if self.readers is None:
            self.readers = {v: nersemble_cube.FrameReader(self.cube, SEQ, v) for v in ("images", "alpha")}
        c, t = divmod(i, self.n_frames)
        rgb = self.readers["images"].read(self.serials[c], t) / np.float32(255)  # frames are read-only: compute anew
        a = self.readers["alpha"].read(self.serials[c], t)[..., None] / np.float32(255)
        image = rgb * a + (1 - a)  # on white
        f = self.factor
        h, w = image.shape[0] // f * f, image.shape[1] // f * f
        small = image[:h, :w].reshape(h // f, f, w // f, f, 3).mean((1, 3))
        k = self.intrinsics[c].copy()
        k[:2] /= f
        return torch.from_numpy(small.transpose(2, 0, 1).copy()), torch.from_numpy(k).float(), t


if __name__ == "__main__":
    loader = DataLoader(Frames(sys.argv[1]), batch_size=4, shuffle=True, num_workers=2,
                        multiprocessing_context="spawn", generator=torch.Generator().manual_seed(0))
    for images, ks, times in loader:
        print(f"batch {tuple(images.shape)} {images.dtype}, min {images.min():.3f}, max {images.max():.3f}, "
              f"fx {ks[0, 0, 0]:.1f}, frames {sorted(times.tolist())}")
