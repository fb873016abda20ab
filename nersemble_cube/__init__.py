"""nersemble-cube: NeRSemble benchmark downloads as chunked, labeled, lazily readable zarr cubes."""

from __future__ import annotations

__version__ = "0.1.0"

from .access import flame_tracking, load_pointcloud, open, summary  # noqa: E402,A004
from .codecs import StorageSpec  # noqa: E402
from .convert import ConversionReport, convert  # noqa: E402
from .converters.flame import FlameTracking  # noqa: E402
from .errors import NersembleCubeError, SourceError, StoreError  # noqa: E402
from .sample import write_sample  # noqa: E402

__all__ = [
    "ConversionReport", "FlameTracking", "NersembleCubeError", "SourceError", "StorageSpec", "StoreError",
    "convert", "flame_tracking", "load_pointcloud", "open", "summary", "write_sample", "__version__",
]
