"""Every error type nersemble-cube raises on purpose, each with the exit code the CLI gives it.

A :class:`NersembleCubeError` is a problem the user can fix (a wrong path, a damaged file, a
store that is not a cube, a selection the cube does not hold). Its message is one line that names
the file and the fix; the CLI prints it without a traceback and exits with :attr:`exit_code`. Any
other exception is a bug of ours and keeps its traceback. The base class itself is never raised:
every user mistake has its own subclass below (README's table of exit codes is checked against them).
"""

from __future__ import annotations


class NersembleCubeError(Exception):
    """Base class of the errors a user can cause. ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1


class UsageError(NersembleCubeError):
    """An option or argument value that cannot work: an unknown background or format, an empty frame
    range, two rules where one is allowed (exit 2, like a command-line usage error)."""

    exit_code = 2


class SelectionError(UsageError):
    """A selection the cube does not hold: a sequence, camera or frame that is not there, or a sequence
    without the data the operation needs (exit 2)."""


class SourceError(NersembleCubeError):
    """The benchmark folder, or a file in it, is missing, malformed or inconsistent (exit 3)."""

    exit_code = 3


class StoreError(NersembleCubeError):
    """The target or input store is not a nersemble-cube store, is of an unknown schema, is being
    written by another process, or would not fit (exit 4)."""

    exit_code = 4


class IncompleteCubeError(StoreError):
    """The cube is being written, or a conversion into it was interrupted: its unfinished parts are not read as
    data unless asked for (``open(..., incomplete=True)``); running the same ``convert`` again finishes it (exit 4)."""


class VerificationError(StoreError):
    """``convert --verify`` found frames or arrays in the cube that differ from the source, or ``verify``
    found damaged or missing chunks (exit 4)."""


class PredictionError(NersembleCubeError):
    """Predictions that cannot become a valid submission: wrong shape, cameras, NaN, missing parts (exit 5)."""

    exit_code = 5


class InvalidSubmissionError(NersembleCubeError):
    """``validate`` found a submission zip the benchmark would reject (exit 6)."""

    exit_code = 6


def user_errors() -> list[type[NersembleCubeError]]:
    """Every error class a user can meet (the base class excluded), in the order of their exit codes."""
    found, todo = [], [NersembleCubeError]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return sorted(found, key=lambda c: (c.exit_code, c.__mro__.__len__(), c.__name__))
