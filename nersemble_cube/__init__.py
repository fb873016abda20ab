"""nersemble-cube: NeRSemble benchmark downloads as chunked, labeled, lazily readable zarr cubes.

The package's folders are its layers (docs/architecture.md): :mod:`.source` (download folders) ->
:mod:`.cube` (schema, store, codecs, reading) -> :mod:`.conversion` -> the access layer
(:mod:`.accessor`, :mod:`.preprocessing`, :mod:`.compat`, :mod:`.preview`) -> :mod:`.submission` ->
:mod:`.training`; :mod:`.cli` is a thin shell over them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys

from ._version import __version__
from .errors import NersembleCubeError, PredictionError, SourceError, StoreError


class _RegisterAccessor(importlib.abc.MetaPathFinder):
    """Registers ``ds.nersemble`` (:mod:`.accessor`) right after xarray is first imported, so
    ``import nersemble_cube`` does not load xarray and pandas (~0.7 s) for a process that reads frames only."""

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, ANN201 - the finder protocol
        if name != "xarray":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module) -> None:  # noqa: ANN001
            run(module)
            sys.modules[name] = module
            importlib.import_module(".accessor", __name__)

        spec.loader.exec_module = exec_module
        return spec


if "xarray" in sys.modules:
    from . import accessor  # noqa: F401 - registers ds.nersemble
else:
    sys.meta_path.insert(0, _RegisterAccessor())

# The rest of the public API is imported on first use (PEP 562), so `import nersemble_cube` and the
# command line start without loading zarr, dask and the converters until a command needs them.
# The JPEG-XL codec reaches zarr through the "zarr.codecs" entry point (pyproject.toml), not an import.
_LAZY = {
    "ConversionReport": "conversion", "convert": "conversion",
    "flame_tracking": "cube.access", "load_pointcloud": "cube.access", "open": "cube.access",
    "read_frame": "cube.frames", "FrameReader": "cube.frames", "StorageSpec": "cube.storage", "summary": "cube.summary",
    "Steps": "preprocessing", "preprocess": "preprocessing", "FlameTracking": "source.converters.flame",
    "write_sample": "source.sample", "ExportReport": "submission.export", "SvfrMesh": "submission.export",
    "export_submission": "submission.export", "prediction_template": "submission.template",
    "write_frames": "submission.template", "ValidationReport": "submission.validate",
    "validate_submission": "submission.validate", "FrameDataset": "training.dataset",
    "MultiViewBatches": "training.dataset", "RandomFrames": "training.dataset",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public API only (not the modules this file imports for its own work)."""
    return sorted(__all__)


__all__ = [
    "ConversionReport", "ExportReport", "FlameTracking", "NersembleCubeError", "PredictionError", "SourceError",
    "FrameDataset", "FrameReader", "MultiViewBatches", "RandomFrames", "Steps", "StorageSpec", "StoreError", "SvfrMesh", "ValidationReport",
    "convert", "export_submission", "flame_tracking", "load_pointcloud", "open", "prediction_template", "preprocess", "read_frame", "summary",
    "validate_submission", "write_frames", "write_sample", "__version__",
]
