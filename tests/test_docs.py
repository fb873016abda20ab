"""Every Python block of README.md and docs/*.md, run as a user pastes them: README first, then each page
in order, all in ONE folder (what one page writes is there for the next: names must not collide).

The blocks of one document run in order in one namespace (later blocks use what earlier ones made). The
folder holds what README.md says the snippets assume: the demo cube as ``cube.zarr`` and
``~/nersemble.zarr`` (a copy: some blocks write to it), the demo's source folder as
``nersemble_cube_demo/benchmark``; and what docs/dataset.md tells the reader to make first, a converted
full-dataset sample as ``dataset.zarr`` (checked below: the page says so).
"""

import ast
import contextlib
import io
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]  # the order a reader goes through them
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(line number, code) of every fenced Python block of ``path``."""
    text = path.read_text()
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in BLOCK.finditer(text)]


def test_the_docs_have_python_blocks():
    counts = {p.name: len(python_blocks(p)) for p in DOCS}
    assert counts["README.md"] >= 4 and sum(counts.values()) >= 14, counts


@pytest.fixture(scope="module")
def folder(cube, sample_dir, dataset_conversion, tmp_path_factory):
    """The one folder every page runs in, and the home folder (``~``)."""
    root = tmp_path_factory.mktemp("docs")
    work, home = root / "work", root / "home"
    (work / "nersemble_cube_demo").mkdir(parents=True)
    home.mkdir()
    shutil.copytree(cube, work / "cube.zarr")
    (home / "nersemble.zarr").symlink_to(work / "cube.zarr")
    (work / "nersemble_cube_demo" / "benchmark").symlink_to(sample_dir)
    (work / "dataset.zarr").symlink_to(dataset_conversion[0])
    return work, home


def test_the_pictures_are_made_by_the_readmes_commands():
    """docs/pictures.sh regenerates docs/preview.png and docs/rig.png with exactly the README's commands."""
    script = (ROOT / "docs/pictures.sh").read_text()
    shown = re.findall(r"`(nersemble-cube preview cube\.zarr [^`]+)`", (ROOT / "README.md").read_text())
    assert len(shown) == 2 and all(f"\n{command}\n" in script for command in shown), shown
    from PIL import Image

    width, height = Image.open(ROOT / "docs/preview.png").size  # 13 cameras x 4 frames, the default --n-frames
    assert width / height == pytest.approx(13 * 1.7 * 1100 / 1604 / (4 * 1.7 + 0.4), rel=0.02)


def test_every_test_the_docs_cite_exists():
    """A test named in README.md or docs/ (as `test_...`) is defined in tests/: a claim never rests on a test
    that was renamed or removed."""
    defined = {m for path in (ROOT / "tests").rglob("test_*.py")
               for m in re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), flags=re.MULTILINE)}
    cited = {name for doc in DOCS for name in re.findall(r"\b(test_\w+_\w+_\w+)\b", doc.read_text())  # 3+ words:
             if not name.endswith("_py")}  # not a key such as nerfstudio's test_filenames
    files = {p.stem for p in (ROOT / "tests").rglob("test_*.py")}
    assert cited - defined - files == set()


def test_the_pages_say_how_to_make_what_their_snippets_read():
    assert "run as written in a folder holding your cube as\n`cube.zarr`" in (ROOT / "README.md").read_text()
    assert "nersemble-cube convert nersemble_cube_demo/dataset dataset.zarr" in (ROOT / "docs/dataset.md").read_text()


DTYPES = ("uint8", "float32", "float64")
SHAPE = re.compile(r"^\((?P<dims>[\w ,]+)\)")


def stated_results(code: str) -> list[tuple[int, str, str]]:
    """``(line, what, comment)`` for every line of ``code`` whose comment states a result this test can check:
    an assignment (``what`` is the first name assigned) or a bare expression (``what`` is its source) whose
    comment opens with a shape ``(dims)``, a dtype or a type name; and ``print(...)`` whose comment is what it
    prints (``what`` is ``"print"``)."""
    tree = ast.parse(code)
    lines = code.splitlines()
    out = []
    for node in tree.body:
        if node.lineno != node.end_lineno or "#" not in lines[node.lineno - 1]:
            continue
        comment = lines[node.lineno - 1].split("#", 1)[1].strip()
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and ast.unparse(node.value.func) == "print":
            out.append((node.lineno, "print", comment))
        elif SHAPE.match(comment) or comment.split(" ")[0].rstrip(",;:") in (*DTYPES, "xarray.DataTree"):
            if isinstance(node, ast.Assign):
                target = node.targets[0]
                out.append((node.lineno, ast.unparse(target.elts[0] if isinstance(target, ast.Tuple) else target),
                            comment))
            elif isinstance(node, ast.Expr):
                out.append((node.lineno, ast.unparse(node.value), comment))
    return out


def check_stated(value, comment: str) -> None:
    """``value`` is what ``comment`` says: the dims (names for a labelled array, the named ones only counted
    for a plain array) and sizes of a leading ``(dims)``, the dtype named, ``in [0, 1]``, ``xarray.DataTree``.
    A Dataset's frames (``images``) are what a dtype is stated of."""
    import numpy as np
    import xarray as xr

    if isinstance(value, xr.Dataset) and not comment.startswith("xarray"):
        value = value.images

    shape = SHAPE.match(comment)
    if shape:
        dims = [d.strip() for d in shape["dims"].split(",")]
        assert len(dims) == value.ndim, (dims, value.shape)
        for i, dim in enumerate(dims):
            if dim.isdigit():
                assert value.shape[i] == int(dim), (dims, value.shape)
            elif isinstance(value, xr.DataArray):
                assert value.dims[i] == dim, (dims, value.dims)
    words = re.findall(r"[\w.]+", comment)
    for dtype in DTYPES:
        if dtype in words[:len(dims) + 2 if shape else 1]:
            assert value.dtype == np.dtype(dtype), (comment, value.dtype)
    if "in [0, 1]" in comment:
        assert 0 <= float(np.min(value)) and float(np.max(value)) <= 1
    if comment.startswith("xarray.DataTree"):
        assert isinstance(value, xr.DataTree)


def test_the_stated_results_parser_finds_what_the_readme_states():
    code = "\n".join(code for _, code in python_blocks(ROOT / "README.md"))
    found = {(what, comment.split(",")[0]) for _, what, comment in stated_results(code)}
    assert {("frame", "(y"), ("svfr", "(512"), ("image", "float64 in [0"), ("points", "float32"),
            ("tree", "xarray.DataTree"), ("print", "VALID: nvs_submission.zip as a nvs submission (3 entries checked)")} <= found


@pytest.mark.parametrize("doc", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.name)
def test_every_python_block_runs_and_gives_what_its_comments_state(doc, folder, monkeypatch):
    """Each block runs; a value whose comment states its shape, dims, dtype or type has them, and a print
    prints what its comment shows."""
    work, home = folder
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    namespace = {"__name__": "__main__"}
    for line, code in python_blocks(doc):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, f"{doc.relative_to(ROOT)}:{line}", "exec"), namespace)  # noqa: S102 - our own docs
        for offset, what, comment in stated_results(code):
            where = f"{doc.name}:{line + offset - 1}"
            if what == "print":
                assert comment in printed.getvalue().splitlines(), (where, printed.getvalue())
            else:
                value = namespace[what] if what.isidentifier() else eval(what, namespace)  # noqa: S307
                try:
                    check_stated(value, comment)
                except AssertionError as error:
                    raise AssertionError(f"{where}: `# {comment}` does not hold: {error}") from None
