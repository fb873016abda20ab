"""Conversion of a download folder into a cube.

- :mod:`.plan`: source -> what to write (every file probed and checked first)
- :mod:`.estimate`: the bytes it will take, and whether the disk has room
- :mod:`.nodes`: one builder per node kind (metadata, and the tasks that fill its arrays)
- :mod:`.tasks`: the units of work, picklable, each writing whole shards and then its completion flags
- :mod:`.run`: :func:`convert`: lock, build, run the tasks (threads or dask.distributed), mark nodes complete
- :mod:`.verify`: re-read a random sample of a cube and compare it with the source

The package is named ``conversion`` so that ``nersemble_cube.convert`` stays the function.
"""

from .run import ConversionReport, convert

__all__ = ["ConversionReport", "convert"]
