"""Offline validation of a submission zip: the checks of the toolkit's ``*SubmissionDataReader.validate_submission``,
with expected frame counts taken from a cube instead of the benchmark server.

Issue keys follow the toolkit's (``missing_files``, ``wrong_frame_counts``, ``wrong_resolutions``,
``missing_posed_meshes``, ``empty_posed_meshes``, ``missing_posed_landmarks``, ``wrong_posed_landmarks``,
the same for neutral, ``unexpected_files``, ``missing_svfr_tasks``) plus ``unsafe_paths`` (entries
with absolute paths or ``..``: reported, never extracted) and ``unreadable_files`` (also entries refused
unread: encrypted, an unknown compression, larger than such a file can be, or inflating like a zip bomb).
Every read is bounded: a video at most :data:`MAX_VIDEO_BYTES` in one temporary file at a time, a mesh
:data:`MAX_MESH_BYTES`, landmarks :data:`MAX_LANDMARK_BYTES`, all in memory only up to those sizes.
"""

from __future__ import annotations

import io
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import xarray as xr

from ..cube import schema
from ..cube.access import as_tree
from ..errors import InvalidSubmissionError, NersembleCubeError
from ..source.converters.video import probe
from .rules import (CODEC, FLAME_VERTICES, LANDMARKS_SHAPE, PIX_FMT, SVFR_TASKS, check_benchmark, expected_videos,
                    fps, frame_size, is_unsafe, svfr_entries, svfr_image_keys, video_path)


@dataclass
class ValidationReport:
    """``issues`` maps an issue kind to its entries (empty when valid); ``warnings`` do not invalidate."""

    zip_path: Path
    benchmark: str
    issues: dict[str, list] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    checked: int = 0
    left_out: list[str] = field(default_factory=list)
    """With ``partial``: the expected videos or meshes the zip lacks (a warning, not an issue)."""

    @property
    def valid(self) -> bool:
        return not self.issues

    def add(self, kind: str, entry) -> None:
        self.issues.setdefault(kind, []).append(entry)

    def format(self, limit: int = 10) -> str:
        """A readable report: verdict, then each issue kind with up to ``limit`` entries."""
        head = "VALID" if self.valid else "INVALID"
        lines = [f"{head}: {self.zip_path} as a {self.benchmark} submission ({self.checked} entries checked)"]
        for kind, entries in self.issues.items():
            lines.append(f"  {kind} ({len(entries)}):")
            lines += [f"    {e}" for e in entries[:limit]]
            if len(entries) > limit:
                lines.append(f"    ... and {len(entries) - limit} more")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


MAX_RATIO = 100
"""An entry that inflates more than this (mp4, ply and npy barely deflate) is refused unread: a zip bomb."""
MAX_VIDEO_BYTES = 4 << 30
"""The most one submission video may take (a real one takes a few hundred MB at crf 14)."""
MAX_MESH_BYTES = 512 << 20
MAX_LANDMARK_BYTES = 4096
"""A 7x3 landmark array is 168 bytes of float64 plus a 128-byte header."""
_READABLE = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


class _Unreadable(Exception):
    """An entry refused or failed while reading: its message goes into ``unreadable_files``."""


def _read_entry(zf: zipfile.ZipFile, name: str, limit: int, dst=None) -> bytes | None:
    """The bytes of the entry ``name`` (or, with ``dst``, copied into that file object), read only if it is
    plain, not encrypted, at most ``limit`` bytes and not inflating more than :data:`MAX_RATIO`; at most
    ``limit`` bytes are ever read. Raises :class:`_Unreadable` saying why not."""
    info = zf.getinfo(name)
    if info.flag_bits & 0x1:
        raise _Unreadable("encrypted entry")
    if info.compress_type not in _READABLE:
        raise _Unreadable(f"unsupported compression method {info.compress_type}")
    if info.file_size > limit:
        raise _Unreadable(f"declares {info.file_size} bytes, more than the {limit} such a file can take")
    if info.file_size > MAX_RATIO * max(info.compress_size, 1) + 65536:
        raise _Unreadable(f"inflates {info.compress_size} bytes to {info.file_size} (a zip bomb?)")
    out, total = [], 0
    try:
        with zf.open(info) as src:
            while block := src.read(min(1 << 20, limit + 1 - total)):
                total += len(block)
                if total > limit:
                    raise _Unreadable(f"holds more than the {limit} bytes such a file can take")
                if dst is None:
                    out.append(block)
                else:
                    dst.write(block)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError,
            struct.error) as e:  # ValueError: a local header name that is not UTF-8 (fuzzed)
        raise _Unreadable(str(e) or type(e).__name__) from None
    return b"".join(out) if dst is None else None


def _frame_counts(cube: xr.DataTree | str | Path | None, benchmark: str) -> dict[tuple[int, str], int]:
    if cube is None:
        return {}
    tree = as_tree(cube)
    counts = {}
    for p_id, seq in expected_videos(benchmark):
        try:
            n = tree[schema.sequence_path(benchmark, p_id, seq)].attrs.get("n_frames")
        except KeyError:
            continue
        if n is not None:
            counts[(p_id, seq)] = int(n)
    return counts


def _validate_videos(zf: zipfile.ZipFile, names: list[str], report: ValidationReport, cube) -> None:
    benchmark = report.benchmark
    counts = _frame_counts(cube, benchmark)
    height, width = frame_size(benchmark)
    expected = {video_path(p, s, c): (p, s) for (p, s), cams in expected_videos(benchmark).items() for c in cams}
    unchecked = set()
    with tempfile.TemporaryDirectory(prefix="nersemble-cube-validate-") as tmp:
        for name, key in expected.items():
            if name not in names:
                report.add("missing_files", name)
                continue
            local = Path(tmp) / "video.mp4"
            try:
                with local.open("wb") as dst:
                    _read_entry(zf, name, MAX_VIDEO_BYTES, dst)
                info = probe(local)
            except _Unreadable as e:
                report.add("unreadable_files", f"{name}: {e}")
                continue
            except NersembleCubeError as e:
                report.add("unreadable_files", f"{name}: {str(e).split(': ', 1)[-1]}")
                continue
            report.checked += 1
            if key in counts and info.n_frames != counts[key]:
                report.add("wrong_frame_counts", (name, info.n_frames, counts[key]))
            elif key not in counts:
                unchecked.add(key)
            if (info.width, info.height) != (width, height):
                report.add("wrong_resolutions", (name, (info.width, info.height), (width, height)))
            if info.codec != CODEC or info.pix_fmt != PIX_FMT:
                report.warnings.append(f"{name}: {info.codec} {info.pix_fmt}, the toolkit writes {CODEC} {PIX_FMT}")
            if abs(info.fps - fps(benchmark)) > 0.01:
                report.warnings.append(f"{name}: {info.fps:g} fps, the benchmark's videos have {fps(benchmark):g}")
    if unchecked:
        where = "no cube was given" if cube is None else "the cube lacks them"
        report.warnings.append(f"frame counts not checked for {len(unchecked)} sequences ({where}; pass --cube)")
    dirs = {str(PurePosixPath(n).parent) + "/" for n in expected} | {n.split("/")[0] + "/" for n in expected}
    for name in names:
        if name not in expected and name not in dirs:
            report.add("unexpected_files", name)


def _validate_svfr(zf: zipfile.ZipFile, names: list[str], report: ValidationReport) -> None:
    import trimesh
    from trimesh.exchange.ply import load_ply

    keys = svfr_image_keys()
    present = {t for t in SVFR_TASKS if any(svfr_entries(k, t)[0] in names for k in keys)}
    allowed = {entry for task in SVFR_TASKS for k in keys for entry in svfr_entries(k, task)}
    for task in sorted(present, key=SVFR_TASKS.index):
        for key in keys:
            mesh_name, lm_name = svfr_entries(key, task)
            if mesh_name not in names:
                report.add(f"missing_{task}_meshes", mesh_name)
                continue
            try:
                ply = io.BytesIO(_read_entry(zf, mesh_name, MAX_MESH_BYTES))
                mesh = trimesh.Trimesh(**load_ply(ply))  # as the toolkit's reader loads it (process=True)
                n_vertices, n_faces = len(mesh.vertices), len(mesh.faces)
            except Exception as e:  # noqa: BLE001 - any parser failure is an unreadable file
                report.add("unreadable_files", f"{mesh_name}: {e}")
                continue
            report.checked += 1
            if n_vertices == 0 or n_faces == 0:
                report.add(f"empty_{task}_meshes", mesh_name)
            if n_vertices != FLAME_VERTICES:
                if lm_name not in names:
                    report.add(f"missing_{task}_landmarks", lm_name)
                    continue
                try:
                    landmarks = np.load(io.BytesIO(_read_entry(zf, lm_name, MAX_LANDMARK_BYTES)), allow_pickle=False)
                except Exception as e:  # noqa: BLE001
                    report.add("unreadable_files", f"{lm_name}: {e}")
                    continue
                if landmarks.shape != LANDMARKS_SHAPE:
                    report.add(f"wrong_{task}_landmarks", (lm_name, landmarks.shape))
    if not present:
        report.issues["missing_svfr_tasks"] = list(SVFR_TASKS)
    dirs = {n.rsplit("/", 1)[0] + "/" for n in allowed} | {n.split("/")[0] + "/" for n in allowed}
    for name in names:
        task_files = {f"mesh_{t}.ply" for t in present} | {f"landmarks_{t}.npy" for t in present}
        if name in dirs:
            continue
        if name not in allowed or name.rsplit("/", 1)[-1] not in task_files:
            report.add("unexpected_files", name)


def validate_submission(zip_path: str | Path, benchmark: str,
                        cube: xr.DataTree | str | Path | None = None, partial: bool = False) -> ValidationReport:
    """Check a submission zip offline; ``cube`` supplies the expected frame counts of video benchmarks.
    ``partial`` (what ``export_submission(partial=True)`` writes): expected videos or meshes that are absent
    are listed in ``left_out`` and a warning instead of invalidating; everything present is checked as usual.

    Never extracts an entry to a path taken from the zip. Raises :class:`InvalidSubmissionError` only when
    ``zip_path`` is not a readable zip (everything else is reported).
    """
    zip_path = Path(zip_path).expanduser()
    check_benchmark(benchmark)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile, ValueError, NotImplementedError, EOFError, RuntimeError) as e:
        # ValueError: entry names that are not UTF-8, NotImplementedError: a zip version zipfile lacks (fuzzed)
        raise InvalidSubmissionError(f"{zip_path}: not a readable zip file ({e})") from None
    report = ValidationReport(zip_path, benchmark)
    with zf:
        names = [i.filename for i in zf.infolist()]
        unsafe = [n for n in names if is_unsafe(n)]
        for name in unsafe:
            report.add("unsafe_paths", name)
        safe = [n for n in names if n not in unsafe]
        if benchmark == "svfr":
            _validate_svfr(zf, safe, report)
        else:
            _validate_videos(zf, safe, report, cube)
    if partial:
        for kind in [k for k in report.issues if k == "missing_files" or (k.startswith("missing_") and k.endswith("_meshes"))]:
            report.left_out += report.issues.pop(kind)
        if report.left_out:
            report.warnings.append(f"{len(report.left_out)} expected entries left out (partial submission)")
    return report
