"""The package's folders are its layers (docs/architecture.md): every room is placed in the layer table,
and no module imports a layer below its own."""

import ast
import re
from pathlib import Path

import nersemble_cube

PACKAGE = Path(nersemble_cube.__file__).parent
DOC = Path(__file__).parent.parent / "docs" / "architecture.md"


def layer_table() -> dict[str, int]:
    """room (``source``, ``accessor``...) -> layer number, from the doc's table of layers."""
    section = DOC.read_text().split("## Layers")[1].split("\n## ")[0]
    table = {}
    for line in section.splitlines():
        row = re.match(r"\| (\d+) \| ([^|]+) \|", line)
        if row:
            for room in re.findall(r"`([\w/]+)`", row.group(2)):
                table[room.rstrip("/")] = int(row.group(1))
    return table


def room(module: str) -> str:
    """The room of a module path relative to the package: ``source.converters.video`` -> ``source``,
    ``accessor`` -> ``accessor``, the package itself (``""``) -> ``__init__``."""
    return module.split(".")[0] or "__init__"


def modules() -> dict[str, Path]:
    """Dotted module path relative to the package (``cube.store``; ``""`` for ``__init__``) -> file."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules of the package that ``module`` imports (relative or absolute, at top level or in functions)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "nersemble_cube":
                target = node.module.partition(".")[2]
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}".lstrip(".")
                targets.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            targets |= {a.name.partition(".")[2] for a in node.names if a.name.split(".")[0] == "nersemble_cube"}
    return targets


def test_every_room_of_the_package_has_a_layer():
    table = layer_table()
    rooms = {room(m) for m in modules()}
    assert rooms == set(table), f"placed in docs/architecture.md but absent: {set(table) - rooms}; " \
                                f"not placed: {rooms - set(table)}"
    assert table["source"] < table["cube"] < table["conversion"] < table["accessor"] < table["submission"] \
        < table["training"] < table["cli"]


def test_no_module_imports_a_layer_below_its_own():
    table, known = layer_table(), modules()
    wrong = []
    for module, path in known.items():
        for target in imported(module, path, known):
            if table[room(target)] > table[room(module)]:
                wrong.append(f"{module or '__init__'} (layer {table[room(module)]}) imports {target or '__init__'} "
                             f"(layer {table[room(target)]})")
    assert not wrong, "\n".join(wrong)


def test_the_import_checker_sees_relative_imports():
    """The checker itself: the conversion nodes import the cube's store and the source layout."""
    known = modules()
    found = imported("conversion.nodes", known["conversion.nodes"], known)
    assert {"cube.store", "cube.schema", "source.layout", "cluster", "conversion.tasks"} <= found
    assert imported("training.nerf", known["training.nerf"], known) >= {"accessor", "cube.access"}


def test_reading_a_lossless_cube_imports_no_codec_library(cube):
    """PyAV and imagecodecs are imported where a codec that needs them encodes or decodes: opening and reading a
    zstd cube (xarray with and without dask, FrameReader, FrameDataset) loads neither, so a machine that only
    reads such cubes (a GPU node given a few wheels) needs neither; nor torch, nor the GPU path (nvCOMP)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "import nersemble_cube as nc\n"
        f"cube = {str(cube)!r}\n"
        "seq = 'nvs/388/sequences/GLASSES'\n"
        "nc.open(cube)[seq].images[0, 0].values, nc.open(cube, dask=False)[seq].alpha[0, 1].values\n"
        "nc.FrameReader(cube, seq).read('222200042', 2), nc.FrameDataset(cube, [seq], scale=2)[3]\n"
        "print(sorted(m for m in ('av', 'imagecodecs', 'imageio_ffmpeg', 'torch', 'nvidia', 'nersemble_cube.training.gpu',\n"
        "             'nersemble_cube.training.nvcomp_crc')\n"
        "             if m in sys.modules))\n")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert (res.returncode, res.stdout.strip()) == (0, "[]"), res.stderr
