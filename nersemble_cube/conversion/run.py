"""Running a conversion: plan, lock, build every node (:mod:`.nodes`), run their tasks in threads or on
dask.distributed (:mod:`..cluster`), mark each node complete once all its tasks succeeded.

A node is marked ``complete`` only after all its arrays are written. A node whose source turns out bad
half-way is removed again; a killed run leaves ``complete = False``, which the next run resumes and
:func:`nersemble_cube.open` warns about.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..cluster import Progress, Runner, runner
from ..cube import schema, store
from ..cube.location import Location, locate
from ..cube.lock import writer_lock
from ..cube.storage import StorageSpec
from ..errors import SourceError, StoreError, UsageError
from ..source import dataset
from ..source.files import SourcePath, as_path, is_remote
from ..source.metadata import read_metadata
from . import nodes
from .estimate import check_free_space
from .plan import ConversionPlan, ParticipantPlan, plan


@dataclass
class ConversionReport:
    """What :func:`convert` did: node paths written and skipped (already complete), items written,
    and notes worth telling the user."""

    store: Location
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    items: int = 0
    notes: list[str] = field(default_factory=list)


class _Schedule:
    """The bookkeeping of one conversion: progress credit for work already in the store, the nodes
    waiting for their tasks, completion markers and the report. Knows nothing of what a node holds."""

    def __init__(self, target: Location, report: ConversionReport, progress: Progress):
        self.target, self.report, self.progress = target, report, progress
        self.waiting: list[nodes.NodeWork] = []
        self.order: dict[str, int] = {}  # build order, so the report lists nodes alike however tasks finish

    def take(self, work: nodes.NodeWork) -> nodes.NodeWork:
        """Account for a built node: skipped, complete now (no tasks), or waiting for its tasks."""
        if work.done_items:
            self.progress(work.done_items)
        if work.skipped:
            self.report.skipped.append(work.group)
        elif not work.tasks:
            self.order.setdefault(work.group, len(self.order))
            self._finish(work)
        else:
            self.order.setdefault(work.group, len(self.order))
            self.waiting.append(work)
        return work

    def run(self, run: Runner) -> None:
        """Run every waiting task; mark each node complete once all its tasks are done. On a failed task
        the rest is cancelled; a node with bad source data is removed, the others stay resumable."""
        owner = {id(t): work for work in self.waiting for t in work.tasks}
        left = {work.group: len(work.tasks) for work in self.waiting}
        results = run.run([t for work in self.waiting for t in work.tasks], self.progress)
        for task, _, error in results:
            work = owner[id(task)]
            if error is not None:
                results.close()  # the tasks still running finish first: none writes after the removal below
                self._failed(work.group, error)
            left[work.group] -= 1
            if left[work.group] == 0:
                self._finish(work)
        self.waiting = []
        self.report.written.sort(key=lambda g: self.order.get(g, len(self.order)))

    def _failed(self, group: str, error: BaseException) -> None:
        """Raise ``error``; a node whose source turned out bad is removed first (it cannot be resumed); a
        failed write (a full disk, a store gone read-only) is a :class:`StoreError` (the node stays resumable)."""
        if isinstance(error, SourceError):
            store.remove_group(self.target, group)
            raise SourceError(f"{error} (the half-written {group} was removed from {self.target})") from None
        if isinstance(error, OSError):
            raise StoreError(f"{self.target}: writing {group} failed ({error.strerror or error}); free space or "
                             "fix the store, then run convert again (finished parts are kept)") from None
        raise error

    def _finish(self, work: nodes.NodeWork) -> None:
        store.mark_complete(self.target, work.group)
        self.report.written.append(work.group)
        self.report.items += work.items
        if work.note:
            self.report.notes.append(work.note)


def _scaled_groups(part: ParticipantPlan) -> list[str]:
    """The nodes of a participant that get reduced-resolution levels: its calibration and video sequences."""
    return ([part.group] if part.calibration is not None else []) + [s.group for s in part.sequences if s.images]


def _repair_metadata(target: Location, checked: ConversionPlan, scales: tuple[int, ...]) -> None:
    """Make the damaged metadata documents of ``target`` (:func:`~nersemble_cube.cube.integrity.check_metadata`)
    rebuildable by this conversion, before anything else is written: a damaged root is written afresh, a damaged
    node (or an array of it) is removed so that it is converted again, a damaged benchmark or participant group
    document is removed (convert writes it again). Nothing this conversion cannot rebuild is removed: damage
    outside what it writes is a :class:`StoreError` naming the document and the conversion that repairs it."""
    from ..cube.integrity import check_metadata

    damage = check_metadata(target)
    if not damage:
        return
    if damage[0].key == "zarr.json":
        store.rebuild_root(target)
        damage = check_metadata(target)  # now compared with the consolidated copy no longer there: parse errors only
    written = checked.nodes
    for d in damage:
        parts = d.path.split("/")
        factor = int(parts[1]) if parts[0] == "scales" and len(parts) > 1 and parts[1].isdigit() else None
        prefix = "" if factor is None else f"{schema.scale_path(factor)}/"
        path = d.path.removeprefix(prefix)
        rebuilt = factor is None or factor in scales
        node = next((n for n in written if path == n or path.startswith(n + "/")), None)
        if node is not None and rebuilt:
            store.remove_group(target, prefix + node)  # converted again, from the source
        elif rebuilt and (d.path in ("scales", prefix.rstrip("/")) or any(n.startswith(path + "/") for n in written)):
            store.write_group_document(target, d.path)  # a group above the nodes: its attrs are written again
        else:
            raise StoreError(f"{target}/{d.key}: damaged metadata ({d.reason}) of a node this conversion does not "
                             "write; run nersemble-cube convert SOURCE STORE with a selection that holds it (or none)")


def convert(
    source: str | Path | SourcePath,
    target: str | Path | Location,
    *,
    benchmarks: list[str] | None = None,
    participants: list[int] | None = None,
    sequences: list[str] | None = None,
    cameras: list[str] | None = None,
    every_nth: int = 1,
    fps: float | None = None,
    storage: StorageSpec | None = None,
    overwrite: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    storage_options: dict | None = None,
    progress: Progress | None = None,
    on_plan: Callable[[ConversionPlan], None] | None = None,
    check_space: bool = True,
    scales: tuple[int, ...] = (1,),
) -> ConversionReport:
    """Convert a download folder (all three benchmarks, or the full dataset) into the cube at ``target``.

    ``source`` is the folder given to ``nersemble-benchmark-download`` or to ``nersemble-data download``
    (the full dataset: nodes ``dataset/{p_id:03d}/...``, see docs/dataset.md), local or an fsspec URL
    (``s3://bucket/benchmark``: videos and images are downloaded one at a time for decoding); ``benchmarks``,
    ``participants`` and ``sequences`` restrict what is converted; for the full dataset also ``cameras``
    (serials), ``every_nth`` (keep source frames 0, n, 2n, ...) or ``fps`` (keep the frames ffmpeg's fps filter
    picks at that rate: the frames VHAP extracts); the ``time`` coordinate keeps the source frame indices. ``target`` is a local path or an
    fsspec URL (``s3://bucket/cube.zarr``, ``gs://...``, ``memory://...``) opened with
    ``storage_options`` (else fsspec's usual configuration and the cloud SDK's credentials).

    Work is split into tasks, one per video, per batch of point clouds, per tracking file and one for
    the SVFR images; each writes its own shard-aligned region and then its own completion flag.
    ``scheduler`` says where they run (:func:`nersemble_cube.cluster.runner`): ``"threads"``
    (default, ``workers`` threads, default the cores this process may use), ``"processes"`` (a local dask.distributed
    cluster of ``workers`` processes) or a dask scheduler address. The store is the same whichever runs it.

    Nodes already complete in ``target`` are skipped unless ``overwrite``; an interrupted node is
    resumed (its finished videos kept) when its metadata matches; point clouds of timesteps
    downloaded since the last run are appended without rewriting a chunk. ``on_plan`` sees the
    checked plan before anything is written (the CLI sizes its progress bar with it); ``progress`` is
    called with each number of items written (video frames, images and alpha mattes counted
    separately, point clouds, tracking files and SVFR images).

    ``scales`` other than 1 also store reduced-resolution copies of the calibration and frames
    (area-averaged by each integer factor) under ``scales/{factor}/``, opened with
    ``nersemble_cube.open(store, scale=factor)``.

    With ``check_space`` the store's size is estimated first
    (:func:`~nersemble_cube.conversion.estimate.estimate_bytes`) and a local disk without room for it is
    refused, naming the codec presets that would fit.

    Raises :class:`SourceError` for bad input and :class:`StoreError` when ``target`` exists and is
    not a cube, lies inside ``source``, would not fit on its disk or another ``convert`` is writing
    it, in all cases before anything is written. The source folder is only read.
    """
    root = as_path(source)
    target = locate(target, storage_options)
    storage = storage or StorageSpec()
    progress = progress or (lambda n: None)
    if target.is_local and not is_remote(root) and target.path.resolve().is_relative_to(root.resolve()):
        raise StoreError(f"{target}: inside the benchmark folder {root}, which is never modified; choose a path outside it")
    store.check_target(target)
    if every_nth < 1:
        raise UsageError(f"every_nth must be 1 or more, not {every_nth}")
    checked = plan(root, benchmarks, participants, sequences, cameras, every_nth, fps)
    gops = nodes.copy_gops(storage, checked) if storage.codec == "copy" else {}
    if check_space:
        check_free_space(target, checked, storage, overwrite, scales)
    report = ConversionReport(target)
    with writer_lock(target), runner(scheduler, workers) as run:
        if on_plan is not None:
            on_plan(checked)
        store.remove_partial_writes(target)
        _repair_metadata(target, checked, scales)
        store.prepare_target(target)
        store.begin_writing(target)
        # ffmpeg's default of one decoder thread per core, times the workers, oversubscribes the machine
        where = nodes.Target(target, root, storage, overwrite, run.threads_per_task, gops)
        schedule = _Schedule(target, report, progress)
        try:
            _schedule_nodes(where, checked, schedule)
            store.consolidate(target)  # the nodes being rewritten read as incomplete from here on
            schedule.run(run)
            for part in checked.participants:
                for factor in (f for f in scales if f != 1):
                    for group in _scaled_groups(part):
                        schedule.take(nodes.scaled(where, group, factor, run, group in report.written))
            if any(f != 1 for f in scales):
                levels = sorted(set(store.open_group(target, "").attrs.get("multiscales", [1])) | set(scales))
                store.set_attrs(target, "", {"multiscales": levels})
            store.end_writing(target)
        finally:
            store.consolidate(target)
    return report


def _schedule_nodes(where: nodes.Target, checked: ConversionPlan, schedule: _Schedule) -> None:
    """Create every node of the plan (participants' attrs, calibration, backgrounds, frames, point clouds,
    tracking, SVFR images) and queue their tasks on ``schedule``; nothing runs yet."""
    target = where.store
    if checked.metadata:
        store.set_attrs(target, dataset.BENCHMARK, {"metadata": read_metadata(checked.metadata)})
    for part in checked.participants:
        src = part.source
        store.set_attrs(target, schema.participant_path(src.benchmark, src.participant_id),
                        {"benchmark": src.benchmark, "participant_id": src.participant_id})
        if part.calibration is not None:
            schedule.take(nodes.calibration(where, part))
        if part.backgrounds:
            schedule.take(nodes.background(where, part))
        for seq in part.sequences:
            frames = schedule.take(nodes.frames(where, seq))
            if seq.pointclouds:
                schedule.take(nodes.pointclouds(where, seq, frames.fresh))
            for version in seq.tracking:
                schedule.take(nodes.tracking(where, seq, version, frames.fresh))
    if checked.svfr:
        schedule.take(nodes.svfr(where, checked.svfr))
