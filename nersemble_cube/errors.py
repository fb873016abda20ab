"""Every error type nersemble-cube raises on purpose.

A :class:`NersembleCubeError` is a problem the user can fix (a wrong path, a damaged file, a
store that is not a cube). Its message is one line that names the file and the fix; the CLI
prints it without a traceback and exits with :attr:`exit_code`. Any other exception is a bug
of ours and keeps its traceback.
"""

from __future__ import annotations


class NersembleCubeError(Exception):
    """Base class of the errors a user can cause. ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1


class SourceError(NersembleCubeError):
    """The benchmark folder, or a file in it, is missing, malformed or inconsistent (exit 3)."""

    exit_code = 3


class StoreError(NersembleCubeError):
    """The target or input store is not a nersemble-cube store, or is of an unknown schema (exit 4)."""

    exit_code = 4


class PredictionError(NersembleCubeError):
    """Predictions that cannot become a valid submission: wrong shape, cameras, NaN, missing parts (exit 5)."""

    exit_code = 5
