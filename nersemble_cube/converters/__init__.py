"""Converters: one module per source format, each mapping files onto numpy arrays and attrs.

A converter knows its format and nothing else: not the store, the CLI or progress bars.

- :mod:`.video`: H.264 mp4 -> ``(time, y, x, channel)`` uint8 RGB frames (images and alpha mattes)
- :mod:`.files`: where source files are (local or any fsspec URL), local copies for ffmpeg
- :mod:`.calibration`: ``camera_params.json`` -> world_2_cam ``(camera, 4, 4)`` and intrinsics ``(camera, 3, 3)``
"""
