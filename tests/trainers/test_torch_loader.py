"""examples/torch_loader.py, the PyTorch DataLoader recipe: needs the ``trainers`` (or ``torch``) extra."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_torch_loader(cube):
    res = subprocess.run([sys.executable, str(EXAMPLES / "torch_loader.py"), str(cube)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 4  # 3 cameras x 5 frames = 15 samples in batches of 4
    assert all(line.startswith("batch (") for line in lines)
    assert "(4, 3, 401, 275) torch.float32" in lines[0] and "max 1.000" in lines[0]
