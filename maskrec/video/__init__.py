"""Recognise masks through a video file: follow each person, vote their label, count them per second.

    rec = Recognizer.load("checkpoints/net1.pt", detector=faces.LIVE_DEFAULT)
    res = process("door.mp4", rec, out="door-annotated.mp4")
    res.summary    # {"people": 12, "mask": 9, "no_mask": 2, "unsure": 1, "frames": 900, "seconds": 30.0, "fps": 41.5, ...}
    res.tracks     # one track.TrackRow per person: id, first/last time, frames, voted label, p_mask
    res.timeline   # (second, with mask, without) for every second of the video
    job = VideoJob(src, folder, rec).start()   # the same on a thread: progress(), stop(), result()

One job per file, imported one way (job -> result -> codec):

- ``codec``: PyAV (FFmpeg) in and out: ``open_video`` checks a file, ``decode_frames`` decodes on
  a thread, scaling each frame to at most ``PROCESS_SIDE`` px while converting to RGB; ``Writer``
  encodes on another. Times come from each frame's own timestamp, so a variable frame rate is
  followed as recorded, and the output keeps them.
- ``job``: ``process`` (detect, classify a frame's faces in one batch, track, draw) and
  ``VideoJob``, the same on a background thread.
- ``result``: ``VideoResult`` (tracks, timeline, summary, thumbnails) and ``result.json``; a live
  stream's so far (``session_result``).
- ``report``: the compliance report, one self-contained HTML file (``render_report``).

**Output.** H.264 in MP4 (``libx264``, yuv420p, ``+faststart`` so a browser starts playing
before the whole file is there) when the PyAV wheel has it, else VP9 in WebM; Chromium plays
both (``tests/test_video_browser.py`` checks playback in it).

**Bad input** raises ``VideoError`` (a ValueError) with a sentence for the user: not a video, an
image (``PictureError``: its caller says where a photo goes), audio only, a picture bigger than 8K, no frame that decodes. A file that breaks off or is
damaged part way is processed up to there, with a warning in ``summary["warnings"]``; no face at
all is an empty result.

Test clips with known truth (a slow pan and zoom over an annotated photo) and their scorer are not
part of the product: they are ``evaluation.clips``.
"""
from maskrec.video.codec import (
    CODECS,
    EXTENSIONS,
    MAX_PIXELS,
    MAX_SIDE,
    PROCESS_SIDE,
    PictureError,
    VideoError,
    VideoInfo,
    Writer,
    mime,
    output_suffix,
    probe,
)
from maskrec.video.job import Progress, VideoJob, process
from maskrec.video.report import (
    SETTINGS,
    load_settings,
    render_report,
    save_settings,
    session_report,
    settings_of,
    tracker_settings,
    write_report,
)
from maskrec.video.result import RESULT, THUMB, VideoResult, load, save, session_result

__all__ = ["CODECS", "EXTENSIONS", "MAX_PIXELS", "MAX_SIDE", "PROCESS_SIDE", "PictureError", "Progress", "RESULT", "THUMB",
           "VideoError", "VideoInfo", "VideoJob", "VideoResult", "Writer", "load", "mime", "output_suffix",
           "probe", "process", "save"]
__all__ += ["SETTINGS", "load_settings", "render_report", "save_settings", "session_report", "session_result",
            "settings_of", "tracker_settings", "write_report"]  # the compliance report (report.py)
