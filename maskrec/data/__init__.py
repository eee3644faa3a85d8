"""Datasets: find images in any layout, decode them once, keep them as uint8 tensors.

One job per part:

- ``layouts``: the layouts (the report's ``train/000123_1.jpg``, class folders, annotated
  scenes, ``"a:b"`` combinations), ``discover`` and the ``Dataset`` value it returns;
- ``zips``: a ``.zip`` extracted once into the cache, with its guards;
- ``image``: the one preprocessing (``to_input``, ``batch_to_float``, ``preprocessing_info``); the
  one image reader it feeds on, ``open_rgb`` (upright RGB, EXIF applied), is ``maskrec.core.imaging``,
  re-exported here, as are the errors of ``maskrec.core.errors``;
- ``headers``: the header scan (``probe``, ``scan``) and the summary the Dataset page shows;
- ``cache``: the decoded-image cache (``decode_all``, ``load_split``).
- ``scenes``: annotated photos (PASCAL VOC) cut into face crops, and the declared scene split
  (``scene_split.json``); ``validation``: which train files a validation split takes;
- ``synth``: the built-in demo dataset, drawn; ``health``: a dataset's health checks;
  ``overrides``: the user's review decisions (relabelled, excluded files), applied by ``discover``.

Without a test split a stratified, seeded 25% is held out. Bad files are skipped and listed with a
reason, never raised. A Dataset never changes: the scan and the decoder return a new one with the
files they found unusable moved to ``skipped``. Use::

    ds = discover("path/to/data")            # Dataset: items, skipped, layout
    info = scan(ds)                          # header-only sizes/formats, cached
    X, y, paths = load_split(ds, "train", size=32)  # (N, 3, 32, 32) uint8, (N,) int64; decoded once
    ds = decode_all(ds, 32).dataset          # ... and the files that failed to decode, in ds.skipped
    views = decode_all(ds, 32).train_views() # TrainViews: a scene face's jittered framings, for training
    X = views.draw(gen)                      # (N, 3, 32, 32) uint8: one framing per train face, per epoch

A scene folder's dataset holds each annotated face once; jitter is augmentation (``Dataset.views``),
which only ``train_views`` reads.
"""
from maskrec.data.cache import Decoded, TrainViews, decode_all, load_split
from maskrec.core.errors import BadImage, DataError
from maskrec.core.imaging import MIN_SIDE, PHOTO_MAX_PIXELS, open_rgb
from maskrec.data.headers import probe, scan, summarize
from maskrec.data.image import (
    PREPROCESSING_VERSION,
    batch_to_float,
    data_url,
    network_views,
    preprocessing_info,
    to_input,
)
from maskrec.data.layouts import CLASS_FOLDERS, SPLIT_NAMES, Dataset, Item, Skipped, discover
from maskrec.data.zips import extract_zip, keep_upload, resolve_source

__all__ = ["BadImage", "CLASS_FOLDERS", "DataError", "Dataset", "Decoded", "Item", "MIN_SIDE", "PHOTO_MAX_PIXELS",
           "PREPROCESSING_VERSION", "SPLIT_NAMES", "Skipped", "batch_to_float", "data_url", "decode_all", "discover",
           "extract_zip", "keep_upload", "load_split", "network_views", "open_rgb", "preprocessing_info", "probe",
           "resolve_source", "scan", "summarize", "to_input", "TrainViews"]
