"""One error hierarchy (nersemble_cube.errors): each user mistake a class with its exit code, the README's
table of exit codes equal to it, no bare base class raised, and the CLI exiting with each class's code."""

import ast
import re
from pathlib import Path

import pytest

import nersemble_cube
from nersemble_cube import errors
from nersemble_cube.training.nerf import export_nerf

from conftest import run_cli

README = Path(__file__).parent.parent / "README.md"


def readme_exit_codes() -> dict[str, int]:
    """``ErrorClass -> exit code`` from the rows ``| code | `ErrorClass` | ... |`` of the README."""
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \|", README.read_text(), flags=re.MULTILINE)
    return {name: int(code) for code, name in rows}


def test_the_readme_table_lists_every_error_with_its_exit_code():
    classes = errors.user_errors()
    assert {c.__name__: c.exit_code for c in classes} == readme_exit_codes()
    assert [c.__name__ for c in classes] == ["UsageError", "SelectionError", "SourceError", "StoreError", "IncompleteCubeError",
                                             "VerificationError", "PredictionError", "InvalidSubmissionError"]
    assert errors.SelectionError.exit_code == 2 and errors.VerificationError.exit_code == 4


def test_the_package_never_raises_the_base_class():
    """Every raise names the kind of mistake, so the CLI's exit code says what went wrong."""
    package = Path(nersemble_cube.__file__).parent
    bare = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                    getattr(node.exc.func, "id", None) == "NersembleCubeError":
                bare.append(f"{path.relative_to(package)}:{node.lineno}")
    assert bare == []


def test_selection_errors_are_their_own_class(cube, tmp_path):
    with pytest.raises(errors.SelectionError, match="nvs/388/sequences/NOPE: no such sequence"):
        export_nerf(cube, tmp_path / "a", "nvs/388/NOPE")
    with pytest.raises(errors.UsageError, match="--format gif cannot be read by gaussian-avatars") as caught:
        export_nerf(cube, tmp_path / "b", "nvs/388/GLASSES", image_format="gif")
    assert not isinstance(caught.value, errors.SelectionError)


@pytest.mark.parametrize("args, code, message", [
    (("export-nerf", "{cube}", "{tmp}/o", "-s", "nvs/388/NOPE"), 2, "no such sequence"),
    (("export-nerf", "{cube}", "{tmp}/o", "-s", "nvs/388/GLASSES", "--camera", "222200037"), 2, "no video of cameras"),
    (("template", "{tmp}/nowhere", "{tmp}/p.zarr", "-b", "nvs"), 4, "nowhere: does not exist"),
    # a sequence the cube lacks is a SelectionError (2) in every command that takes one, either spelling
    (("preview", "{cube}", "-s", "nvs/388/NOPE", "-o", "{tmp}/p.png"), 2, "nvs/388/sequences has no 'NOPE'; it has ['GLASSES']"),
    (("preview", "{cube}", "-s", "mono_flame_avatar/393/FREE", "-o", "{tmp}/p.png"), 2, "has no frames to show"),
    (("import-alpha", "{cube}", "{tmp}", "-s", "nvs/388/sequences/NOPE"), 2, "no 'NOPE'"),
    # a frame range past the end is named as the user wrote it
    (("export-nerf", "{cube}", "{tmp}/o", "-s", "nvs/388/GLASSES", "--frames", "0:100"), 2,
     "frames 0:100 are not in the sequence: it has frames 0 to 4"),
    (("export-nerf", "{cube}", "{tmp}/o", "-s", "nvs/388/GLASSES", "--frames", "5:9"), 2, "frames 5:9 are not in"),
    (("export-nerf", "{cube}", "{tmp}/o", "-s", "nvs/388/GLASSES", "--frames", "7"), 2, "write START:STOP"),
])
def test_library_errors_reach_the_cli_as_one_line_with_their_code(cube, tmp_path, args, code, message):
    res = run_cli(*(a.format(cube=cube, tmp=tmp_path) for a in args))
    assert res.returncode == code, res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
