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
