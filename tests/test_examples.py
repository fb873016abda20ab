import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_quickstart(tmp_path):
    res = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py"), str(tmp_path)], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    assert "frame (1604, 1100, 3) uint8" in res.stdout
    assert ": 255; hold-out cameras to render: ['222200037', '222200039', '222200046']" in res.stdout


def test_render_and_submit(tmp_path):
    res = subprocess.run([sys.executable, str(EXAMPLES / "render_and_submit.py"), str(tmp_path)], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    # 1 participant x 4 hold-out sequences x 4 cameras; the other 4 participants are missing, nothing else wrong
    assert "16 videos exported; missing files: 64; other issues: []" in res.stdout


def test_sample_pixels(cube):
    res = subprocess.run([sys.executable, str(EXAMPLES / "sample_pixels.py"), str(cube)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 3
    for line in lines:
        assert ": 1024 rays" in line
        assert float(line.rsplit("<= ", 1)[1].split()[0]) <= 0.125  # within the head (+ its small motion)


def test_remote_cube(cube):
    res = subprocess.run([sys.executable, str(EXAMPLES / "remote_cube.py"), str(cube)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[1] == "frame (1604, 1100, 3) uint8 with 2 requests"  # the shard index, then the frame's bytes
    assert lines[2] == "read_frame equals the local cube: True"
