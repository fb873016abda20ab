"""The layout of a benchmark folder written by ``nersemble-benchmark-download``.

Everything about where the official downloader puts files lives here, copied to the letter
from the toolkit (``nersemble_benchmark.constants.ASSETS`` and ``scripts/download_data.py``,
version 0.2.0): path templates, camera serials, benchmark participants and sequences, and
:func:`discover`, which finds what a (possibly partial) download holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .converters.files import SourcePath, as_path
from .errors import SourceError

BENCHMARKS = ("nvs", "mono_flame_avatar", "svfr")
VIDEO_BENCHMARKS = ("nvs", "mono_flame_avatar")

# Path templates relative to ``{benchmark_folder}/{benchmark}``, as in the toolkit's ASSETS.
CALIBRATION = "{p_id:03d}/calibration/camera_params.json"
IMAGES = "{p_id:03d}/sequences/{seq_name}/images/cam_{serial}.mp4"
ALPHA_MAPS = "{p_id:03d}/sequences/{seq_name}/alpha_maps/cam_{serial}.mp4"
POINTCLOUDS = "{p_id:03d}/sequences/{seq_name}/pointclouds/frame_{timestep:05d}.pcd"
FLAME_TRACKING = {
    1: "{p_id:03d}/sequences/{seq_name}/tracking/flame2023_tracking.npz",
    2: "{p_id:03d}/sequences/{seq_name}/tracking/flame2023_tracking_v2.npz",
}
SVFR_IMAGE = "{p_id:03d}/{seq_name}_{timestep}_{serial}/rgb.png"

SERIALS = (
    "222200042", "222200044", "222200046", "222200040", "222200036", "222200048", "220700191", "222200041",
    "222200037", "222200038", "222200047", "222200043", "222200049", "222200039", "222200045", "221501007",
)

NVS_IDS_AND_SEQUENCES = ((388, "GLASSES"), (422, "EXP-2-eyes"), (443, "FREE"), (445, "EXP-6-tongue-1"), (475, "HAIR"))
NVS_HOLD_OUT_SERIALS = ("222200046", "222200037", "222200039")
NVS_TRAIN_SERIALS = tuple(s for s in SERIALS if s not in NVS_HOLD_OUT_SERIALS)
NVS_FPS = 73.0
NVS_SIZE = (1604, 1100)  # (height, width) in pixels

MONO_IDS = (393, 404, 461, 477, 486)
MONO_SEQUENCES_TRAIN = (
    "EXP-1-head", "EXP-2-eyes", "EXP-3-cheeks+nose", "EXP-4-lips", "EXP-5-mouth", "EXP-8-jaw-1", "EXP-9-jaw-2",
    "EMO-2-surprise+fear", "EMO-3-angry+sad", "EMO-4-disgust+happy",
    "SEN-01-cramp_small_danger", "SEN-02-same_phrase_thirty_times", "SEN-03-pluck_bright_rose",
    "SEN-04-two_plus_seven", "SEN-05-glow_eyes_sweet_girl", "SEN-06-problems_wise_chief",
    "SEN-07-fond_note_fried", "SEN-08-clothes_and_lodging",
)
MONO_SEQUENCES_TEST = ("FREE", "EMO-1-shout+laugh", "SEN-09-frown_events_bad", "SEN-10-port_strong_smokey")
MONO_TRAIN_SERIAL = "222200037"
MONO_HOLD_OUT_SERIALS = ("222200046", "220700191", "222200039")
MONO_FPS = 24.3
MONO_SIZE = (512, 512)

# The 391 SVFR input images: participant -> (sequence, timestep, serial), as in the toolkit's constants.
SVFR_IMAGE_KEYS: dict[int, list[tuple[str, int, str]]] = {
    17: [
        ('EMO-1-shout+laugh', 156, '221501007'),
        ('EMO-1-shout+laugh', 180, '222200048'),
        ('EMO-1-shout+laugh', 339, '222200039'),
        ('EMO-2-surprise+fear', 219, '220700191'),
        ('EMO-3-angry+sad', 153, '222200042'),
        ('EXP-1-head', 429, '222200040'),
        ('EXP-3-cheeks+nose', 345, '222200043'),
        ('EXP-3-cheeks+nose', 78, '222200045'),
        ('EXP-4-lips', 423, '222200036'),
        ('EXP-4-lips', 6, '221501007'),
        ('EXP-5-mouth', 360, '222200036'),
        ('EXP-5-mouth', 429, '222200039'),
        ('EXP-5-mouth', 6, '222200049'),
        ('EXP-8-jaw-1', 489, '222200041'),
        ('FREE', 336, '222200046'),
        ('FREE', 354, '222200047'),
        ('FREE', 453, '222200037'),
        ('FREE', 582, '222200040'),
        ('FREE', 609, '222200044'),
        ('FREE', 786, '222200038'),
    ],
    60: [
        ('EMO-1-shout+laugh', 0, '222200041'),
        ('EMO-1-shout+laugh', 12, '222200042'),
        ('EMO-1-shout+laugh', 177, '222200049'),
        ('EMO-1-shout+laugh', 186, '220700191'),
        ('EMO-1-shout+laugh', 21, '222200037'),
        ('EMO-1-shout+laugh', 243, '222200036'),
        ('EMO-1-shout+laugh', 27, '222200043'),
        ('EMO-1-shout+laugh', 30, '221501007'),
        ('EMO-1-shout+laugh', 33, '222200047'),
        ('EMO-1-shout+laugh', 3, '222200044'),
        ('EMO-1-shout+laugh', 51, '222200048'),
        ('EMO-1-shout+laugh', 60, '222200036'),
        ('EMO-1-shout+laugh', 75, '222200045'),
        ('EMO-1-shout+laugh', 84, '222200044'),
        ('EMO-1-shout+laugh', 87, '222200037'),
        ('SEN-10-port_strong_smokey', 162, '222200045'),
        ('SEN-10-port_strong_smokey', 177, '222200038'),
        ('SEN-10-port_strong_smokey', 186, '222200040'),
        ('SEN-10-port_strong_smokey', 198, '222200039'),
        ('SEN-10-port_strong_smokey', 9, '222200046'),
    ],
    71: [
        ('EMO-1-shout+laugh', 0, '222200046'),
        ('EMO-1-shout+laugh', 102, '222200040'),
        ('EMO-1-shout+laugh', 120, '220700191'),
        ('EMO-1-shout+laugh', 147, '222200041'),
        ('EMO-1-shout+laugh', 153, '222200047'),
        ('EMO-1-shout+laugh', 156, '222200048'),
        ('EMO-1-shout+laugh', 174, '222200044'),
        ('EMO-1-shout+laugh', 183, '222200048'),
        ('EMO-1-shout+laugh', 186, '222200036'),
        ('EMO-1-shout+laugh', 195, '222200045'),
        ('EMO-1-shout+laugh', 213, '221501007'),
        ('EMO-1-shout+laugh', 228, '222200049'),
        ('EMO-1-shout+laugh', 234, '222200047'),
        ('EMO-1-shout+laugh', 237, '222200037'),
        ('EMO-1-shout+laugh', 240, '222200038'),
        ('EMO-1-shout+laugh', 27, '222200042'),
        ('EMO-1-shout+laugh', 36, '222200039'),
        ('EMO-1-shout+laugh', 42, '222200037'),
        ('EMO-1-shout+laugh', 48, '222200043'),
        ('EMO-1-shout+laugh', 90, '222200044'),
    ],
    102: [
        ('EMO-1-shout+laugh', 0, '222200048'),
        ('EMO-1-shout+laugh', 117, '222200041'),
        ('EMO-1-shout+laugh', 123, '221501007'),
        ('EMO-1-shout+laugh', 126, '220700191'),
        ('EMO-1-shout+laugh', 129, '222200044'),
        ('EMO-1-shout+laugh', 132, '222200043'),
        ('EMO-1-shout+laugh', 135, '222200046'),
        ('EMO-1-shout+laugh', 141, '222200036'),
        ('EMO-1-shout+laugh', 147, '222200047'),
        ('EMO-1-shout+laugh', 153, '222200044'),
        ('EMO-1-shout+laugh', 3, '222200037'),
        ('EMO-1-shout+laugh', 75, '222200039'),
        ('EMO-1-shout+laugh', 81, '222200045'),
        ('EMO-1-shout+laugh', 84, '222200037'),
        ('EMO-1-shout+laugh', 90, '222200040'),
        ('EMO-1-shout+laugh', 96, '222200049'),
        ('SEN-10-port_strong_smokey', 102, '222200042'),
        ('SEN-10-port_strong_smokey', 135, '222200038'),
        ('SEN-10-port_strong_smokey', 36, '222200040'),
        ('SEN-10-port_strong_smokey', 78, '220700191'),
    ],
    112: [
        ('EMO-3-angry+sad', 0, '222200043'),
        ('EMO-3-angry+sad', 105, '221501007'),
        ('EMO-3-angry+sad', 183, '222200039'),
        ('EMO-3-angry+sad', 219, '222200047'),
        ('EMO-3-angry+sad', 243, '222200036'),
        ('EMO-3-angry+sad', 255, '222200049'),
        ('EMO-3-angry+sad', 264, '222200042'),
        ('EMO-3-angry+sad', 48, '222200047'),
        ('EMO-3-angry+sad', 81, '222200042'),
        ('EMO-3-angry+sad', 96, '222200040'),
        ('EXP-5-mouth', 183, '222200048'),
        ('EXP-5-mouth', 33, '222200045'),
        ('EXP-5-mouth', 354, '222200041'),
        ('EXP-5-mouth', 378, '222200041'),
        ('EXP-5-mouth', 501, '222200037'),
        ('EXP-5-mouth', 54, '222200038'),
        ('SEN-06-problems_wise_chief', 0, '222200046'),
        ('SEN-06-problems_wise_chief', 39, '222200045'),
        ('SEN-08-clothes_and_lodging', 129, '220700191'),
        ('SEN-08-clothes_and_lodging', 177, '222200044'),
    ],
    123: [
        ('EMO-3-angry+sad', 0, '222200044'),
        ('EMO-3-angry+sad', 126, '222200046'),
        ('EMO-3-angry+sad', 129, '222200045'),
        ('EMO-3-angry+sad', 135, '222200042'),
        ('EMO-3-angry+sad', 237, '222200041'),
        ('EMO-3-angry+sad', 303, '221501007'),
        ('EMO-3-angry+sad', 54, '222200040'),
        ('EMO-3-angry+sad', 75, '222200038'),
        ('EMO-3-angry+sad', 84, '222200039'),
        ('EXP-1-head', 105, '222200038'),
        ('EXP-1-head', 150, '222200047'),
        ('EXP-1-head', 201, '222200042'),
        ('EXP-1-head', 333, '222200036'),
        ('EXP-1-head', 393, '222200045'),
        ('EXP-1-head', 408, '222200039'),
        ('EXP-1-head', 474, '222200037'),
        ('SEN-04-two_plus_seven', 153, '222200043'),
        ('SEN-04-two_plus_seven', 198, '222200048'),
        ('SEN-05-glow_eyes_sweet_girl', 261, '222200049'),
        ('SEN-05-glow_eyes_sweet_girl', 60, '220700191'),
    ],
    133: [
        ('EMO-4-disgust+happy', 0, '222200038'),
        ('EMO-4-disgust+happy', 117, '222200037'),
        ('EMO-4-disgust+happy', 135, '222200036'),
        ('EMO-4-disgust+happy', 210, '222200045'),
        ('EMO-4-disgust+happy', 237, '222200048'),
        ('EMO-4-disgust+happy', 258, '222200049'),
        ('EMO-4-disgust+happy', 321, '222200043'),
        ('EMO-4-disgust+happy', 336, '222200039'),
        ('EMO-4-disgust+happy', 345, '222200040'),
        ('EMO-4-disgust+happy', 360, '222200041'),
        ('EMO-4-disgust+happy', 414, '222200041'),
        ('EMO-4-disgust+happy', 486, '222200037'),
        ('EMO-4-disgust+happy', 504, '222200047'),
        ('EMO-4-disgust+happy', 570, '222200049'),
        ('SEN-03-pluck_bright_rose', 0, '220700191'),
        ('SEN-03-pluck_bright_rose', 129, '222200042'),
        ('SEN-03-pluck_bright_rose', 153, '221501007'),
        ('SEN-03-pluck_bright_rose', 18, '222200044'),
        ('SEN-03-pluck_bright_rose', 246, '220700191'),
        ('SEN-03-pluck_bright_rose', 315, '222200046'),
    ],
    139: [
        ('EMO-3-angry+sad', 0, '222200044'),
        ('EMO-3-angry+sad', 123, '220700191'),
        ('EMO-3-angry+sad', 159, '222200046'),
        ('EMO-3-angry+sad', 201, '222200044'),
        ('EMO-3-angry+sad', 222, '221501007'),
        ('EMO-3-angry+sad', 39, '222200049'),
        ('EMO-3-angry+sad', 45, '222200039'),
        ('EMO-3-angry+sad', 51, '222200048'),
        ('EMO-3-angry+sad', 84, '222200036'),
        ('EMO-3-angry+sad', 9, '222200047'),
        ('EXP-3-cheeks+nose', 0, '222200040'),
        ('EXP-3-cheeks+nose', 177, '222200041'),
        ('EXP-3-cheeks+nose', 222, '222200036'),
        ('EXP-3-cheeks+nose', 258, '222200043'),
        ('EXP-3-cheeks+nose', 294, '222200045'),
        ('EXP-3-cheeks+nose', 63, '222200037'),
        ('SEN-09-frown_events_bad', 135, '222200042'),
        ('SEN-09-frown_events_bad', 186, '222200038'),
        ('SEN-09-frown_events_bad', 201, '222200045'),
        ('SEN-09-frown_events_bad', 30, '222200041'),
    ],
    175: [
        ('EMO-2-surprise+fear', 384, '222200043'),
        ('EMO-2-surprise+fear', 54, '222200037'),
        ('EMO-2-surprise+fear', 84, '222200039'),
        ('EMO-3-angry+sad', 306, '222200048'),
        ('EMO-4-disgust+happy', 255, '221501007'),
        ('EMO-4-disgust+happy', 321, '220700191'),
        ('EXP-2-eyes', 108, '222200040'),
        ('EXP-2-eyes', 426, '222200036'),
        ('EXP-2-eyes', 75, '222200047'),
        ('EXP-4-lips', 429, '222200049'),
        ('EXP-5-mouth', 153, '222200044'),
        ('EXP-8-jaw-1', 558, '222200045'),
        ('EXP-8-jaw-1', 582, '222200046'),
        ('EXP-8-jaw-1', 591, '222200044'),
        ('EXP-8-jaw-1', 69, '222200038'),
        ('EXP-9-jaw-2', 609, '222200042'),
        ('FREE', 195, '221501007'),
        ('FREE', 354, '222200047'),
        ('FREE', 729, '222200041'),
    ],
    178: [
        ('EMO-3-angry+sad', 0, '222200045'),
        ('EMO-3-angry+sad', 102, '222200038'),
        ('EMO-3-angry+sad', 126, '221501007'),
        ('EMO-3-angry+sad', 144, '222200036'),
        ('EMO-3-angry+sad', 171, '221501007'),
        ('EMO-3-angry+sad', 174, '222200048'),
        ('EMO-3-angry+sad', 189, '222200047'),
        ('EMO-3-angry+sad', 225, '222200049'),
        ('EMO-3-angry+sad', 246, '222200040'),
        ('EMO-3-angry+sad', 306, '222200039'),
        ('EMO-3-angry+sad', 318, '222200041'),
        ('EMO-3-angry+sad', 339, '220700191'),
        ('EMO-3-angry+sad', 342, '222200037'),
        ('EMO-3-angry+sad', 345, '222200042'),
        ('EMO-3-angry+sad', 378, '222200038'),
        ('EMO-3-angry+sad', 3, '222200046'),
        ('EMO-3-angry+sad', 57, '222200048'),
        ('EMO-3-angry+sad', 72, '222200043'),
        ('EMO-3-angry+sad', 81, '222200041'),
        ('EMO-3-angry+sad', 90, '222200045'),
    ],
    183: [
        ('EMO-4-disgust+happy', 123, '222200039'),
        ('EMO-4-disgust+happy', 12, '222200049'),
        ('EMO-4-disgust+happy', 153, '222200041'),
        ('EMO-4-disgust+happy', 177, '221501007'),
        ('EMO-4-disgust+happy', 18, '222200043'),
        ('EMO-4-disgust+happy', 222, '222200040'),
        ('EMO-4-disgust+happy', 240, '222200045'),
        ('EMO-4-disgust+happy', 273, '222200048'),
        ('EMO-4-disgust+happy', 312, '222200038'),
        ('EMO-4-disgust+happy', 324, '222200037'),
        ('EMO-4-disgust+happy', 336, '222200036'),
        ('EMO-4-disgust+happy', 393, '222200046'),
        ('EMO-4-disgust+happy', 39, '222200040'),
        ('EMO-4-disgust+happy', 408, '222200036'),
        ('EMO-4-disgust+happy', 459, '222200047'),
        ('EMO-4-disgust+happy', 99, '222200039'),
        ('SEN-10-port_strong_smokey', 102, '222200038'),
        ('SEN-10-port_strong_smokey', 126, '220700191'),
        ('SEN-10-port_strong_smokey', 138, '222200047'),
        ('SEN-10-port_strong_smokey', 198, '222200042'),
    ],
    194: [
        ('EMO-1-shout+laugh', 0, '222200040'),
        ('EMO-1-shout+laugh', 162, '222200043'),
        ('EMO-1-shout+laugh', 165, '222200049'),
        ('EMO-1-shout+laugh', 180, '222200046'),
        ('EMO-1-shout+laugh', 189, '222200042'),
        ('EMO-1-shout+laugh', 219, '222200047'),
        ('EMO-1-shout+laugh', 291, '222200041'),
        ('EMO-1-shout+laugh', 351, '222200048'),
        ('EMO-1-shout+laugh', 51, '222200036'),
        ('EMO-1-shout+laugh', 54, '221501007'),
        ('EMO-1-shout+laugh', 57, '222200037'),
        ('EMO-1-shout+laugh', 63, '222200038'),
        ('SEN-07-fond_note_fried', 162, '220700191'),
        ('SEN-07-fond_note_fried', 177, '222200049'),
        ('SEN-07-fond_note_fried', 186, '220700191'),
        ('SEN-07-fond_note_fried', 204, '222200044'),
        ('SEN-07-fond_note_fried', 210, '222200045'),
        ('SEN-07-fond_note_fried', 42, '222200042'),
        ('SEN-07-fond_note_fried', 54, '222200039'),
    ],
    215: [
        ('EMO-4-disgust+happy', 183, '221501007'),
        ('EMO-4-disgust+happy', 222, '222200037'),
        ('EMO-4-disgust+happy', 24, '222200048'),
        ('EMO-4-disgust+happy', 261, '222200047'),
        ('EMO-4-disgust+happy', 291, '222200042'),
        ('EMO-4-disgust+happy', 30, '222200040'),
        ('EMO-4-disgust+happy', 327, '222200043'),
        ('EMO-4-disgust+happy', 48, '222200036'),
        ('EMO-4-disgust+happy', 60, '222200038'),
        ('EMO-4-disgust+happy', 63, '222200041'),
        ('SEN-07-fond_note_fried', 174, '222200046'),
        ('SEN-07-fond_note_fried', 315, '222200041'),
        ('SEN-07-fond_note_fried', 51, '221501007'),
    ],
    226: [
        ('EMO-4-disgust+happy', 117, '222200036'),
        ('EMO-4-disgust+happy', 249, '220700191'),
        ('EMO-4-disgust+happy', 306, '222200045'),
        ('EMO-4-disgust+happy', 321, '222200039'),
        ('EXP-1-head', 117, '222200041'),
        ('EXP-1-head', 252, '222200043'),
        ('EXP-1-head', 279, '222200047'),
        ('EXP-1-head', 306, '222200040'),
        ('EXP-1-head', 321, '222200049'),
        ('EXP-1-head', 333, '222200042'),
        ('EXP-1-head', 408, '222200048'),
        ('EXP-1-head', 417, '222200038'),
        ('EXP-1-head', 48, '222200041'),
        ('EXP-1-head', 90, '222200037'),
        ('EXP-1-head', 99, '222200043'),
        ('SEN-03-pluck_bright_rose', 246, '222200047'),
        ('SEN-03-pluck_bright_rose', 252, '221501007'),
        ('SEN-03-pluck_bright_rose', 264, '220700191'),
        ('SEN-03-pluck_bright_rose', 303, '222200046'),
        ('SEN-03-pluck_bright_rose', 81, '222200048'),
    ],
    256: [
        ('EMO-2-surprise+fear', 189, '222200049'),
        ('EMO-2-surprise+fear', 198, '222200048'),
        ('EMO-2-surprise+fear', 210, '222200046'),
        ('EMO-2-surprise+fear', 237, '222200046'),
        ('EMO-2-surprise+fear', 246, '222200040'),
        ('EMO-2-surprise+fear', 282, '222200037'),
        ('EMO-2-surprise+fear', 381, '222200038'),
        ('EMO-2-surprise+fear', 87, '222200039'),
        ('EMO-2-surprise+fear', 96, '222200044'),
        ('EXP-3-cheeks+nose', 0, '221501007'),
        ('EXP-3-cheeks+nose', 114, '222200043'),
        ('EXP-3-cheeks+nose', 12, '222200038'),
        ('EXP-3-cheeks+nose', 144, '222200044'),
        ('EXP-3-cheeks+nose', 171, '222200045'),
        ('EXP-3-cheeks+nose', 216, '222200045'),
        ('EXP-3-cheeks+nose', 381, '222200036'),
        ('EXP-3-cheeks+nose', 402, '222200042'),
        ('EXP-3-cheeks+nose', 444, '222200047'),
        ('EXP-3-cheeks+nose', 90, '220700191'),
        ('SEN-09-frown_events_bad', 159, '222200041'),
    ],
    266: [
        ('EMO-1-shout+laugh', 0, '222200049'),
        ('EMO-1-shout+laugh', 114, '222200046'),
        ('EMO-1-shout+laugh', 144, '222200039'),
        ('EMO-1-shout+laugh', 171, '222200042'),
        ('EMO-1-shout+laugh', 192, '222200048'),
        ('EMO-1-shout+laugh', 204, '222200047'),
        ('EMO-1-shout+laugh', 210, '222200045'),
        ('EMO-1-shout+laugh', 219, '222200046'),
        ('EMO-1-shout+laugh', 225, '222200049'),
        ('EMO-1-shout+laugh', 234, '222200038'),
        ('EMO-1-shout+laugh', 333, '222200047'),
        ('EMO-1-shout+laugh', 78, '220700191'),
        ('EMO-1-shout+laugh', 87, '222200043'),
        ('EMO-1-shout+laugh', 90, '222200036'),
        ('SEN-10-port_strong_smokey', 171, '222200037'),
        ('SEN-10-port_strong_smokey', 186, '222200038'),
        ('SEN-10-port_strong_smokey', 198, '222200041'),
        ('SEN-10-port_strong_smokey', 219, '222200043'),
        ('SEN-10-port_strong_smokey', 258, '222200040'),
        ('SEN-10-port_strong_smokey', 54, '221501007'),
    ],
    289: [
        ('EMO-2-surprise+fear', 0, '222200040'),
        ('EMO-2-surprise+fear', 0, '222200048'),
        ('EMO-2-surprise+fear', 123, '221501007'),
        ('EMO-2-surprise+fear', 150, '222200043'),
        ('EMO-2-surprise+fear', 168, '222200036'),
        ('EMO-2-surprise+fear', 177, '222200037'),
        ('EMO-2-surprise+fear', 192, '222200042'),
        ('EMO-2-surprise+fear', 213, '222200046'),
        ('EMO-2-surprise+fear', 258, '222200039'),
        ('EMO-2-surprise+fear', 264, '222200038'),
        ('EMO-2-surprise+fear', 267, '220700191'),
        ('EMO-2-surprise+fear', 291, '222200041'),
        ('EMO-2-surprise+fear', 42, '222200040'),
        ('EMO-2-surprise+fear', 51, '222200045'),
        ('EMO-2-surprise+fear', 54, '222200047'),
        ('EMO-2-surprise+fear', 60, '222200038'),
        ('SEN-09-frown_events_bad', 243, '222200041'),
        ('SEN-09-frown_events_bad', 273, '222200049'),
        ('SEN-09-frown_events_bad', 66, '222200047'),
        ('SEN-09-frown_events_bad', 75, '222200045'),
    ],
    310: [
        ('EMO-1-shout+laugh', 0, '222200037'),
        ('EMO-1-shout+laugh', 120, '222200043'),
        ('EMO-1-shout+laugh', 162, '222200049'),
        ('EMO-1-shout+laugh', 168, '222200048'),
        ('EMO-1-shout+laugh', 171, '222200046'),
        ('EMO-1-shout+laugh', 180, '222200040'),
        ('EMO-1-shout+laugh', 189, '222200041'),
        ('EMO-1-shout+laugh', 195, '222200047'),
        ('EMO-1-shout+laugh', 198, '222200037'),
        ('EMO-1-shout+laugh', 201, '222200047'),
        ('EMO-1-shout+laugh', 207, '220700191'),
        ('EMO-1-shout+laugh', 219, '222200036'),
        ('EMO-1-shout+laugh', 243, '222200040'),
        ('EMO-1-shout+laugh', 288, '222200036'),
        ('EMO-1-shout+laugh', 330, '222200038'),
        ('EMO-1-shout+laugh', 72, '222200042'),
        ('EMO-1-shout+laugh', 75, '222200039'),
        ('EMO-1-shout+laugh', 78, '222200045'),
        ('EMO-1-shout+laugh', 87, '221501007'),
        ('EMO-1-shout+laugh', 99, '222200046'),
    ],
    320: [
        ('EMO-4-disgust+happy', 150, '222200045'),
        ('EMO-4-disgust+happy', 213, '222200047'),
        ('EMO-4-disgust+happy', 219, '222200041'),
        ('EMO-4-disgust+happy', 231, '222200038'),
        ('EMO-4-disgust+happy', 234, '220700191'),
        ('EMO-4-disgust+happy', 57, '222200042'),
        ('EMO-4-disgust+happy', 69, '221501007'),
        ('EMO-4-disgust+happy', 75, '222200049'),
        ('EMO-4-disgust+happy', 90, '222200046'),
        ('EXP-4-lips', 132, '222200041'),
        ('EXP-4-lips', 165, '222200044'),
        ('EXP-4-lips', 237, '222200044'),
        ('EXP-4-lips', 252, '222200037'),
        ('EXP-4-lips', 264, '222200039'),
        ('EXP-4-lips', 342, '222200037'),
        ('EXP-4-lips', 366, '222200036'),
        ('EXP-4-lips', 405, '222200040'),
        ('EXP-4-lips', 447, '222200048'),
        ('EXP-4-lips', 480, '222200043'),
        ('EXP-4-lips', 513, '222200048'),
    ],
    372: [
        ('EMO-2-surprise+fear', 0, '222200036'),
        ('EMO-2-surprise+fear', 117, '222200048'),
        ('EMO-2-surprise+fear', 135, '222200039'),
        ('EMO-2-surprise+fear', 144, '221501007'),
        ('EMO-2-surprise+fear', 165, '222200045'),
        ('EMO-2-surprise+fear', 183, '222200037'),
        ('EMO-2-surprise+fear', 186, '222200038'),
        ('EMO-2-surprise+fear', 192, '220700191'),
        ('EMO-2-surprise+fear', 198, '222200046'),
        ('EMO-2-surprise+fear', 207, '222200043'),
        ('EMO-2-surprise+fear', 216, '222200047'),
        ('EMO-2-surprise+fear', 225, '222200041'),
        ('EMO-2-surprise+fear', 237, '222200044'),
        ('EMO-2-surprise+fear', 252, '222200047'),
        ('EMO-2-surprise+fear', 261, '222200042'),
        ('EMO-2-surprise+fear', 270, '222200045'),
        ('EMO-2-surprise+fear', 273, '222200041'),
        ('EMO-2-surprise+fear', 291, '222200049'),
        ('EMO-2-surprise+fear', 315, '222200040'),
        ('EMO-2-surprise+fear', 345, '222200036'),
    ],
}

FPS = {"nvs": NVS_FPS, "mono_flame_avatar": MONO_FPS}
FRAME_SIZE = {"nvs": NVS_SIZE, "mono_flame_avatar": MONO_SIZE}


def camera_role(benchmark: str, serial: str) -> str:
    """``"train"`` (video provided), ``"hold_out"`` (rendered for a submission) or ``"unused"``."""
    if benchmark == "nvs":
        return "hold_out" if serial in NVS_HOLD_OUT_SERIALS else "train"
    if serial == MONO_TRAIN_SERIAL:
        return "train"
    return "hold_out" if serial in MONO_HOLD_OUT_SERIALS else "unused"


_PARTICIPANT = re.compile(r"^\d{3}$")
_CAMERA_FILE = re.compile(r"^cam_(\d+)\.mp4$")
_POINTCLOUD_FILE = re.compile(r"^frame_(\d{5})\.pcd$")
# the toolkit's SVFRDataManager.list_image_keys pattern: {seq}_{timestep}_{serial}
_SVFR_FOLDER = re.compile(r"^([a-zA-Z0-9-_+]+)_(\d+)_(\d+)$")
_TRACKING_FILES = {FLAME_TRACKING[v].rsplit("/", 1)[1]: v for v in FLAME_TRACKING}


@dataclass(frozen=True)
class SequenceSource:
    """The files of one downloaded sequence; every mapping is sorted and may be empty.

    ``images`` and ``alpha_maps`` map a camera serial to its mp4 (no images for the mono hold-out
    sequences, which only have tracking); ``pointclouds`` maps a timestep to its ``.pcd``;
    ``tracking`` maps a FLAME tracking version (1, 2) to its npz.
    """

    benchmark: str
    participant_id: int
    sequence: str
    folder: Path
    images: dict[str, Path]
    alpha_maps: dict[str, Path]
    pointclouds: dict[int, Path] = field(default_factory=dict)
    tracking: dict[int, Path] = field(default_factory=dict)

    @property
    def serials(self) -> list[str]:
        return list(self.images)


@dataclass(frozen=True)
class ParticipantSource:
    """One participant folder of a video benchmark: its calibration file (if downloaded) and sequences."""

    benchmark: str
    participant_id: int
    folder: Path
    calibration: Path | None
    sequences: list[SequenceSource] = field(default_factory=list)


@dataclass(frozen=True)
class SvfrImageSource:
    """One SVFR input image ``svfr/{p_id:03d}/{seq}_{timestep}_{serial}/rgb.png``."""

    participant_id: int
    sequence: str
    timestep: int
    serial: str
    path: Path

    @property
    def key(self) -> str:
        """The image key of submission paths, timestep zero-padded to 3 digits (the toolkit's ``ImageKey.to_key``)."""
        return f"{self.sequence}_{self.timestep:03d}_{self.serial}"


@dataclass(frozen=True)
class BenchmarkFolder:
    """What a download folder holds: video-benchmark participants and SVFR images."""

    root: Path
    participants: list[ParticipantSource]
    svfr: list[SvfrImageSource]


def _benchmark_dirs(root: Path) -> dict[str, Path]:
    return {b: root / b for b in BENCHMARKS if (root / b).is_dir()}


def discover(
    root: str | Path | SourcePath,
    benchmarks: list[str] | None = None,
    participants: list[int] | None = None,
    sequences: list[str] | None = None,
) -> BenchmarkFolder:
    """Find what a download folder holds, filtered by ``benchmarks``, ``participants`` and ``sequences``.

    ``root`` is the ``benchmark_folder`` given to ``nersemble-benchmark-download`` (it holds
    ``nvs/``, ``mono_flame_avatar/`` and/or ``svfr/``). Partial downloads are normal: whatever is
    present is returned (a sequence with any of videos, point clouds or tracking). The
    ``sequences`` filter applies to SVFR images too (their sequence name).

    Raises :class:`SourceError` for a missing folder, a folder that is no benchmark folder, a
    sequence whose alpha mattes cover other cameras than its images, or filters that match nothing.
    """
    root = as_path(root)
    if not root.exists():
        raise SourceError(f"{root}: no such folder; pass the folder given to nersemble-benchmark-download")
    if not root.is_dir():
        raise SourceError(f"{root}: not a folder; pass the folder given to nersemble-benchmark-download")
    found = _benchmark_dirs(root)
    if not found:
        hint = ""
        if root.name in BENCHMARKS:
            hint = f" (it looks like a benchmark subfolder: pass its parent {root.parent})"
        raise SourceError(
            f"{root}: not a NeRSemble benchmark folder, it has none of {', '.join(BENCHMARKS)}/{hint}"
        )
    for b in benchmarks or []:
        if b not in BENCHMARKS:
            raise SourceError(f"unknown benchmark {b!r}; choose from {', '.join(BENCHMARKS)}")
    wanted = [b for b in BENCHMARKS if b in found and (not benchmarks or b in benchmarks)]
    people: list[ParticipantSource] = []
    for benchmark in (b for b in wanted if b in VIDEO_BENCHMARKS):
        for pdir, p_id in _participant_dirs(found[benchmark], participants):
            calib = pdir / CALIBRATION.format(p_id=p_id).split("/", 1)[1]
            part = ParticipantSource(benchmark, p_id, pdir, calib if calib.is_file() else None)
            seq_root = pdir / "sequences"
            for sdir in sorted(seq_root.iterdir(), key=lambda p: p.name) if seq_root.is_dir() else []:
                if not sdir.is_dir() or (sequences and sdir.name not in sequences):
                    continue
                seq = _sequence_source(benchmark, p_id, sdir)
                if seq is not None:
                    part.sequences.append(seq)
            if part.sequences:
                people.append(part)
    svfr = _svfr_images(found["svfr"], participants, sequences) if "svfr" in wanted else []
    if not people and not svfr:
        what = f"benchmarks {wanted or benchmarks}"
        if participants:
            what += f", participants {participants}"
        if sequences:
            what += f", sequences {sequences}"
        raise SourceError(f"{root}: no data found for {what}; check the filters or the download")
    return BenchmarkFolder(root, people, svfr)


def _participant_dirs(bdir: Path, participants: list[int] | None) -> list[tuple[Path, int]]:
    out = []
    for pdir in sorted(bdir.iterdir(), key=lambda p: p.name):
        if pdir.is_dir() and _PARTICIPANT.match(pdir.name) and (not participants or int(pdir.name) in participants):
            out.append((pdir, int(pdir.name)))
    return out


def _matching_files(folder: Path, pattern: re.Pattern, key=str) -> dict:
    if not folder.is_dir():
        return {}
    found = {}
    for f in folder.iterdir():
        m = pattern.match(f.name)
        if m and f.is_file():
            found[key(m.group(1))] = f
    return dict(sorted(found.items()))


def _sequence_source(benchmark: str, p_id: int, sdir: Path) -> SequenceSource | None:
    images = _matching_files(sdir / "images", _CAMERA_FILE)
    alpha = _matching_files(sdir / "alpha_maps", _CAMERA_FILE)
    pointclouds = _matching_files(sdir / "pointclouds", _POINTCLOUD_FILE, int)
    tracking = {v: sdir / "tracking" / name for name, v in _TRACKING_FILES.items() if (sdir / "tracking" / name).is_file()}
    if not (images or pointclouds or tracking):
        return None
    if alpha and set(alpha) != set(images):
        only_img = sorted(set(images) - set(alpha))
        only_alpha = sorted(set(alpha) - set(images))
        raise SourceError(
            f"{sdir}: alpha_maps/ and images/ cover different cameras "
            f"(images only: {only_img}, alpha only: {only_alpha}); finish the download or remove the extra files"
        )
    return SequenceSource(benchmark, p_id, sdir.name, sdir, images, alpha, pointclouds, dict(sorted(tracking.items())))


def _svfr_images(bdir: Path, participants: list[int] | None, sequences: list[str] | None) -> list[SvfrImageSource]:
    images = []
    for pdir, p_id in _participant_dirs(bdir, participants):
        for folder in sorted(pdir.iterdir(), key=lambda p: p.name):
            m = _SVFR_FOLDER.match(folder.name)
            if not (m and folder.is_dir() and (folder / "rgb.png").is_file()):
                continue
            if sequences and m.group(1) not in sequences:
                continue
            images.append(SvfrImageSource(p_id, m.group(1), int(m.group(2)), m.group(3), folder / "rgb.png"))
    return images
