"""The ``nersemble-cube`` command line: one thin module per command group (parse, show progress, call the
library); :mod:`._app` holds what they share (one-line errors, exit codes, progress bars, option types)."""

from . import convert, inspect, sample, submission, training  # noqa: F401 - each registers its commands
from ._app import app, main

__all__ = ["app", "main"]
