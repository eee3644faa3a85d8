"""Where the images of a dataset are and what their labels are: the layouts, and ``discover``.

Layouts (a folder, or a ``.zip`` of one; see ``zips``):

1. the report's: ``train/`` and ``test/`` holding ``<id>_<label>.<ext>`` (1 = covered, 0 = bare),
   e.g. ``train/000123_1.jpg``;
2. class folders (``with_mask``/``without_mask``, ``WithMask``/``WithoutMask``, ``mask``/``no_mask``,
   ``1``/``0``), at the top or inside ``train/`` and ``test/`` (``val``/``validation`` count as test);
3. annotated photos (PASCAL VOC), cut into face crops once by ``maskrec.data.scenes``, then layout 1:
   one item per annotated face; the jittered framings of training faces are not items but
   ``Dataset.views``, augmentation material that only the trainer reads (``cache.Decoded.train_views``).

Several folders joined by ``os.pathsep`` (``"a:b"``, like PATH) are one dataset, each keeping its
own split. Without a test split a stratified, seeded 25% is held out. Files that cannot be used are
listed in ``Dataset.skipped`` with a reason, never raised; only a dataset with no images or one
class is a DataError. Nothing here opens an image: that is ``headers.scan`` and ``cache``.

A Dataset is a value: it never changes. What learns more about it (the header scan, the decoder)
returns a new one, ``ds.without(bad)``.

The user's review decisions (``maskrec.data.overrides``: relabelled and excluded files, kept under
MASKREC_HOME, never in their folder) are applied by ``discover`` itself, so the scan, the explorer,
training and evaluation all see the same labels; ``overrides=False`` gives the folder as it is
(the review shows the labels the files carry).

    ds = discover("path/to/data")                    # Dataset: items, skipped, layout; overrides applied
    raw = discover("path/to/data", overrides=False)  # the labels the folder gives
"""
from __future__ import annotations

import hashlib
import os
import random
import re
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, NamedTuple

# both below the data package (faces, imaging, errors; config): the calls run one way
from maskrec.data import overrides as _overrides
from maskrec.data import scenes
from maskrec.config import DataConfig
from maskrec.core.errors import DataError
from maskrec.data.zips import resolve_source

SPLIT_NAMES = {"train": "train", "training": "train", "test": "test", "testing": "test",
               "val": "test", "valid": "test", "validation": "test"}
CLASS_FOLDERS = {"withmask": 1, "withmasks": 1, "mask": 1, "masked": 1, "masks": 1, "covered": 1,
                 "1": 1, "maskweardincorrect": 1, "maskwearedincorrect": 1,
                 "withoutmask": 0, "withoutmasks": 0, "nomask": 0, "unmasked": 0, "bare": 0,
                 "nomasks": 0, "0": 0}
_NAME_RE = re.compile(r"^(?P<id>.+)_(?P<label>\d+)$")


class Item(NamedTuple):
    path: Path
    label: int
    split: str  # "train" | "test"


class Skipped(NamedTuple):
    path: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    root: Path
    layout: str  # "report" | "class-folders" | "voc-scenes" | "mixed" | "a+b" (combined)
    items: tuple[Item, ...]
    skipped: tuple[Skipped, ...] = ()
    held_out: bool = False  # True when the test split was drawn from a dataset without one
    # (item path, its extra framings): a scene face's jittered crops. Augmentation for training, not
    # items: counts, the scan, the explorer and data health never see them. A dict is accepted.
    views: tuple[tuple[Path, tuple[Path, ...]], ...] = ()
    # The folder(s) as the user named them, resolved (os.pathsep-joined, sorted, for "a:b"): the
    # dataset's stable identity, which its review decisions are filed under ("" = root's).
    source: str = ""
    # The review decisions applied to this dataset (overrides.Stamp: csv, sha1, decisions), or None.
    overrides: tuple | None = None

    def __post_init__(self):
        # Tuples, so a caller cannot append to a dataset that another caller (a cached page, a
        # job) holds too. Lists are accepted and converted.
        object.__setattr__(self, "items", tuple(self.items))
        object.__setattr__(self, "skipped", tuple(self.skipped))
        views = self.views.items() if isinstance(self.views, dict) else self.views
        object.__setattr__(self, "views", tuple((Path(p), tuple(vs)) for p, vs in views))

    def views_of(self) -> dict[Path, tuple[Path, ...]]:
        """{item path: its extra framings} (see ``views``)."""
        return dict(self.views)

    def counts(self) -> dict[str, dict[int, int]]:
        out = {"train": {0: 0, 1: 0}, "test": {0: 0, 1: 0}}
        for it in self.items:
            out[it.split][it.label] += 1
        return out

    def fingerprint(self, labels: bool = True) -> str:
        """Changes when any file is added, removed, relabelled or modified; ``labels=False``: not
        when relabelled (the decoded pixels do not depend on labels: see ``cache``)."""
        h = hashlib.sha1()
        for it in self.items:
            st = it.path.stat()
            label = it.label if labels else ""
            # relpath, not Path.relative_to: a combined dataset's parts may be given as relative paths
            h.update(f"{os.path.relpath(it.path, self.root)}|{label}|{it.split}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]

    def without(self, bad: Iterable[Skipped]) -> Dataset:
        """This dataset less the files in ``bad``, which join ``skipped`` with their reasons (a file
        listed there already is not listed twice)."""
        known = {s.path for s in self.skipped}
        fresh = []
        for b in bad:
            if b.path not in known:
                known.add(b.path)
                fresh.append(b)
        if not fresh:
            return self
        gone = {b.path for b in fresh}
        return replace(self, items=[it for it in self.items if str(it.path) not in gone],
                       skipped=self.skipped + tuple(fresh),
                       views=[(p, vs) for p, vs in self.views if str(p) not in gone])


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _walk(folder: Path, skipped: list[Skipped]):
    """Yield regular files below folder (sorted, deterministic); never follows folder links."""
    def onerror(err: OSError):
        skipped.append(Skipped(str(err.filename), f"cannot read folder ({err.strerror})"))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=onerror, followlinks=False):
        dirnames.sort()
        for d in list(dirnames):
            if os.path.islink(os.path.join(dirpath, d)):
                skipped.append(Skipped(os.path.join(dirpath, d), "linked folder not followed"))
        for f in sorted(filenames):
            yield Path(dirpath) / f


def _classify_file(path: Path, folder_label: int | None, exts, skipped: list[Skipped],
                   is_link: bool | None = None) -> int | None:
    """Label of one file, or None (and a Skipped entry) when it cannot be used. ``is_link`` from a
    directory entry saves a stat per file."""
    if path.name.startswith("."):
        skipped.append(Skipped(str(path), "hidden file"))
        return None
    if path.suffix.lower() not in exts:
        skipped.append(Skipped(str(path), f"not an image file ({path.suffix or 'no extension'})"))
        return None
    if (path.is_symlink() if is_link is None else is_link) and not path.exists():
        skipped.append(Skipped(str(path), "broken link"))
        return None
    if folder_label is not None:
        return folder_label
    m = _NAME_RE.match(path.stem)
    if not m or m["label"] not in ("0", "1"):
        skipped.append(Skipped(str(path), "name does not end in _0 or _1 (label unknown)"))
        return None
    return int(m["label"])


def _collect(folder: Path, split: str, exts, skipped, items, layouts: set):
    """Files directly in folder are named <id>_<label>; class sub-folders give their label."""
    readable = os.access(folder, os.R_OK | os.X_OK)
    # scandir entries know file type and link-ness from the directory itself: no stat per file,
    # which is most of a scan's time on a folder of 24,000 images
    with os.scandir(folder) if readable else nullcontext(()) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            label = CLASS_FOLDERS.get(_norm(entry.name))
            if label is None:
                skipped.append(Skipped(str(path), "folder is not a class name (e.g. with_mask / without_mask)"))
                continue
            layouts.add("class-folders")
            for f in _walk(path, skipped):
                lab = _classify_file(f, label, exts, skipped)
                if lab is not None:
                    items.append(Item(f, lab, split))
        elif entry.is_symlink() and _points_to_dir(entry):
            skipped.append(Skipped(str(path), "linked folder not followed"))
        else:
            lab = _classify_file(path, None, exts, skipped, is_link=entry.is_symlink())
            if lab is not None:
                layouts.add("report")
                items.append(Item(path, lab, split))
    if not readable:
        skipped.append(Skipped(str(folder), "cannot read folder (permission denied)"))


def _points_to_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link loop (ELOOP) is no folder; the file check reports it
        return False


def _unwrap(root: Path) -> Path:
    """Descend through single wrapper folders (e.g. a zip holding dataset/with_mask/...)."""
    for _ in range(4):
        try:
            entries = [e for e in root.iterdir() if not e.name.startswith((".", "__MACOSX"))]
        except OSError:
            return root
        dirs = [e for e in entries if e.is_dir()]
        known = any(_norm(d.name) in SPLIT_NAMES or _norm(d.name) in CLASS_FOLDERS for d in dirs)
        if known or len(dirs) != 1 or any(e.is_file() for e in entries):
            return root
        root = dirs[0]
    return root


def discover(path: str | os.PathLike, cfg: DataConfig = DataConfig(), hold_out: bool = True,
             overrides: bool = True) -> Dataset:
    """Find every usable image under path in either layout. Raises DataError if none/one class, and
    OverridesError (a DataError) when the review decisions filed for it cannot be read.

    hold_out=False leaves a dataset without a test split all in "train" (for evaluating on it all).
    overrides=False: the labels the files carry, without the user's review decisions. The test
    split is held out before they apply, so a relabel never moves a file between splits.
    """
    sources = [s for s in str(path).split(os.pathsep) if s] if isinstance(path, str) else [path]
    if len(sources) > 1:
        ds = _combine([discover(s, cfg, hold_out, overrides=False) for s in sources])
    else:
        ds = _discover_one(path, cfg, hold_out)
    return _overrides.apply(ds) if overrides else ds


def _discover_one(path: str | os.PathLike, cfg: DataConfig, hold_out: bool) -> Dataset:
    source = os.path.realpath(Path(path).expanduser())
    root = _unwrap(resolve_source(path))
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    voc = scenes.is_voc(root)
    if voc:  # annotated photos: their face crops, cut once into the cache, are the dataset
        root = scenes.crops(root)
    exts = tuple(cfg.exts)
    items: list[Item] = []
    skipped: list[Skipped] = []
    layouts: set[str] = set()
    split_dirs = [(SPLIT_NAMES[_norm(d.name)], d) for d in sorted(root.iterdir())
                  if d.is_dir() and _norm(d.name) in SPLIT_NAMES]
    if split_dirs:
        for split, d in split_dirs:
            _collect(d, split, exts, skipped, items, layouts)
    else:
        _collect(root, "train", exts, skipped, items, layouts)
    if not items:
        raise DataError(f"no usable images found in {root} "
                        f"(expected train/ and test/ with <id>_<label>.jpg, or with_mask/ and without_mask/ folders)")
    labels = {it.label for it in items}
    if len(labels) < 2:
        only = "covered (1)" if labels == {1} else "bare (0)"
        raise DataError(f"{root} holds only {only} faces; training needs both classes")
    held_out = hold_out and not any(it.split == "test" for it in items)
    if held_out:
        items = _hold_out(items, cfg.test_fraction, cfg.split_seed)
    layout = "voc-scenes" if voc else layouts.pop() if len(layouts) == 1 else "mixed"
    views = scenes.training_views(root) if voc else {}
    kept = {it.path for it in items}
    return Dataset(root=root, layout=layout, items=items, skipped=skipped, held_out=held_out,
                   views=[(p, vs) for p, vs in views.items() if p in kept], source=source)


def _combine(parts: list[Dataset]) -> Dataset:
    """Several datasets as one (``"a:b"``, os.pathsep-separated, like PATH): each keeps its own split,
    so facemask-dev's test images stay test images beside a scene folder's held-out crops."""
    root = Path(os.path.commonpath([os.path.abspath(d.root) for d in parts]))
    return Dataset(root=root, layout="+".join(d.layout for d in parts), items=[it for d in parts for it in d.items],
                   skipped=[s for d in parts for s in d.skipped], held_out=any(d.held_out for d in parts),
                   views=[v for d in parts for v in d.views],
                   source=os.pathsep.join(sorted(d.source for d in parts)))


def _hold_out(items: list[Item], fraction: float, seed: int) -> list[Item]:
    """Stratified: the same share of each label goes to test; seeded, so reruns agree."""
    rng = random.Random(seed)
    out = []
    for label in (0, 1):
        group = [it for it in items if it.label == label]
        order = list(range(len(group)))
        rng.shuffle(order)
        n_test = round(len(group) * fraction)
        test_idx = set(order[:n_test])
        out += [it._replace(split="test" if i in test_idx else "train") for i, it in enumerate(group)]
    out.sort(key=lambda it: str(it.path))
    return out
