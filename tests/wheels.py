"""Pure-Python packages the tests run but do not install with their dependencies.

The official toolkits (``nersemble_benchmark``, ``nersemble_data``) and nerfstudio pull in open3d, CUDA extensions, a web
viewer and more; the tests use a few of their modules, whose imports the test extra installs. Each is
taken from an installed copy if there is one, else its wheel is downloaded once with
``pip download --no-deps`` (from the package index the README's install uses) and imported from the
wheel file itself, so nobody following the README skips these tests.
"""

from __future__ import annotations

import fcntl
import importlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

CACHE = Path(tempfile.gettempdir()) / "nersemble-cube-test-wheels"
TOOLKIT = "nersemble_benchmark==0.2.0"
DATASET_TOOLKIT = "nersemble_data==0.0.6"
NERFSTUDIO = "nerfstudio==1.1.5"
ELIAS = "elias==0.4.19"  # what both toolkits resize images with


def no_deps(requirement: str, module: str) -> ModuleType:
    """``module`` of the distribution ``requirement`` (``name==version``), installed or from its wheel."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module.split(".")[0]:
            raise
    name, version = requirement.split("==")
    folder = CACHE / f"{name}-{version}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}-{version}.lock", "w") as lock:  # test workers (pytest -n) download it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not sorted(folder.glob("*.whl")):
            fresh = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=CACHE))  # complete before it is visible
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                            "--dest", str(fresh), requirement], check=True)
            shutil.rmtree(folder, ignore_errors=True)
            fresh.rename(folder)
    wheels = sorted(folder.glob("*.whl"))
    sys.path.insert(0, str(wheels[0]))
    return importlib.import_module(module)
