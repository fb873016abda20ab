"""What a download folder is: its layout, one converter per file format, discovery and probing.

- :mod:`.layout`: where ``nersemble-benchmark-download`` puts every file (paths, serials, participants,
  sequences; the SVFR image table as package data) and :func:`~.layout.discover`
- :mod:`.dataset`: the same for ``nersemble-data download`` (the full dataset); :mod:`.metadata` its tables
- :mod:`.files`: source files local or behind fsspec, local copies for ffmpeg
- :mod:`.converters`: one module per file format (mp4, png, json, pcd, npz)
- :mod:`.probe`: every file opened far enough to know its size and consistency, before anything is written
- :mod:`.sample`, :mod:`.dataset_sample`: the synthetic sample download folders, laid out exactly like real ones

Nothing here knows the cube: this package reads downloads (and writes the sample), nothing else.
"""
