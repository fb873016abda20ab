"""Shared fixtures: one sample benchmark folder and its cube per test session (read-only for tests)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import av
import dask.array as da
import numpy as np
import pytest
import xarray as xr

from nersemble_cube import convert, write_sample
from nersemble_cube.source import layout

CLI = [sys.executable, "-m", "nersemble_cube.cli"]
"""The command line as a user runs it (a fresh process)."""


def run_process(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    """``nersemble-cube ARGS`` in a subprocess: real exit code, stdout and stderr as printed; ``env`` added to
    this process's environment (a value None removes that variable). For the command line's own tests
    (test_cli.py); :func:`run_cli` elsewhere."""
    merged = {k: v for k, v in {**os.environ, **env}.items() if v is not None} if env else None
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, env=merged)


def run_cli(*args) -> subprocess.CompletedProcess:
    """``nersemble-cube ARGS`` through the function the entry point calls (``nersemble_cube.cli.main``), in this
    process: its exit code, and stdout and stderr as a fresh process prints them (the warnings Python's default
    filters show, an exception that escapes printed as Python prints it with exit code 1). A process of its own
    costs ~1.5 s of imports; test_cli.py (the command line as a user runs it) and the tests that interrupt or
    kill a command run one (:func:`run_process`, :data:`CLI`)."""
    from nersemble_cube.cli import main

    argv = [str(a) for a in args]
    stdout, stderr = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as shown, contextlib.redirect_stdout(stdout), \
            contextlib.redirect_stderr(stderr):
        warnings.resetwarnings()
        warnings.simplefilter("default")  # then Python's default ignores, as a fresh interpreter has them
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        try:
            code = main(argv)
        except SystemExit as e:
            if isinstance(e.code, str):
                print(e.code, file=sys.stderr)
            code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        except Exception:  # noqa: BLE001 - printed as the interpreter would, for the tests that look for it
            traceback.print_exc()
            code = 1
    for w in shown:
        stderr.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line))
    return subprocess.CompletedProcess([*CLI, *argv], code, stdout.getvalue(), stderr.getvalue())


N_FRAMES = 5
N_CAMERAS = 3  # nvs train cameras in the shared sample (the full 13-camera layout has its own test)
POINTCLOUD_FRAMES = (0, 3)


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    return write_sample(tmp_path_factory.mktemp("sample") / "benchmark", n_frames=N_FRAMES, n_cameras=N_CAMERAS,
                        pointcloud_frames=POINTCLOUD_FRAMES, pointcloud_points=5000, tracking_v1=True)


@pytest.fixture(scope="session")
def cube(sample_dir, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("cube") / "cube.zarr"
    convert(sample_dir, target)
    return target


@pytest.fixture(scope="session")
def cube_contents(cube) -> dict:
    """:func:`store_contents` of the session's cube, read once (what a repaired or resumed copy must equal)."""
    return store_contents(cube)


@pytest.fixture(scope="session")
def cluster_address() -> str:
    """A running dask.distributed scheduler (2 single-thread workers in this process, over TCP so that CLI
    subprocesses reach it) for --scheduler ADDRESS."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def decode_pyav(path: Path) -> np.ndarray:
    """Independent reference decode (PyAV, not our ffmpeg pipe): (time, y, x, 3) uint8 RGB."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def tree_digest(folder: Path) -> dict[str, str]:
    """Path -> sha256 of every file below ``folder`` (to prove a folder was not modified)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


DATASET_SEQUENCES = ("EXP-1-head", "SEN-07-fond_note_friend")
DATASET_FRAMES = 7


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory) -> Path:
    """A full-dataset folder: participant 18 with two sequences of 3 cameras (the last camera a frame short),
    participant 30 a partial download (its videos missing: calibration and background stills only)."""
    import shutil

    from nersemble_cube.source.dataset_sample import write_dataset_sample

    root = tmp_path_factory.mktemp("dataset") / "nersemble"
    write_dataset_sample(root, (18, 30), DATASET_SEQUENCES, n_frames=DATASET_FRAMES, n_cameras=3, short_camera=True)
    for seq in DATASET_SEQUENCES:
        shutil.rmtree(root / "030" / "sequences" / seq)
    return root


@pytest.fixture(scope="session")
def dataset_conversion(dataset_dir, tmp_path_factory):
    """``(cube path, ConversionReport)`` of :func:`dataset_dir` converted whole."""
    target = tmp_path_factory.mktemp("dataset_cube") / "dataset.zarr"
    return target, convert(dataset_dir, target, workers=2)


FULL_FRAMES = 2  # frames per video in the all-participants sample (mono hold-out sequences: FULL_FRAMES + 3)


@pytest.fixture(scope="session")
def full_cube(tmp_path_factory) -> Path:
    """A cube with every nvs and mono participant (1 camera, 2 frames each): complete submissions fit it."""
    root = tmp_path_factory.mktemp("full")
    source = write_sample(root / "benchmark", benchmarks=("nvs", "mono_flame_avatar"),
                          nvs_participants=tuple(p for p, _ in layout.NVS_IDS_AND_SEQUENCES),
                          mono_participants=layout.MONO_IDS, mono_sequences=("EXP-1-head",),
                          n_frames=FULL_FRAMES, n_cameras=1, pointcloud_frames=())
    convert(source, root / "cube.zarr")
    return root / "cube.zarr"


def filled_frames(node: xr.DataTree) -> np.ndarray:
    """The frames :func:`fill` gives a template node with ``images``: ``(camera, time, y, x, channel)`` uint8."""
    c, t, h, w, _ = node.dataset.images.shape
    seed = node.attrs["participant_id"] % 7
    return np.stack([pattern(t, h, w, seed + i) for i in range(c)])


def fill(template: xr.DataTree, dtype=np.uint8) -> xr.DataTree:
    """Predictions: every image array replaced by the pattern (dask-backed, one chunk per frame)."""
    filled = template.copy()
    for node in template.subtree:
        if "images" not in node.dataset:
            continue
        data = da.from_array(filled_frames(node), chunks=(1, 1, -1, -1, -1))
        if dtype != np.uint8:  # float32 in [0, 1], made chunk by chunk (dask copies an array it is given whole)
            data = data / np.float32(255)
        filled[node.path.lstrip("/")] = node.to_dataset(inherit=False).assign(
            images=(node.dataset.images.dims, data))
    return filled


@pytest.fixture(scope="session")
def nvs_zip(full_cube, tmp_path_factory) -> Path:
    """The filled nvs template of :func:`full_cube` (uint8 predictions) exported once, for the tests that read it
    (test_export and test_validate share one xdist group, so one worker makes it)."""
    from nersemble_cube.submission.export import export_submission
    from nersemble_cube.submission.template import prediction_template

    path = tmp_path_factory.mktemp("nvs_zip") / "nvs.zip"
    export_submission(fill(prediction_template(full_cube, "nvs")), path, "nvs")
    return path


def pattern(n: int, height: int, width: int, seed: int) -> np.ndarray:
    """Moving, textured test frames (n, height, width, 3) uint8, cheap to make at any size. The texture is in
    the luminance, colour varies slowly (like rendered heads: yuv420p halves the chroma resolution). A fresh
    copy each call (the frames are computed once per argument set)."""
    return _pattern(n, height, width, seed).copy()


@functools.lru_cache(maxsize=64)
def _pattern(n: int, height: int, width: int, seed: int) -> np.ndarray:
    t = np.arange(n)[:, None, None, None]
    y = np.arange(height)[None, :, None, None]
    x = np.arange(width)[None, None, :, None]
    c = np.arange(3)[None, None, None, :]
    v = 128 + 60 * np.sin(x / 17 + t / 3 + seed) * np.cos(y / 23 - seed) + 30 * np.sin((x + y) / 5) \
        + 20 * np.cos(x / 200 + y / 300 + 2 * c)
    return np.clip(v, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def realistic_video(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """``(mp4, decoded frames)``: 3 frames of the benchmarks' realistic content (benchmarks/realistic.py:
    scikit-image photos drifting under sensor noise) at 1604x1100, encoded like the real mp4s (CRF 11, ~67 KB
    per frame) and decoded by PyAV: what a converter stores."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import realistic

    mp4 = tmp_path_factory.mktemp("realistic") / "cam.mp4"
    realistic.encode(mp4, realistic.frames(3, seed=100), crf=11)
    return mp4, decode_pyav(mp4)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def store_contents(store) -> dict[str, tuple]:
    """Every node of a zarr v3 store: group path -> attrs; array path -> (metadata, sha256 of the values).
    Independent of file order and of how the consolidated metadata lists nodes: two stores with equal
    contents hold the same data, attrs and encodings."""
    import json

    import zarr

    out = {}

    def visit(group: zarr.Group, path: str) -> None:
        out[path] = json.dumps(group.attrs.asdict(), sort_keys=True)
        for name, member in group.members():
            sub = f"{path}/{name}".lstrip("/")
            if isinstance(member, zarr.Group):
                visit(member, sub)
            else:
                meta = member.metadata.to_dict()
                values = member[...]
                digest = hashlib.sha256(values.tobytes() if values.dtype != object else
                                        "\0".join(map(str, values.ravel())).encode()).hexdigest()
                out[sub] = (json.dumps(meta, sort_keys=True, default=str), digest)

    import warnings

    with warnings.catch_warnings():  # a killed conversion leaves objects zarr does not recognise; fine here
        warnings.simplefilter("ignore", zarr.errors.ZarrUserWarning)
        visit(zarr.open_group(store, mode="r", use_consolidated=False), "")
    return out


@pytest.fixture(scope="session")
def nerfstudio_export(cube, tmp_path_factory):
    """``(folder, report, transforms.json)`` of nvs/388/GLASSES exported for nerfstudio (downscale 2, every 4th frame)."""
    import json

    from nersemble_cube.training.nerf import export_nerf

    out = tmp_path_factory.mktemp("ns") / "388"
    report = export_nerf(cube, out, "nvs/388/GLASSES", reader="nerfstudio", downscale=2, every_nth=4)
    return out, report, json.loads((out / "transforms.json").read_text())


TRAINERS = Path(__file__).parent / "trainers"
"""The trainer oracles (PyTorch, nerfstudio's dataparser): the ``trainers`` extra and a command of their own,
``pytest tests/trainers``; the README's test command does not collect them."""


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    asked = any(TRAINERS in Path(arg.split("::")[0]).resolve().parents or Path(arg.split("::")[0]).resolve() == TRAINERS
                for arg in config.args)
    return True if collection_path == TRAINERS and not asked else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A skipped test is a failed one here: whoever follows the README runs every test it collects."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, which this suite does not allow (install the test extra): {report.longrepr}"
