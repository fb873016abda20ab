"""The command line, run as a user runs it: a subprocess, real exit codes, stderr as printed. The tables of user
mistakes go through the entry point's function in this process (``run_cli``: the same exit code and output, which
a test checks against real processes on a narrow terminal); the rest are processes."""

import json
import re

import numpy as np
import pytest

import nersemble_cube
from conftest import decode_pyav
from conftest import run_cli
from conftest import run_process as run


def test_help_lists_the_commands():
    res = run("-h")
    assert res.returncode == 0
    for command in ("convert", "sample", "info", "demo", "export-nerf", "validate"):
        assert command in res.stdout
    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"nersemble-cube {nersemble_cube.__version__}"


def test_one_grammar_for_every_command():
    """Placeholders are upper case, a sequence is -s/--sequence, counts are --n-frames, the composite colour is
    --background, and every command that reports a result speaks --json."""
    from nersemble_cube.cli import app
    from typer.main import get_command

    commands = get_command(app).commands
    for name, command in commands.items():
        args = [p for p in command.params if p.param_type_name == "argument"]
        assert all(p.metavar and p.metavar.isupper() for p in args), name
        options = {o for p in command.params for o in p.opts}
        assert "--frames" not in options or name == "export-nerf", name  # a START:STOP range there, counts elsewhere
        assert "--composite" not in options, name
        if "--sequence" in options:
            assert "-s" in options, name
    for name in ("convert", "verify", "info", "template", "export", "export-nerf", "import-alpha", "validate"):
        assert "--json" in {o for p in commands[name].params for o in p.opts}, name


def test_storage_settings_that_do_not_fit_the_codec_are_usage_errors(sample_dir, tmp_path):
    for args, says in ((("--codec", "h264", "--row-blocks", "4"), "row_blocks splits the frames of a lossless preset"),
                       (("--fast-decode",), "fast_decode is an h264 / hevc setting")):
        res = run_cli("convert", sample_dir, tmp_path / "c.zarr", *args)
        assert res.returncode == 2 and says in res.stderr, (args, res.stderr)
    assert not any(tmp_path.iterdir())


def test_choices_are_usage_errors_that_list_the_valid_values(cube, tmp_path):
    for args, valid in ((("preview", cube, "--alpha", "bogus", "-o", tmp_path / "p.png"), "overlay"),
                        (("preprocess", cube, tmp_path / "o.zarr", "--background", "purple"), "white"),
                        (("export-nerf", cube, tmp_path / "n", "-s", "nvs/388/GLASSES", "--background", "purple"), "grey"),
                        (("export-nerf", cube, tmp_path / "n", "-s", "nvs/388/GLASSES", "--format", "gif"), "jpg")):
        res = run_cli(*args)
        assert res.returncode == 2 and valid in res.stderr, (args, res.stderr)
    assert not any(tmp_path.iterdir())  # nothing written by any of them


def test_error_lines_keep_their_brackets():
    res = run("info", "gcs://bucket/cube.zarr")  # no gcsfs installed: the hint names the extra to install
    assert res.returncode == 4 and "nersemble-cube[remote]" in res.stderr, res.stderr


def test_info_and_validate_speak_json(cube, tmp_path):
    res = run("info", cube, "--json")
    assert res.returncode == 0, res.stderr
    facts = json.loads(res.stdout)
    seq = facts["nodes"]["nvs/388/sequences/GLASSES"]
    assert (seq["cameras"], seq["height"], seq["width"], seq["complete"]) == (3, 1604, 1100, True)
    assert facts["incomplete"] is False and facts["stored_bytes"]["total"] > 0
    missing = run("validate", tmp_path / "nope.zip", "-b", "nvs")
    assert missing.returncode == 2 and "nope.zip" in missing.stderr and "does not exist" in missing.stderr
    (tmp_path / "empty.zip").write_bytes(b"PK\x05\x06" + bytes(18))  # a valid zip with no entries
    res = run("validate", tmp_path / "empty.zip", "-b", "nvs", "--json")
    assert res.returncode == 6
    report = json.loads(res.stdout)
    assert report["valid"] is False and len(report["issues"]["missing_files"]) == 15


def test_sample_then_convert_then_info(tmp_path):
    res = run("sample", tmp_path / "bench", "--benchmark", "mono_flame_avatar", "--n-frames", "3")
    assert res.returncode == 0, res.stderr
    # every step that can take more than a second shows a bar: done/total, elapsed time, rate
    assert re.search(r"writing sample videos .* 2/2 0:00:\d\d [\d.]+/s", res.stderr), res.stderr
    res = run("convert", tmp_path / "bench", tmp_path / "cube.zarr", "--codec", "lz4", "--frames-per-chunk", "2")
    assert res.returncode == 0, res.stderr
    # calibration, 2 sequences with tracking, 4 hold-out sequences with tracking only
    # items: 2 sequences x (3 image + 3 alpha frames) + 6 tracking files
    assert "wrote 13 nodes (18 items" in res.stdout
    ds = nersemble_cube.open(tmp_path / "cube.zarr")["mono_flame_avatar/393/sequences/EXP-1-head"].to_dataset()
    np.testing.assert_array_equal(
        ds.images.isel(camera=0).values,
        decode_pyav(tmp_path / "bench/mono_flame_avatar/393/sequences/EXP-1-head/images/cam_222200037.mp4"))
    res = run("convert", tmp_path / "bench", tmp_path / "cube.zarr")
    assert res.returncode == 0 and "skipped 13 complete" in res.stdout
    res = run("info", tmp_path / "cube.zarr")
    assert res.returncode == 0
    assert "mono_flame_avatar/393/sequences/EXP-2-eyes: 1 camera x 3 frames of 512x512 (height x width) @ 24.3 fps" in res.stdout


MISTAKES = [
    (("convert", "{tmp}/nowhere", "{tmp}/c.zarr"), 3, "no such folder"),
    (("convert", "{tmp}/empty", "{tmp}/c.zarr"), 3, "not a NeRSemble download folder"),
    (("convert", "{tmp}", "{tmp}/c.zarr"), 4, "inside the benchmark folder"),
    (("convert", "{sample}", "{tmp}/file.txt"), 4, "exists and is not a folder"),
    # a part of a download instead of the download: what to pass instead
    (("convert", "{sample}/nvs", "{tmp}/c.zarr"), 3, "nvs/ subfolder of a benchmark download: pass its parent {sample} (with -b nvs)"),
    (("convert", "{sample}/nvs/388", "{tmp}/c.zarr"), 3, "is a participant folder: pass the download folder {sample} with -b nvs -p 388"),
    (("convert", "{sample}/nvs/388/sequences/GLASSES", "{tmp}/c.zarr"), 3,
     "is a sequence folder: pass the download folder {sample} with -b nvs -p 388 -s GLASSES"),
    (("convert", "{dataset}/018", "{tmp}/c.zarr"), 3, "is a participant folder: pass the download folder {dataset} with -p 18"),
    (("convert", "{dataset}/018/sequences/EXP-1-head", "{tmp}/c.zarr"), 3, "with -p 18 -s EXP-1-head"),
    # filters that match nothing list what the folder holds
    (("convert", "{sample}", "{tmp}/c.zarr", "-p", "999"), 3, "it holds: nvs 388 (GLASSES); mono_flame_avatar 393 ("),
    (("convert", "{sample}", "{tmp}/c.zarr", "-s", "GLASSE"), 3, "it holds: nvs 388 (GLASSES)"),
    (("convert", "{dataset}", "{tmp}/c.zarr", "-s", "EXP-9"), 3, "it holds: 018 (EXP-1-head, SEN-07-fond_note_friend)"),
    # option mistakes are usage errors (2), typer's included, one line at any terminal width
    (("convert", "{sample}", "{tmp}/c.zarr", "--every-nth", "2"), 2, "apply to a full-dataset folder"),
    (("convert", "{sample}", "{tmp}/c.zarr", "--codec", "gzip"), 2, "'gzip' is not one of 'zstd', 'lz4', 'none', 'jpegxl', 'h264', 'hevc', 'copy'"),
    (("convert", "{sample}", "{tmp}/c.zarr", "--frames-per-shard", "-5"), 2, "--frames-per-shard"),
    (("convert", "{sample}", "{tmp}/c.zarr", "--scheduler", "nowhere"), 2, "--scheduler is threads, processes"),
    (("validate", "{tmp}/nope.zip", "-b", "nvs"), 2, "nope.zip' does not exist"),
    # stores that are not cubes say why
    (("info", "{tmp}/nope.zarr"), 4, "nope.zarr: does not exist; convert a download folder into it first"),
    (("info", "{tmp}/empty"), 4, "empty: no zarr.json here, so not a nersemble-cube store"),
    (("info", "{tmp}/file.txt"), 4, "file.txt: is a file, not a cube"),
]
"""(arguments, exit code, what stderr says) of user mistakes; ``{tmp}``, ``{sample}``, ``{dataset}``: folders."""


def _mistake(tmp_path, sample_dir, dataset_dir, args, code, message, runner=run_cli, **options):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir(exist_ok=True)
    fill = dict(tmp=tmp_path, sample=sample_dir, dataset=dataset_dir)
    res = runner(*(a.format(**fill) for a in args), **options)
    assert res.returncode == code, res.stderr
    assert message.format(**fill) in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("error: "), res.stderr
    assert not (tmp_path / "c.zarr").exists()
    return res


@pytest.mark.parametrize("args, code, message", MISTAKES)
def test_user_mistakes_give_one_line_and_an_exit_code(tmp_path, sample_dir, dataset_dir, args, code, message):
    _mistake(tmp_path, sample_dir, dataset_dir, args, code, message)


@pytest.mark.parametrize("says", ["not a NeRSemble download", "nvs/ subfolder", "'gzip' is not one of", "file.txt: is a"])
def test_a_mistake_is_one_line_on_a_narrow_terminal_in_a_process_as_in_process(tmp_path, sample_dir, dataset_dir, says):
    """Real processes with a 30-column terminal, for one mistake of each kind of the table (a source, a long hint, a
    typer choice, a store): one line each (rich wraps nothing), and the same exit code, stdout and stderr as the
    in-process runner gives."""
    [(args, code, message)] = [m for m in MISTAKES if m[2].startswith(says)]
    real = _mistake(tmp_path, sample_dir, dataset_dir, args, code, message, run, env={"COLUMNS": "30"})
    here = _mistake(tmp_path, sample_dir, dataset_dir, args, code, message)
    assert (real.returncode, real.stdout, real.stderr) == (here.returncode, here.stdout, here.stderr)


def test_remote_stores_that_cannot_be_used_say_why(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    res = run("info", f"http://127.0.0.1:{closed}/cube.zarr")
    assert res.returncode == 4 and "cannot connect" in res.stderr and len(res.stderr.splitlines()) == 1, res.stderr
    no_credentials = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_PROFILE": None,
                      "AWS_SESSION_TOKEN": None, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
                      "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed}",
                      "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    for args in (("info", "s3://bucket/cube.zarr"), ("convert", tmp_path, "s3://bucket/cube.zarr")):
        res = run(*args, env=no_credentials)
        assert res.returncode == 4, res.stderr
        assert "no credentials for s3:// (set AWS_ACCESS_KEY_ID" in res.stderr and len(res.stderr.splitlines()) == 1


def test_demo_runs_end_to_end(tmp_path):
    res = run("demo", tmp_path / "demo", "--n-frames", "2")
    assert res.returncode == 0, res.stderr
    assert "nvs/388/sequences/GLASSES: 13 cameras x 2 frames of 1604x1100 (height x width) @ 73 fps" in res.stdout
    assert "read nvs/388/GLASSES camera 220700191 frame 1: (1604, 1100, 3) uint8" in res.stdout
    assert "point cloud of frame 0: 20000 points; FLAME tracking of hold-out sequence FREE: " \
           "expression (5, 100) -> render 5 frames" in res.stdout
