"""FrameDataset in PyTorch's DataLoader (spawned workers, collated tensors) and examples/torch_loader.py, the
training-loop recipe: need the ``trainers`` (or ``torch``) extra."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

import nersemble_cube

EXAMPLES = Path(__file__).parents[2] / "examples"
NVS = "nvs/388/sequences/GLASSES"


def test_spawned_workers_collate_frame_readers_frames_into_tensors(cube):
    data = nersemble_cube.FrameDataset(cube, [NVS], channels="first")
    loader = DataLoader(data, batch_sampler=nersemble_cube.MultiViewBatches(data, seed=2), num_workers=2,
                        multiprocessing_context="spawn", pin_memory=False)
    images, alphas = nersemble_cube.FrameReader(cube, NVS), nersemble_cube.FrameReader(cube, NVS, "alpha")
    seen = 0
    for batch in loader:
        assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (3, 3, 1604, 1100)
        assert batch["intrinsics"].dtype == torch.float32 and batch["world_2_cam"].shape == (3, 4, 4)
        assert len(set(batch["time"].tolist())) == 1 and batch["serial"] == list(data.sequences[0].serials)
        for i, (serial, t) in enumerate(zip(batch["serial"], batch["time"].tolist())):
            np.testing.assert_array_equal(batch["image"][i].numpy().transpose(1, 2, 0), images.read(serial, t))
            np.testing.assert_array_equal(batch["alpha"][i, 0].numpy(), alphas.read(serial, t))
        seen += len(batch["serial"])
    assert seen == len(data)


def test_the_training_loop_recipe_runs_and_its_loss_falls(cube):
    res = subprocess.run([sys.executable, str(EXAMPLES / "torch_loader.py"), str(cube)], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 2 and all("batch (3, 3, 401, 275) torch.float32" in line for line in lines), lines
    losses = [float(re.search(r"L1 ([\d.]+)", line).group(1)) for line in lines]
    assert losses[1] < losses[0]


def test_threaded_batches_collate_as_pytorchs_default_collate(cube):
    from torch.utils.data import default_collate

    data = nersemble_cube.FrameDataset(cube, ["mono_flame_avatar/393/EXP-1-head"], flame=True, scale=2)
    indices = [0, 2, 1]
    ours, theirs = next(data.batches([indices], threads=2)), default_collate([data[i] for i in indices])
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        if isinstance(value, dict):
            assert ours[key].keys() == value.keys()
            for name, tensor in value.items():
                np.testing.assert_array_equal(ours[key][name], tensor.numpy())
        elif isinstance(value, torch.Tensor):
            assert ours[key].dtype == value.numpy().dtype
            np.testing.assert_array_equal(ours[key], value.numpy())
        else:
            assert ours[key] == value
