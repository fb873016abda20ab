"""nersemble-cube: NeRSemble benchmark downloads as chunked, labeled, lazily readable zarr cubes."""

from __future__ import annotations

__version__ = "0.1.0"

from . import accessor  # noqa: E402,F401 - registers ds.nersemble
from .access import flame_tracking, load_pointcloud, open, read_frame, summary  # noqa: E402,A004
from .codecs import StorageSpec  # noqa: E402
from .convert import ConversionReport, convert  # noqa: E402
from .converters.flame import FlameTracking  # noqa: E402
from .errors import NersembleCubeError, PredictionError, SourceError, StoreError  # noqa: E402
from .export import ExportReport, SvfrMesh, export_submission  # noqa: E402
from .prediction import prediction_template, write_frames  # noqa: E402
from .preprocess import Steps, preprocess  # noqa: E402
from .sample import write_sample  # noqa: E402
from .validate import ValidationReport, validate_submission  # noqa: E402

__all__ = [
    "ConversionReport", "ExportReport", "FlameTracking", "NersembleCubeError", "PredictionError", "SourceError",
    "Steps", "StorageSpec", "StoreError", "SvfrMesh", "ValidationReport",
    "convert", "export_submission", "flame_tracking", "load_pointcloud", "open", "prediction_template", "preprocess", "read_frame", "summary",
    "validate_submission", "write_frames", "write_sample", "__version__",
]
