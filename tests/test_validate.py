"""Offline validation finds each kind of defect, agrees with the toolkit's reader, and never extracts unsafe paths."""

import io
import json
import os
import subprocess
import zipfile

import numpy as np
import pytest

from nersemble_cube.source import layout
from nersemble_cube.errors import InvalidSubmissionError
from nersemble_cube.submission.export import encode_command, export_submission
from nersemble_cube.submission.rules import is_unsafe, svfr_image_keys
from nersemble_cube.submission.validate import validate_submission

from conftest import FULL_FRAMES, pattern, run_cli
from test_export import _svfr_predictions
from toolkit import submission_data

pytestmark = pytest.mark.xdist_group("full_cube")  # one worker builds full_cube and nvs_zip (--dist loadgroup)


def test_the_full_cube_group_runs_on_one_worker(request):
    """Under pytest-xdist (the README's command) this module and test_export are one group, run by one worker, which
    builds full_cube and nvs_zip once: pytest 9.2 made --dist loadgroup drop the groups without a word
    (pytest-xdist#1386), and every worker built them again."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        assert request.node.nodeid.endswith("@full_cube"), request.node.nodeid


def _rewrite(src, dst, drop=(), add=()):
    """Copy a zip leaving out ``drop`` and adding ``(name, bytes)`` entries."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            if item.filename not in drop:
                zout.writestr(item, zin.read(item.filename))
        for name, data in add:
            zout.writestr(name, data)
    return dst


def _video(tmp_path, n, height, width):
    path = tmp_path / "v.mp4"
    subprocess.run(encode_command(path, width, height, 73.0), input=pattern(n, height, width, 1).tobytes(), check=True)
    return path.read_bytes()


def test_a_complete_export_is_valid(nvs_zip, full_cube):
    report = validate_submission(nvs_zip, "nvs", cube=full_cube)
    assert report.valid and report.checked == 15 and report.warnings == []
    no_cube = validate_submission(nvs_zip, "nvs")
    assert no_cube.valid and "frame counts not checked for 5 sequences" in no_cube.warnings[0]


def test_each_video_defect_is_reported(nvs_zip, full_cube, tmp_path):
    bad = _rewrite(nvs_zip, tmp_path / "bad.zip",
                   drop=["422/EXP-2-eyes/cam_222200039.mp4", "443/FREE/cam_222200037.mp4",
                         "445/EXP-6-tongue-1/cam_222200046.mp4", "475/HAIR/cam_222200039.mp4"],
                   add=[("443/FREE/cam_222200037.mp4", _video(tmp_path, FULL_FRAMES + 1, 1604, 1100)),
                        ("445/EXP-6-tongue-1/cam_222200046.mp4", _video(tmp_path, FULL_FRAMES, 512, 512)),
                        ("475/HAIR/cam_222200039.mp4", b"not a video"),
                        ("475/HAIR/cam_222200042.mp4", b"x"), ("notes.txt", b"x"),
                        ("../../etc/evil.mp4", b"x"), ("/abs/path.mp4", b"x")])
    report = validate_submission(bad, "nvs", cube=full_cube)
    assert not report.valid
    assert report.issues["missing_files"] == ["422/EXP-2-eyes/cam_222200039.mp4"]
    assert report.issues["wrong_frame_counts"] == [("443/FREE/cam_222200037.mp4", FULL_FRAMES + 1, FULL_FRAMES)]
    assert report.issues["wrong_resolutions"] == [("445/EXP-6-tongue-1/cam_222200046.mp4", (512, 512), (1100, 1604))]
    assert report.issues["unreadable_files"][0].startswith("475/HAIR/cam_222200039.mp4: not a readable video")
    assert report.issues["unexpected_files"] == ["475/HAIR/cam_222200042.mp4", "notes.txt"]
    assert report.issues["unsafe_paths"] == ["../../etc/evil.mp4", "/abs/path.mp4"]
    assert not (tmp_path.parent / "etc").exists()
    text = report.format()
    assert text.startswith("INVALID") and "wrong_frame_counts (1):" in text


def test_agrees_with_the_toolkit_reader(nvs_zip, full_cube, tmp_path, monkeypatch):
    sd = submission_data()
    bad = _rewrite(nvs_zip, tmp_path / "bad.zip", drop=["388/GLASSES/cam_222200046.mp4", "443/FREE/cam_222200037.mp4"],
                   add=[("443/FREE/cam_222200037.mp4", _video(tmp_path, FULL_FRAMES + 1, 802, 550))])
    lengths = {f"{p:03d}/{s}/cam_{c}.mp4": FULL_FRAMES for p, s in layout.NVS_IDS_AND_SEQUENCES
               for c in layout.NVS_HOLD_OUT_SERIALS}
    monkeypatch.setattr(sd.NVSSubmissionDataReader, "list_expected_video_lengths", lambda self: lengths)
    theirs = sd.NVSSubmissionDataReader(str(bad)).validate_submission()
    ours = validate_submission(bad, "nvs", cube=full_cube).issues
    assert set(theirs) == set(ours) == {"missing_files", "wrong_frame_counts", "wrong_resolutions"}
    for kind in theirs:
        assert sorted(map(list, ours[kind]) if kind != "missing_files" else ours[kind]) == \
            sorted(map(list, theirs[kind]) if kind != "missing_files" else theirs[kind])


def test_svfr_defects(tmp_path):
    preds = _svfr_predictions()
    export_submission(preds, tmp_path / "ok.zip", "svfr")
    k1, k2, k3 = list(svfr_image_keys())[:3]
    buf = io.BytesIO()
    np.save(buf, np.zeros((5, 3)))
    bad = _rewrite(tmp_path / "ok.zip", tmp_path / "bad.zip",
                   drop=[f"{k1}/mesh_posed.ply", f"{k2}/landmarks_neutral.npy", f"{k3}/landmarks_neutral.npy"],
                   add=[(f"{k3}/landmarks_neutral.npy", buf.getvalue()), (f"{k1}/rgb.png", b"x")])
    report = validate_submission(bad, "svfr")
    assert report.issues == {
        "missing_posed_meshes": [f"{k1}/mesh_posed.ply"],
        "missing_neutral_landmarks": [f"{k2}/landmarks_neutral.npy"],
        "wrong_neutral_landmarks": [(f"{k3}/landmarks_neutral.npy", (5, 3))],
        "unexpected_files": [f"{k1}/rgb.png"],
    }
    sd = submission_data()
    theirs = sd.SVFRSubmissionDataReader(str(bad)).validate_submission()  # the same kinds, the same entries
    assert {kind: sorted(map(str, entries)) for kind, entries in theirs.items()} == \
        {kind: sorted(map(str, entries)) for kind, entries in report.issues.items()}


def test_only_one_svfr_task_and_none(tmp_path):
    posed = {k: {"posed": v["posed"]} for k, v in _svfr_predictions().items()}
    export_submission(posed, tmp_path / "posed.zip", "svfr")
    assert validate_submission(tmp_path / "posed.zip", "svfr").valid
    with zipfile.ZipFile(tmp_path / "empty.zip", "w"):
        pass
    assert validate_submission(tmp_path / "empty.zip", "svfr").issues == {"missing_svfr_tasks": ["posed", "neutral"]}


def test_unsafe_paths():
    assert is_unsafe("/etc/passwd") and is_unsafe("../x.mp4") and is_unsafe("388/../../x") and is_unsafe("C:/x")
    assert not is_unsafe("388/GLASSES/cam_222200037.mp4")


def test_not_a_zip(tmp_path):
    (tmp_path / "x.zip").write_text("no")
    with pytest.raises(InvalidSubmissionError, match="not a readable zip"):
        validate_submission(tmp_path / "x.zip", "nvs")


def test_cli_template_export_validate(full_cube, tmp_path):
    # nvs: 15 videos of 2 frames (mono's 80 videos are exported through the library in test_export)
    run = run_cli
    res = run("template", full_cube, tmp_path / "pred.zarr", "-b", "nvs", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"store": str(tmp_path / "pred.zarr"), "benchmark": "nvs", "videos": 15, "frames": 30}
    res = run("export", tmp_path / "pred.zarr", tmp_path / "sub.zip", "-b", "nvs")
    assert res.returncode == 5 and "frames never written" in res.stderr and "Traceback" not in res.stderr
    res = run("export", tmp_path / "pred.zarr", tmp_path / "sub.zip", "-b", "nvs", "--partial")  # nothing rendered
    assert res.returncode == 5 and "nothing to export: " in res.stderr and "{" not in res.stderr, res.stderr
    from nersemble_cube.submission.template import write_frames
    for p, s in layout.NVS_IDS_AND_SEQUENCES:
        for c in layout.NVS_HOLD_OUT_SERIALS:
            write_frames(tmp_path / "pred.zarr", p, s, c, pattern(FULL_FRAMES, *layout.NVS_SIZE, p))
    res = run("export", tmp_path / "pred.zarr", tmp_path / "sub.zip", "-b", "nvs", "--workers", "2")
    assert res.returncode == 0, res.stderr
    assert "with 15 entries" in res.stdout
    res = run("validate", tmp_path / "sub.zip", "--benchmark", "nvs", "--cube", full_cube)
    assert res.returncode == 0 and res.stdout.startswith("VALID")
    _rewrite(tmp_path / "sub.zip", tmp_path / "bad.zip", drop=["388/GLASSES/cam_222200037.mp4"])
    res = run("validate", tmp_path / "bad.zip", "-b", "nvs", "--cube", full_cube)
    assert res.returncode == 6 and "missing_files (1):" in res.stdout
    assert "(1 kind of issue, listed above)" in res.stderr
    res = run("validate", tmp_path / "bad.zip", "-b", "nvs", "--cube", full_cube, "--partial", "--json")  # export --partial's zip
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["valid"] and report["left_out"] == ["388/GLASSES/cam_222200037.mp4"] and report["checked"] == 14
