from pathlib import Path

import pytest

from nersemble_cube.source import layout
from nersemble_cube.errors import SourceError
from wheels import TOOLKIT, no_deps


def test_constants_match_the_official_toolkit():
    constants = no_deps(TOOLKIT, "nersemble_benchmark.constants")
    assert list(layout.SERIALS) == constants.SERIALS
    assert list(layout.NVS_IDS_AND_SEQUENCES) == constants.BENCHMARK_NVS_IDS_AND_SEQUENCES
    assert list(layout.NVS_HOLD_OUT_SERIALS) == constants.BENCHMARK_NVS_HOLD_OUT_SERIALS
    assert list(layout.NVS_TRAIN_SERIALS) == constants.BENCHMARK_NVS_TRAIN_SERIALS
    assert list(layout.MONO_IDS) == constants.BENCHMARK_MONO_FLAME_AVATAR_IDS
    assert list(layout.MONO_SEQUENCES_TRAIN) == constants.BENCHMARK_MONO_FLAME_AVATAR_SEQUENCES_TRAIN
    assert list(layout.MONO_SEQUENCES_TEST) == constants.BENCHMARK_MONO_FLAME_AVATAR_SEQUENCES_TEST
    assert layout.MONO_TRAIN_SERIAL == constants.BENCHMARK_MONO_FLAME_AVATAR_TRAIN_SERIAL
    assert list(layout.MONO_HOLD_OUT_SERIALS) == constants.BENCHMARK_MONO_FLAME_AVATAR_HOLD_OUT_SERIALS
    assert {p: [tuple(k) for k in keys] for p, keys in layout.SVFR_IMAGE_KEYS.items()} == \
        constants.BENCHMARK_SVFR_IMAGE_KEYS
    assert sum(map(len, layout.SVFR_IMAGE_KEYS.values())) == 391
    assets = constants.ASSETS
    for benchmark in ("nvs", "mono_flame_avatar"):
        assert assets[benchmark]["per_person"]["calibration"] == layout.CALIBRATION
        # the toolkit writes "{seq_name:}" / "{serial:}": same format, empty format spec
        assert assets[benchmark]["per_cam"]["images"].replace(":}", "}") == layout.IMAGES
        assert assets[benchmark]["per_cam"]["alpha_maps"].replace(":}", "}") == layout.ALPHA_MAPS
    assert assets["nvs"]["per_timestep"]["pointclouds"].replace(":}", "}") == layout.POINTCLOUDS
    for version, key in constants.FLAME_TRACKING_VERSION_MAPPING.items():
        assert assets["mono_flame_avatar"]["per_sequence"][key].replace(":}", "}") == layout.FLAME_TRACKING[version]
    assert assets["svfr"]["per_image"]["images"].replace(":}", "}") == layout.SVFR_IMAGE


def test_camera_roles():
    assert [layout.camera_role("nvs", s) for s in layout.NVS_HOLD_OUT_SERIALS] == ["hold_out"] * 3
    assert layout.camera_role("nvs", "222200042") == "train"
    assert layout.camera_role("mono_flame_avatar", "222200037") == "train"
    assert layout.camera_role("mono_flame_avatar", "220700191") == "hold_out"
    assert layout.camera_role("mono_flame_avatar", "222200042") == "unused"


def test_discover_finds_everything_in_the_sample(sample_dir):
    found = layout.discover(sample_dir).participants
    summary = [(p.benchmark, p.participant_id, [(s.sequence, s.serials) for s in p.sequences]) for p in found]
    nvs_serials = list(layout.NVS_TRAIN_SERIALS[:3])
    hold_out = sorted(layout.MONO_SEQUENCES_TEST)
    assert summary == [
        ("nvs", 388, [("GLASSES", sorted(nvs_serials))]),
        ("mono_flame_avatar", 393, sorted([("EXP-1-head", ["222200037"]), ("EXP-2-eyes", ["222200037"])]
                                          + [(s, []) for s in hold_out])),
    ]
    seq = found[0].sequences[0]
    assert list(seq.pointclouds) == [0, 3]
    assert seq.pointclouds[3] == sample_dir / "nvs/388/sequences/GLASSES/pointclouds/frame_00003.pcd"
    mono = {s.sequence: s for s in found[1].sequences}
    assert mono["EXP-1-head"].tracking == {
        1: sample_dir / "mono_flame_avatar/393/sequences/EXP-1-head/tracking/flame2023_tracking.npz",
        2: sample_dir / "mono_flame_avatar/393/sequences/EXP-1-head/tracking/flame2023_tracking_v2.npz"}
    assert list(mono["FREE"].tracking) == [2] and mono["FREE"].images == {}
    assert seq.images["222200042"] == sample_dir / "nvs/388/sequences/GLASSES/images/cam_222200042.mp4"
    assert seq.alpha_maps["222200042"] == sample_dir / "nvs/388/sequences/GLASSES/alpha_maps/cam_222200042.mp4"
    assert found[0].calibration == sample_dir / "nvs/388/calibration/camera_params.json"


def test_discover_filters(sample_dir):
    found = layout.discover(sample_dir, benchmarks=["mono_flame_avatar"], sequences=["EXP-2-eyes"]).participants
    assert [(p.participant_id, [s.sequence for s in p.sequences]) for p in found] == [(393, ["EXP-2-eyes"])]
    svfr = layout.discover(sample_dir, benchmarks=["svfr"]).svfr
    assert [(i.participant_id, i.sequence, i.timestep, i.serial, i.key) for i in svfr] == [
        (17, "EMO-1-shout+laugh", 156, "221501007", "EMO-1-shout+laugh_156_221501007"),
        (17, "EMO-1-shout+laugh", 180, "222200048", "EMO-1-shout+laugh_180_222200048"),
        (17, "EMO-1-shout+laugh", 339, "222200039", "EMO-1-shout+laugh_339_222200039"),
    ]
    assert svfr[0].path == sample_dir / "svfr/017/EMO-1-shout+laugh_156_221501007/rgb.png"
    with pytest.raises(SourceError, match="no data found"):
        layout.discover(sample_dir, participants=[999])
    with pytest.raises(SourceError, match="unknown benchmark 'foo'"):
        layout.discover(sample_dir, benchmarks=["foo"])


def test_sequences_with_tracking_only_are_found_and_empty_ones_skipped(tmp_path):
    # the mono hold-out sequences come with FLAME tracking only
    (tmp_path / "mono_flame_avatar/393/sequences/FREE/tracking").mkdir(parents=True)
    (tmp_path / "mono_flame_avatar/393/sequences/FREE/tracking/flame2023_tracking_v2.npz").write_bytes(b"")
    (tmp_path / "mono_flame_avatar/393/sequences/EMPTY/tracking").mkdir(parents=True)
    (tmp_path / "mono_flame_avatar/393/sequences/EXP-1-head/images").mkdir(parents=True)
    (tmp_path / "mono_flame_avatar/393/sequences/EXP-1-head/images/cam_222200037.mp4").write_bytes(b"")
    found = layout.discover(tmp_path).participants
    assert [(s.sequence, s.serials, list(s.tracking)) for s in found[0].sequences] == [
        ("EXP-1-head", ["222200037"], []), ("FREE", [], [2])]


@pytest.mark.parametrize("make, message", [
    (lambda root: root / "missing", "no such folder"),
    (lambda root: root, "not a NeRSemble download folder"),
    (lambda root: (root / "nvs").mkdir() or root / "nvs", "pass its parent"),
])
def test_discover_refuses_what_is_no_benchmark_folder(tmp_path, make, message):
    with pytest.raises(SourceError, match=message):
        layout.discover(make(tmp_path))


def test_alpha_for_other_cameras_than_images_is_an_error(tmp_path):
    seq = tmp_path / "nvs/388/sequences/GLASSES"
    for sub, serial in [("images", "222200042"), ("images", "222200044"), ("alpha_maps", "222200042")]:
        (seq / sub).mkdir(parents=True, exist_ok=True)
        (seq / sub / f"cam_{serial}.mp4").write_bytes(b"")
    with pytest.raises(SourceError, match=r"images only: \['222200044'\]"):
        layout.discover(Path(tmp_path))


def test_svfr_keys_keep_both_spellings(tmp_path):
    # the download folder does not pad the timestep, submission paths pad it to 3 digits
    (tmp_path / "svfr/017/EXP-4-lips_6_221501007").mkdir(parents=True)
    (tmp_path / "svfr/017/EXP-4-lips_6_221501007/rgb.png").write_bytes(b"")
    (image,) = layout.discover(tmp_path).svfr
    assert (image.sequence, image.timestep, image.serial, image.key) == ("EXP-4-lips", 6, "221501007",
                                                                         "EXP-4-lips_006_221501007")
