"""Import the official toolkits' submission writers, readers and data managers without their heavy dependencies.

``nersemble_benchmark.data.submission_data`` needs mediapy, imageio, trimesh and environs (installed
by the test extra) and, through ``benchmark_data``, ``util.video`` and ``util.metadata``, open3d,
dreifus and elias. open3d and dreifus, which it does not use for submissions, are replaced by empty stand-ins
here (cv2 too, only when OpenCV is not installed). elias is the real one (0.4.19, a wheel like the toolkits':
its ``resize_img``, ``load_json``, ...), less two imports its ``util.io`` and ``config`` make at the top that
nothing here uses: ``pillow_avif`` (an AVIF plugin) and ``elias.config`` (dataclass configs on dacite, which
the toolkits only subclass). mediapy is pointed at imageio-ffmpeg's ffmpeg binary (the same one nersemble-cube
uses).

The full dataset's toolkit (``nersemble_data``) is imported the same way: its colour correction runs on
colour-science (installed by the test extra), its ``VideoFrameLoader`` on OpenCV.
"""

from __future__ import annotations

import sys
import types

import numpy as np

from wheels import DATASET_TOOLKIT, ELIAS, TOOLKIT, no_deps


def _stub(name: str, **attrs) -> types.ModuleType:
    module = sys.modules.get(name) or types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    sys.modules[name] = module
    return module


def _stub_dependencies() -> None:
    """Stand-ins for open3d and dreifus (and cv2 when OpenCV is not installed); the real elias."""
    def matrix(m, **kwargs):  # dreifus Pose / Intrinsics: ndarray subclasses; plain arrays do here
        return np.asarray(m, dtype=np.float64)
    _stub("open3d")
    try:
        import cv2  # noqa: F401
    except ImportError:
        _stub("cv2")
    _stub("dreifus")
    _stub("dreifus.camera", CameraCoordinateConvention=types.SimpleNamespace(OPEN_CV="OPEN_CV"),
          PoseType=types.SimpleNamespace(WORLD_2_CAM="WORLD_2_CAM"))
    _stub("dreifus.matrix", Pose=matrix, Intrinsics=matrix)
    _stub("pillow_avif")
    _stub("elias.config", Config=object)
    no_deps(ELIAS, "elias.util.io")


def submission_data():
    """The toolkit's ``nersemble_benchmark.data.submission_data`` module (tests/wheels.py finds the toolkit)."""
    no_deps(TOOLKIT, "nersemble_benchmark.constants")
    import mediapy
    if "nersemble_benchmark.data.submission_data" not in sys.modules:
        import imageio_ffmpeg

        mediapy.set_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe())
        _stub_dependencies()
    import nersemble_benchmark.data.submission_data as sd

    return sd


def benchmark_data():
    """The toolkit's ``nersemble_benchmark.data.benchmark_data`` (data managers), imported as above."""
    submission_data()
    import nersemble_benchmark.data.benchmark_data as bd

    return bd


def dataset_data():
    """The full dataset toolkit's ``nersemble_data.data.nersemble_data`` (``NeRSembleParticipantDataManager``)."""
    no_deps(DATASET_TOOLKIT, "nersemble_data.constants")
    _stub_dependencies()
    import nersemble_data.data.nersemble_data as nd

    return nd


def dataset_color_correction():
    """The full dataset toolkit's ``nersemble_data.util.color_correction`` (colour-science underneath)."""
    no_deps(DATASET_TOOLKIT, "nersemble_data.constants")
    import nersemble_data.util.color_correction as cc

    return cc
