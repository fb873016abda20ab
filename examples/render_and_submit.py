"""Recipe: render the hold-out views into a prediction template, export the submission zip, validate it.

    python examples/render_and_submit.py [WORKDIR]

The "renderer" here is the sample's own ray tracer (it knows the synthetic head), standing in for
your avatar: it gets each camera's calibration from the template, exactly as yours would.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

import nersemble_cube
from nersemble_cube.source.sample import render

work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
bench = nersemble_cube.write_sample(work / "benchmark", benchmarks=("mono_flame_avatar",),
                                    mono_sequences=("EXP-1-head",), n_frames=2)
nersemble_cube.convert(bench, work / "cube.zarr")

template = nersemble_cube.prediction_template(work / "cube.zarr", "mono_flame_avatar", store=work / "pred.zarr")
for node in template.subtree:
    if "images" not in node.dataset:
        continue
    ds = node.to_dataset()
    for serial in ds.camera.values:
        K, E = ds.intrinsics.sel(camera=serial).values, ds.world_2_cam.sel(camera=serial).values
        frames = np.stack([render(E, K, 512, 512, t, ds.attrs["fps"], np.random.default_rng(t))[0]
                           for t in range(ds.sizes["time"])])
        nersemble_cube.write_frames(work / "pred.zarr", ds.attrs["participant_id"], ds.attrs["sequence"], str(serial),
                                    frames)

# the sample has one of the five participants, so this submission is partial on purpose
report = nersemble_cube.export_submission(work / "pred.zarr", work / "submission.zip", "mono_flame_avatar", partial=True)
check = nersemble_cube.validate_submission(work / "submission.zip", "mono_flame_avatar", cube=work / "cube.zarr")
print(f"{len(report.entries)} videos exported; missing files: {len(check.issues.get('missing_files', []))}; "
      f"other issues: {sorted(k for k in check.issues if k != 'missing_files')}")
