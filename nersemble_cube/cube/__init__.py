"""What a cube is: its schema, where it lives, how frames are stored, and reading it.

- :mod:`.schema`: group paths, dims, attrs, the xarray templates of each node (docs/schema.md)
- :mod:`.storage`: named, typed storage settings (codec presets, chunks, shards); :mod:`.codecs`: one module
  per zarr codec of ours
- :mod:`.location`: a local path or fsspec URL with its options; :mod:`.store`: recognising a cube, node
  metadata, completion markers and flags, consolidation; :mod:`.lock`: the writer's lock
- :mod:`.integrity`: every chunk read through its checksum, damage named and marked for re-conversion
- :mod:`.scales`: reduced-resolution levels (area average, intrinsics)
- :mod:`.access`: ``open``, ``load_pointcloud``, ``flame_tracking``; :mod:`.frames`: ``read_frame``, ``FrameReader``; :mod:`.summary`: ``info``
"""
