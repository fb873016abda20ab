"""Recipe: a training loop in the style of GaussianAvatars / VHAP on the cube, through a PyTorch DataLoader.

    python examples/torch_loader.py CUBE

Needs ``pip install "nersemble-cube[torch]"``.

Each batch is every camera of one time (``MultiViewBatches``), a quarter of the resolution, frames as float32
channels first with their mattes, intrinsics for that resolution and the world-to-camera poses. Worker
processes open the cube themselves (a FrameReader per sequence, no dask); they start with "spawn", as zarr's
event-loop thread must not be forked. The "model" is a stand-in (one learnable colour per camera) so the loop
runs anywhere; a real one renders ``batch["world_2_cam"]``, ``batch["intrinsics"]`` into an image.
"""

import sys

import torch
from torch.utils.data import DataLoader

import nersemble_cube

if __name__ == "__main__":
    data = nersemble_cube.FrameDataset(sys.argv[1], ["nvs/388/GLASSES"], scale=4, dtype="float32", channels="first")
    batches = nersemble_cube.MultiViewBatches(data, seed=0)
    loader = DataLoader(data, batch_sampler=batches, num_workers=2, multiprocessing_context="spawn",
                        pin_memory=torch.cuda.is_available())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    colour = torch.zeros(len(data.sequences[0].serials), 3, 1, 1, device=device, requires_grad=True)
    optimizer = torch.optim.Adam([colour], lr=0.1)
    for epoch in range(2):
        batches.set_epoch(epoch)
        for batch in loader:
            image, alpha = batch["image"].to(device), batch["alpha"].to(device)
            target = image * alpha + (1 - alpha)  # composited on white, as GaussianAvatars trains
            rendered = colour[batch["camera"]].expand_as(target)  # a renderer would go here
            loss = (rendered - target).abs().mean()  # the L1 term of the photometric loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: batch {tuple(target.shape)} {target.dtype}, fx {batch['intrinsics'][0, 0, 0]:.1f}, "
              f"frames {batch['time'].tolist()}, L1 {loss.item():.3f}")
