"""Prediction cubes -> benchmark submission zips, around one statement of what a submission is.

- :mod:`.rules`: what a submission of each benchmark holds (videos, cameras, paths, frame sizes, meshes)
- :mod:`.template`: prediction templates to fill (``prediction_template``, ``write_frames``)
- :mod:`.export`: predictions -> the submission zip
- :mod:`.validate`: offline validation of a submission zip
"""
