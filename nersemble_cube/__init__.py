"""nersemble-cube: NeRSemble benchmark downloads as chunked, labeled, lazily readable zarr cubes.

The package's folders are its layers (docs/architecture.md): :mod:`.source` (download folders) ->
:mod:`.cube` (schema, store, codecs, reading) -> :mod:`.conversion` -> the access layer
(:mod:`.accessor`, :mod:`.preprocess`, :mod:`.compat`, :mod:`.preview`) -> :mod:`.submission` ->
:mod:`.training`; :mod:`.cli` is a thin shell over them.
"""

from __future__ import annotations

from . import accessor  # noqa: F401 - registers ds.nersemble
from ._version import __version__
from .conversion import ConversionReport, convert
from .cube.access import flame_tracking, load_pointcloud, open, read_frame  # noqa: A004
from .cube.storage import StorageSpec
from .cube.summary import summary
from .errors import NersembleCubeError, PredictionError, SourceError, StoreError
from .preprocess import Steps, preprocess
from .source.converters.flame import FlameTracking
from .source.sample import write_sample
from .submission.export import ExportReport, SvfrMesh, export_submission
from .submission.template import prediction_template, write_frames
from .submission.validate import ValidationReport, validate_submission

__all__ = [
    "ConversionReport", "ExportReport", "FlameTracking", "NersembleCubeError", "PredictionError", "SourceError",
    "Steps", "StorageSpec", "StoreError", "SvfrMesh", "ValidationReport",
    "convert", "export_submission", "flame_tracking", "load_pointcloud", "open", "prediction_template", "preprocess", "read_frame", "summary",
    "validate_submission", "write_frames", "write_sample", "__version__",
]
