"""Cameras (maskrec/cameras, issue 38 item 2): the camera file, sources, the hub, the HTTP API.

Real parts: RTSP cameras are ``tests/rtsp_server.RtspCamera`` (ffmpeg sending a clip made here from
the demo generator's faces as RTP; a small RTSP server relaying it), the recogniser is the shipped
checkpoint with its live detector, and ``serve --cameras`` runs as a subprocess. Tests that need
ffmpeg skip with that reason where it is absent (CI installs it: a skip fails CI).
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from maskrec.cameras import config as C
from maskrec.cameras.source import Source
from tests.conftest import REPO
from tests.rtsp_server import FFMPEG, RtspCamera, clip, free_port

needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed (apt-get install ffmpeg)")
SECRET = "s3cr3t-pw"


def write(tmp_path: Path, text: str, name: str = "cameras.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ------------------------------------------------------------------------ the camera file

GOOD = """
[mqtt]
host = "127.0.0.1"
port = 1883

[[webhooks]]
url = "http://127.0.0.1:9000/hook"

[events]
dir = "ev"
blur_others = false

[[cameras]]
name = "door"
source = "rtsp://admin:s3cr3t-pw@10.0.0.5:554/stream?channel=1&password=s3cr3t-pw"
detector = "retinaface"
detect_every = 3
max_fps = 10

[[cameras.zones]]
name = "entry"
points = [[0, 0], [640, 0], [640, 480], [0, 480]]

[[cameras.rules]]
name = "bare-at-door"
bare_for_s = 3.0
zone = "entry"
cooldown_s = 30

[[cameras]]
name = "demo_2"
source = "clip.mp4"
"""


def test_camera_file_read(tmp_path):
    cfg = C.load(write(tmp_path, GOOD))
    door, demo = cfg.cameras
    assert (door.name, door.detector, door.detect_every, door.max_fps) == ("door", "retinaface", 3, 10.0)
    assert door.zones == (C.Zone("entry", ((0, 0), (640, 0), (640, 480), (0, 480))),)
    assert door.rules == (C.Rule("bare-at-door", 3.0, "entry", 30.0),)
    assert demo.source == str(tmp_path / "clip.mp4")  # a file beside the camera file
    assert (demo.detector, demo.detect_every, demo.zones, demo.rules) == (None, None, (), ())
    assert cfg.mqtt == C.Mqtt("127.0.0.1", 1883, "maskrec") and cfg.webhooks == (C.Webhook("http://127.0.0.1:9000/hook"),)
    assert (cfg.events_dir, cfg.blur_others, cfg.path) == ("ev", False, str(tmp_path / "cameras.toml"))


CAM = '[[cameras]]\nname = "a"\nsource = "x.mp4"\n'
ZONE = '[[cameras.zones]]\nname = "z"\npoints = [[0, 0], [10, 0], [0, 10]]\n'


@pytest.mark.parametrize("text, said", [
    ("x = ", "not valid TOML"),
    ("", "cameras: no [[cameras]] table"),
    ('[[cameras]]\nname = "a"\n', "camera 'a': source: missing (required)"),
    ('[[cameras]]\nsource = "x.mp4"\n', "cameras[0]: name: missing (required)"),
    ('[[cameras]]\nname = "a b"\nsource = "x.mp4"\n', "camera 'a b': name: 'a b' is not a camera name"),
    (CAM + CAM, "camera 'a': name: used by another camera too"),
    (CAM + "fps = 3\n", "camera 'a': fps: unknown key (allowed: name, source,"),
    ("[[camera]]\n", "camera: unknown key"),
    (CAM + "detect_every = 0\n", "camera 'a': detect_every: must be a whole number >= 1, not a number (0)"),
    (CAM + "detect_every = 1.5\n", "camera 'a': detect_every: must be a whole number >= 1"),
    (CAM + 'max_fps = "fast"\n', "camera 'a': max_fps: must be a number > 0, not a string ('fast')"),
    (CAM + 'detector = "yolo"\n', "camera 'a': detector: unknown detector 'yolo'"),
    ('[[cameras]]\nname = "a"\nsource = "ftp://u:s3cr3t-pw@h/x"\n', "camera 'a': source: 'ftp://***@h/x': the scheme"),
    (CAM + '[[cameras.zones]]\nname = "z"\npoints = [[0, 0], [1, 1]]\n',
     "camera 'a': zone 'z': points: a polygon needs at least 3 [x, y] points"),
    (CAM + '[[cameras.zones]]\nname = "z"\npoints = [[0, 0], [1, 1], [2]]\n', "zone 'z': points: each point must be [x, y]"),
    (CAM + ZONE + ZONE, "camera 'a': zones: two zones are named 'z'"),
    (CAM + ZONE + '[[cameras.rules]]\nname = "r"\nbare_for_s = 3\nzone = "hall"\n',
     "camera 'a': rule 'r': zone: no zone named 'hall' on this camera (it has: z)"),
    (CAM + '[[cameras.rules]]\nname = "r"\nbare_for_s = -1\n', "rule 'r': bare_for_s: must be a number >= 0"),
    (CAM + '[[cameras.rules]]\nname = "r"\n', "camera 'a': rules[0]: bare_for_s: missing (required)"),
    (CAM + '[mqtt]\nport = 70000\n', "[mqtt]: port: must be a whole number >= 1 and <= 65535"),
    (CAM + '[[webhooks]]\nurl = "ftp://h/x"\n', "webhooks[0]: url: must be an http:// or https:// URL"),
    (CAM + '[events]\nblur_others = "yes"\n', "[events]: blur_others: must be true or false"),
])
def test_camera_file_mistakes_said_clearly(tmp_path, text, said):
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as e:
        C.load(path)
    assert str(e.value).startswith(f"{path}: ") and said in str(e.value), str(e.value)
    assert SECRET not in str(e.value)


def test_missing_camera_file(tmp_path):
    with pytest.raises(ValueError, match="no such camera file"):
        C.load(tmp_path / "nope.toml")


@pytest.mark.parametrize("source, seen", [
    ("rtsp://admin:s3cr3t-pw@10.0.0.5:554/stream", "rtsp://***@10.0.0.5:554/stream"),
    ("rtsp://admin@10.0.0.5/stream", "rtsp://***@10.0.0.5/stream"),
    ("http://cam/video.mjpg?user=admin&password=s3cr3t-pw&res=hd", "http://cam/video.mjpg?user=***&password=***&res=hd"),
    ("rtsp://10.0.0.5/stream", "rtsp://10.0.0.5/stream"),
    ("/videos/door.mp4", "/videos/door.mp4"),
])
def test_shown_source_hides_credentials(source, seen):
    assert C.Camera("a", source).shown_source == seen
    assert SECRET not in repr(C.Camera("a", source))
    assert C.scrub(f"Connection refused: '{source}'", source) == f"Connection refused: '{seen}'"
    assert SECRET not in C.scrub(f"error at {source.replace('s3cr3t-pw', 'other-s3cr3t-pw')}")
