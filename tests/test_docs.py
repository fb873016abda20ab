"""Every Python block of README.md and docs/*.md, run as a user pastes them: README first, then each page
in order, all in ONE folder (what one page writes is there for the next: names must not collide).

The blocks of one document run in order in one namespace (later blocks use what earlier ones made). The
folder holds what README.md says the snippets assume: the demo cube as ``cube.zarr`` and
``~/nersemble.zarr`` (a copy: some blocks write to it), the demo's source folder as
``nersemble_cube_demo/benchmark``; and what docs/dataset.md tells the reader to make first, a converted
full-dataset sample as ``dataset.zarr`` (checked below: the page says so).
"""

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


@pytest.mark.parametrize("doc", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.name)
def test_every_python_block_runs(doc, folder, monkeypatch):
    work, home = folder
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    namespace = {"__name__": "__main__"}
    for line, code in python_blocks(doc):
        exec(compile(code, f"{doc.relative_to(ROOT)}:{line}", "exec"), namespace)  # noqa: S102 - our own docs
