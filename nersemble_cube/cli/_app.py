"""What every command shares: the typer app, the consoles, one-line errors, progress bars, option types.

Exit codes: 0 success, 130 interrupted, 2 bad command-line usage (typer's, or a
:class:`~nersemble_cube.errors.UsageError`), and each user error's ``exit_code`` (:mod:`..errors`).
Every error is ONE line on stderr, whatever the terminal's width (scripts grep them).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import functools
import json
import sys
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

# Only what the options need is imported here; each command imports the library parts it runs, so
# `--help` and a mistyped option answer without loading zarr, xarray, dask or the converters.
from .._version import __version__
from ..colors import COLORS
from ..errors import NersembleCubeError
from ..source import layout

app = typer.Typer(
    help="NeRSemble benchmark downloads as chunked, labeled, lazily readable zarr data cubes.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def choices(name: str, values) -> type[enum.Enum]:
    """A typer choice of ``values`` (its usage error lists them)."""
    return enum.Enum(name, {v: v for v in values}, type=str)


Background = choices("Background", COLORS)
BenchmarkChoice = choices("BenchmarkChoice", layout.BENCHMARKS)
VideoBenchmark = choices("VideoBenchmark", layout.VIDEO_BENCHMARKS)


def _print_version(value: bool) -> None:
    if value:
        out.print(f"nersemble-cube {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """NeRSemble benchmark downloads as chunked, labeled, lazily readable zarr data cubes."""


def error_line(message: str) -> None:
    """``error: MESSAGE`` on stderr, one line (newlines in the message folded), never wrapped."""
    err.print(f"[bold red]error:[/] {escape(' '.join(str(message).split()))}", markup=True, highlight=False)


def user_errors(func):
    """Print a user's mistake as one line and exit with its code; our own bugs keep their traceback."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except NersembleCubeError as e:
            error_line(str(e))
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            interrupted()
            raise typer.Exit(130) from None
    return wrapper


def interrupted() -> None:
    """The one line a Ctrl-C ends with. zarr's event-loop thread may still hold a read or write task the
    interrupt cut short (nothing is lost with it: the run is resumable); asyncio would log it at exit ("Task
    was destroyed but it is pending!"), after this line, so its logger is quietened first."""
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    err.print("interrupted; run the same command again to finish (complete parts are kept)")


# click's exception classes, wherever this typer keeps click (typer >= 0.22 vendors it as typer._click): found
# through typer's public BadParameter, so that neither a typer nor a click upgrade hides a usage error's class.
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
_NoArgsIsHelp = getattr(sys.modules[_ClickException.__module__], "NoArgsIsHelpError", ())


def main(argv: list[str] | None = None) -> int:
    """The console entry point: typer runs the command; its usage errors become one line (``error: ...; see
    nersemble-cube COMMAND -h``, exit 2) instead of a box rich wraps to the terminal's width."""
    try:
        code = app(args=argv, prog_name="nersemble-cube", standalone_mode=False)
    except _NoArgsIsHelp as e:
        out.print(e.ctx.get_help(), highlight=False)
        return 0
    except _ClickException as e:
        where = e.ctx.command_path if getattr(e, "ctx", None) else "nersemble-cube"
        error_line(f"{e.format_message()} (see {where} -h)")
        return e.exit_code
    except typer.Abort:
        interrupted()
        return 130
    return code if isinstance(code, int) else 0


class _RateColumn(ProgressColumn):
    """Items per second so far (rich's own speed column is for bytes)."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        rate = task.completed / elapsed if elapsed else 0.0
        return Text(f"{rate:.1f}/s")


def _progress() -> Progress:
    """A bar with what is done, elapsed time, rate and time left (stderr, so stdout stays parseable)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    _RateColumn(), TimeRemainingColumn(), console=err, transient=False)


@contextlib.contextmanager
def sized_bar(description: str):
    """Yield ``(progress, on_start)`` callbacks: the bar appears when ``on_start(total)`` is called, i.e.
    once the input has been checked, so errors found before print alone."""
    bar = _progress()
    task = bar.add_task(description, total=None)
    started = []

    def on_start(total: int) -> None:
        bar.update(task, total=total)
        bar.start()
        started.append(True)

    try:
        yield (lambda n: bar.advance(task, n)), on_start
        if bar.tasks[0].total is not None:  # done: a count that dask optimised short still ends full
            bar.update(task, completed=bar.tasks[0].total)
    finally:
        if started:  # a bar never shown prints nothing (an error before it stays one line)
            bar.stop()


def check_scheduler(scheduler: str) -> None:
    """A usage error (exit 2) for a --scheduler that is neither a name nor an address."""
    from ..cluster import check_scheduler as check

    try:
        check(scheduler)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--scheduler") from None


def print_json(data: dict) -> None:
    """``--json``: one JSON document on stdout (paths and other objects as strings)."""
    out.print_json(json.dumps(data, default=str))


Benchmark = Annotated[Optional[list[BenchmarkChoice]], typer.Option(
    "--benchmark", "-b", help="Only this benchmark; repeat for several.")]
Participant = Annotated[Optional[list[int]], typer.Option("--participant", "-p", help="Only this participant id; repeatable.")]
Store = Annotated[str, typer.Argument(metavar="STORE", help="A cube written by nersemble-cube convert (a path or an fsspec URL).")]
Sequence = Annotated[str, typer.Option(
    "--sequence", "-s", help="BENCHMARK/PARTICIPANT/SEQUENCE: nvs/388/GLASSES (or the node path "
                             "nvs/388/sequences/GLASSES), dataset/018/EXP-1-head.")]
Workers = Annotated[Optional[int], typer.Option(min=1, help="Tasks run in parallel (default: the cores this process may use).")]
Scheduler = Annotated[str, typer.Option(
    help="Where tasks run: threads (here), processes (a local dask.distributed cluster of --workers processes) "
         "or a dask scheduler address such as tcp://host:8786 (its workers must reach the same paths).")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON for scripts.")]

