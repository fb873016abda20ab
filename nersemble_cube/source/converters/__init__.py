"""Converters: one module per source format, each mapping files onto numpy arrays and attrs.

A converter knows its format and nothing else: not the store, the CLI or progress bars.

- :mod:`.video`: H.264 mp4 -> ``(time, y, x, channel)`` uint8 RGB frames (images and alpha mattes)
- :mod:`.image`: png, jpg -> ``(y, x, channel)`` uint8 RGB (SVFR input images, background stills)
- :mod:`.calibration`: ``camera_params.json`` -> world_2_cam ``(camera, 4, 4)`` and intrinsics ``(camera, 3, 3)``
- :mod:`.color`: ``color_calibration.json`` -> ``(camera, 3, terms)``, and the colour correction it defines
- :mod:`.pcd`: open3d-dialect ``.pcd`` -> positions, normals ``(n, 3)`` float32, colours ``(n, 3)`` uint8
- :mod:`.flame`: FLAME tracking npz -> :class:`~.flame.FlameTracking`
"""
