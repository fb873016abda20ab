"""Coverage-guided fuzzing (atheris, i.e. libFuzzer) of the parsers that read untrusted files: the pcd
reader, the FLAME tracking npz reader and the submission zip validator. Not run in CI: run it by hand,
for a bounded time each.

    pip install ".[fuzz]"
    python benchmarks/fuzz_parsers.py pcd -max_total_time=60 -rss_limit_mb=2048
    python benchmarks/fuzz_parsers.py npz -max_total_time=60
    python benchmarks/fuzz_parsers.py zip -max_total_time=60

A crash is any exception but the documented one (``SourceError``; for the validator a report, or
``InvalidSubmissionError`` for a file that is no zip), a memory peak above ``-rss_limit_mb`` or a time-out;
libFuzzer then writes the input as ``crash-*`` / ``oom-*`` / ``timeout-*``, and each one found becomes a
regression test in ``tests/test_reliability.py``. The seeds are valid files of each format.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import atheris
import numpy as np

with atheris.instrument_imports(include=["nersemble_cube"]):
    from nersemble_cube.errors import InvalidSubmissionError, SourceError
    from nersemble_cube.source.converters.flame import read_flame_tracking, write_flame_tracking
    from nersemble_cube.source.converters.pcd import read_pcd, write_pcd
    from nersemble_cube.source.sample import flame_tracking, pointcloud
    from nersemble_cube.submission.validate import validate_submission

WORK = Path(tempfile.mkdtemp(prefix="nersemble-fuzz-"))


def _seed_pcd() -> bytes:
    write_pcd(WORK / "seed.pcd", pointcloud(0, 73.0, 50, seed=1))
    return (WORK / "seed.pcd").read_bytes()


def _seed_npz() -> bytes:
    write_flame_tracking(WORK / "seed.npz", flame_tracking(4, seed=1))
    return (WORK / "seed.npz").read_bytes()


def _seed_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("388/GLASSES/cam_222200037.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(64))
        landmarks = io.BytesIO()
        np.save(landmarks, np.zeros((7, 3)))
        zf.writestr("017/EMO-1-shout+laugh_156_221501007/landmarks_posed.npy", landmarks.getvalue())
    return buf.getvalue()


def _reader(read, suffix: str):
    """A fuzz target: the input written to a file of ``suffix`` and read; SourceError is the expected refusal."""
    def target(data: bytes) -> None:
        path = WORK / f"input{suffix}"
        path.write_bytes(data)
        try:
            read(path)
        except SourceError:
            pass
    return target


def _zip(data: bytes) -> None:
    path = WORK / "input.zip"
    path.write_bytes(data)
    for benchmark in ("nvs", "svfr"):
        try:
            validate_submission(path, benchmark)
        except InvalidSubmissionError:
            return


TARGETS = {"pcd": (_reader(read_pcd, ".pcd"), _seed_pcd), "npz": (_reader(read_flame_tracking, ".npz"), _seed_npz),
           "zip": (_zip, _seed_zip)}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python {sys.argv[0]} {{{'|'.join(TARGETS)}}} [libFuzzer options]")
    target, seed = TARGETS[sys.argv[1]]
    corpus = WORK / "corpus"
    corpus.mkdir()
    (corpus / "seed").write_bytes(seed())
    atheris.Setup([sys.argv[0], *sys.argv[2:], str(corpus)], target)
    os.chdir(WORK)  # crash-* files land here (the path is printed)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
