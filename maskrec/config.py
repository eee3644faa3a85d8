"""Settings as frozen dataclasses, and where MaskRec keeps its files.

All defaults live here. The report's two recipes, and one for each further net of ``nets.REGISTRY``,
are presets of :class:`TrainConfig` (one per registry row);
``dataclasses.replace(PRESETS["net2"], epochs=5)`` makes a variant.

Files: everything MaskRec writes goes under ``home()`` (``$MASKREC_HOME``, default the repo
folder): ``runs/`` (one folder per training run), ``cache/`` (decoded images, scan results),
``data/demo`` (the generated demo dataset) and ``data_roots.txt`` (data folders a user of a local
server allowed from the Dataset page: ``allow_root``).
"""
from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from maskrec.core.atomic import atomic_write_text
from maskrec.core.fields import Search, knob, problems
from maskrec.models.nets import REGISTRY

REPO_ROOT = Path(__file__).resolve().parent.parent
CLASS_NAMES = ("no_mask", "mask")  # index = label: 0 bare face, 1 covered face
# The development data beside the repo (not shipped; CI has it), for tests and benchmarks:
# web face crops and annotated scenes, each movable with its environment variable.
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"
# The default recogniser (Recognize page, video): by issue 34's rule, the shipped net that meets the goal
# through the whole pipeline on the validation scenes at the lower cost per face (checkpoints/README.md):
# net2.pt; net1.pt missed its masked clause there.
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "net2.pt"
DEV_DATA = Path(os.environ.get("MASKREC_DEV_DATA", SHARED_DATASETS / "facemask-dev"))
DEV_SCENES = Path(os.environ.get("MASKREC_SCENES", SHARED_DATASETS / "facemask-scenes-dev"))
# the other 653 scenes of the same set (issue 34): with DEV_SCENES, the 853 of the declared split
MORE_SCENES = Path(os.environ.get("MASKREC_SCENES_MORE", SHARED_DATASETS / "facemask-scenes-more"))


def home() -> Path:
    return Path(os.environ.get("MASKREC_HOME", REPO_ROOT)).expanduser()


def runs_dir() -> Path:
    return home() / "runs"


def cache_dir() -> Path:
    return Path(os.environ.get("MASKREC_CACHE", home() / "cache")).expanduser()


def demo_dir() -> Path:
    return home() / "data" / "demo"


def roots_file() -> Path:
    """Folders a user of a local server allowed from the Dataset page, one per line (``allow_root``)."""
    return home() / "data_roots.txt"


def added_roots() -> list[Path]:
    try:
        lines = roots_file().read_text().splitlines()
    except FileNotFoundError:
        return []
    return [Path(line) for line in lines if line.strip()]


def data_roots() -> list[Path]:
    """Folders that dataset paths typed into the browser must lie under.

    ``$MASKREC_DATA_ROOTS`` (os.pathsep-separated), exactly, when set: a deployer's list. Otherwise
    MaskRec's data folder, the server's working directory, the project's data folder beside the repo
    (``SHARED_DATASETS``, and the dev sets wherever their variables put them), and the folders listed
    in ``roots_file()``. A root under another root is left out.
    """
    env = os.environ.get("MASKREC_DATA_ROOTS")
    if env:
        roots = env.split(os.pathsep)
    else:
        roots = [home() / "data", os.getcwd(), SHARED_DATASETS, DEV_DATA, DEV_SCENES, MORE_SCENES, *added_roots()]
    resolved = list(dict.fromkeys(Path(r).expanduser().resolve() for r in roots if str(r)))
    return [r for r in resolved if not any(o in r.parents for o in resolved)]


def roots_fixed() -> bool:
    """True when ``$MASKREC_DATA_ROOTS`` fixes the data folders (nothing can be allowed from a page)."""
    return bool(os.environ.get("MASKREC_DATA_ROOTS"))


def allow_root(path: str | os.PathLike) -> Path:
    """Add an existing folder to ``roots_file()`` (resolved first, so the line names the folder itself,
    not a link to it) and return it. Only for a local user: see ``is_local``; the pages offer it
    nowhere else. ValueError when it is no folder or ``$MASKREC_DATA_ROOTS`` fixes the list."""
    if roots_fixed():
        raise ValueError("MASKREC_DATA_ROOTS fixes the allowed data folders on this server")
    p = Path(path).expanduser().resolve()
    if not p.is_dir():
        raise ValueError(f"no folder at {path}")
    known = [str(r) for r in added_roots()]
    if str(p) not in known:
        atomic_write_text(roots_file(), "".join(f"{r}\n" for r in [*known, str(p)]))
    return p


def confine(path: str | os.PathLike) -> Path:
    """The resolved path if it lies under a data root, else ValueError (links are resolved first,
    so a link cannot lead out)."""
    p = Path(path).expanduser().resolve()
    for root in data_roots():
        if p == root or root in p.parents:
            return p
    allowed = ", ".join(str(r) for r in data_roots())
    how = "set MASKREC_DATA_ROOTS" if roots_fixed() else \
        f"set MASKREC_DATA_ROOTS or list it in {roots_file()}"
    raise ValueError(f"{path} is outside the allowed data folders ({allowed}); {how} to allow more")


LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
# headers a reverse proxy adds: a request through one may come from anywhere, whatever address it has
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")


def _loopback(host: str) -> bool:
    """localhost, 127.x.x.x or ::1, with or without a port or scheme: 'http://[::1]:8501'."""
    host = host.strip().lower().split("://")[-1].split("/")[0]
    if host.startswith("["):  # [::1]:8501
        host = host[1:].split("]")[0]
    elif host.count(":") == 1:  # 127.0.0.1:8501, localhost:8501
        host = host.split(":")[0]
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_local(bind_address: str | None, headers: dict[str, str]) -> bool:
    """Whether only this machine can reach the server that got this request: it listens on a
    loopback address only (``server.address``; none means every interface), and the request came
    through no proxy (no forwarding header; the Host and the browser's Origin name this machine).

    The bind address, not the browser's address, is what decides: behind a reverse proxy on the same
    machine (the deployment docs/guide.md describes) every browser connects from 127.0.0.1, and
    Streamlit says of its own ``st.context.ip_address`` that it must not be used for security. A
    proxy that adds none of these headers and rewrites Host and Origin is the deployer's to declare:
    set ``MASKREC_DATA_ROOTS``, which turns the local additions off."""
    if not bind_address or not _loopback(bind_address):
        return False
    h = {k.lower(): v for k, v in headers.items()}
    if any(k in h for k in PROXY_HEADERS):
        return False
    return all(_loopback(h[k]) for k in ("host", "origin") if h.get(k))


SCHEDULES = ("constant", "cosine")
PRECISIONS = {"auto": None, "fp32": False, "bf16": True}  # words of TrainConfig.bf16 (None: what pays here)


@dataclass(frozen=True)
class TrainConfig:
    """One training's settings. Each knob is one row of a table, declared here alone (maskrec.core.fields):
    default, page label, help, allowed range, CLI flag and, where the sweep searches it, its search range.
    The CLI's flags, the Train page's form, validate() and the sweep's space are all made from the rows."""
    net: str = knob("net1", "Network", "the net to train; its recipe fills the other settings (the report's for "
                    "net1 and net2), each of which can be changed", choices=tuple(REGISTRY), what="net")
    data: str = knob("", "Data", "dataset folder or .zip (default: the built-in demo data)",
                     off_page="the sidebar's dataset picker sets it")
    epochs: int = knob(10, "Epochs", "passes over the train split", range="1..10000",
                       search=Search(0.5, 1.0, of_epochs=True, draw=4))
    batch_size: int = knob(512, "Batch size", "images per Adam step", range="1..65536",
                           search=Search(choices=(32, 64, 128), draw=3))
    lr: float = knob(1e-3, "Learning rate", "Adam's learning rate", range="in (0, 10]", fmt="%g",
                     search=Search(2e-4, 3e-3, log=True, draw=1))
    weight_decay: float = knob(1e-3, "Weight decay", "Adam's weight decay (L2)", range="in [0, 1]", fmt="%g",
                               search=Search(1e-5, 1e-3, log=True, draw=2))
    dropout: float = knob(0.0, "Dropout", "the rate of the net's own dropout layers (Net1 has none: the report "
                          "used weight decay only)", range="in [0, 1)", needs="has_dropout",
                          search=Search(0.0, 0.5, draw=9))
    seed: int = knob(0, "Seed", "seeds the weights, the batches' order and every random draw", range="0..2147483647")
    device: str = knob("auto", "Device", "auto (CUDA when present, else CPU), cpu, cuda or cuda:N",
                       range="auto, cpu or cuda[:N]", pattern=r"auto|cpu|cuda.*")
    augment: bool = knob(False, "Augment (flip, small crop/scale, colour jitter)",
                         "flip, small crop/scale, colour jitter (off in the report's recipes, on in resnet18's)")
    augment_strength: float = knob(1.0, "Augment strength", "scales Augment's crop/scale and colour ranges "
                                   "(1: train.augment_batch's)", range="in (0, 3]", more=True,
                                   search=Search(0.0, 1.5, draw=0))  # the sweep: below 0.05 is no augmentation
    schedule: str = knob("constant", "Learning rate schedule", "constant (the report's) or cosine (one warm-up "
                         "epoch, then decay to 0 by the last epoch: steadier when a short run must end well)",
                         choices=SCHEDULES, what="schedule")
    eval_batch_size: int = 512
    # For small data (issue 18), each off by default: the report's recipe is none of them.
    val_fraction: float = knob(0.0, "Validation share", "hold this share of the train split out as validation "
                               "(stratified, by scene and by near-duplicate group); best.pt and the sweep are "
                               "judged on it (0: none)", range="in [0, 0.9)", what="validation fraction", more=True)
    label_smoothing: float = knob(0.0, "Label smoothing", "smooth the NLL target towards uniform by this: "
                                  "(1-e) * NLL + e * mean(-log p) (0: off)", range="in [0, 0.5)", more=True,
                                  search=Search(0.0, 0.15, draw=5))
    ema: float = knob(0.0, "EMA decay", "evaluate and save a moving average of the weights with this decay, "
                      "e.g. 0.995 (0: off)", range="0 (off) or in [0.5, 1)", metavar="DECAY", fmt="%.3f",
                      more=True, search=Search(choices=(0.0, 0.99, 0.995, 0.998), draw=6))
    mixup: float = knob(0.0, "Mixup alpha", "blend pairs of training images and their targets, the share drawn "
                        "from Beta(ALPHA, ALPHA) (0: off)", range="in [0, 10]", metavar="ALPHA", more=True,
                        search=Search(choices=(0.0, 0.2, 0.4), draw=7))
    low_res: float = knob(0.0, "Low-res share", "show this share of each train batch at a lower resolution: shrunk "
                          "to 1/4-3/4 of the input side and enlarged back (0: off)", range="in [0, 1]",
                          metavar="SHARE", more=True, search=Search(choices=(0.0, 0.25, 0.5), draw=8))
    drawn_masks: float = knob(0.0, "Drawn-masks share", "also train on masked copies of this share of the bare "
                              "train faces, masks drawn by their landmarks (over or below the nose: label 1; "
                              "pulled down to the chin: 0; 0: off)", range="a share in [0, 1]", what="drawn masks",
                              metavar="SHARE", more=True)
    scene_repeats: int = knob(1, "Scene-face repeats", "draw each training face cut from an annotated street "
                              "scene this many times an epoch, web crops once: more of the faces recognition "
                              "meets in every batch (1: as the data holds them)", range="1..20", more=True)
    init: str = knob("", "Start from", "start from this checkpoint's weights (the same net; e.g. a shipped one) "
                     "instead of random ones: fine-tuning. With EMA the average starts from them, without a "
                     "warm-up", metavar="CHECKPOINT", off_page="a checkpoint file on the server: the CLI's alone")
    distill: str = knob("", "Teachers", "teach the run with these trained checkpoints: their mean P(mask) on each "
                        "training batch is a soft NLL target beside the label (distillation; any net, resized to "
                        "its input)", metavar="CHECKPOINT", nargs="+",
                        off_page="checkpoint files on the server: the CLI's alone")
    distill_weight: float = knob(0.5, "Distillation weight", "share of the loss the teachers' target takes",
                                 range="in (0, 1]", metavar="W", off_page="used with teachers only (the CLI's)")
    # Speed switches (see docs/guide.md, Performance). None = pick what is fastest on this machine.
    channels_last: bool | None = None
    bf16: bool | None = knob(None, "Precision", "auto (the default: bf16 autocast where the CPU or GPU supports "
                             "it, else fp32), fp32 or bf16; weights are saved in fp32 either way", choices=PRECISIONS, flag="--precision",
                             more=True)
    # The review decisions the run trained with (maskrec.data.overrides.Stamp as a dict: csv, sha1 of its
    # bytes, decisions), filled in by train.fit from the dataset it loaded, so a run says which
    # labels it learned; None: the folder's own labels.
    overrides: dict | None = None

    def validate(self) -> "TrainConfig":
        """Raise ValueError with a plain message when a value cannot work (each knob's range)."""
        found = problems(self)
        if found:
            raise ValueError("; ".join(found))
        return self

    def teachers(self) -> list[str]:
        return [p for p in self.distill.split(os.pathsep) if p]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# The report's recipes (section 2e and 3e), then the further nets'.
PRESETS: dict[str, TrainConfig] = {
    "net1": TrainConfig(net="net1", epochs=10, batch_size=512, lr=1e-3, weight_decay=1e-3),
    "net2": TrainConfig(net="net2", epochs=50, batch_size=128, lr=1e-3, weight_decay=1e-3, dropout=0.2),
    # Not the report's (issue 34): a from-scratch ResNet-18 wants augmentation and a decaying rate.
    "resnet18": TrainConfig(net="resnet18", epochs=30, batch_size=64, lr=1e-3, weight_decay=5e-4,
                            augment=True, schedule="cosine"),
}
REPORT_TRAIN_IMAGES = 18_000  # the report's train split ("roughly 18,000")
MIN_SIZED_BATCH = 16


def sized_recipe(net: str, n_train: int) -> tuple[TrainConfig, str]:
    """The report's recipe for ``net`` with the batch scaled to a train split of n_train images, and
    a sentence that says what changed and why.

    The report's batch sizes were chosen for ~18,000 images: Net1's 512 makes 35 Adam steps an epoch
    there, but only 3 on the demo's 1,500 images, so 10 epochs are 30 steps and the first run ends
    half-trained. Scaling the batch by n_train / 18,000 (down to a power of two, at least 16) keeps
    the report's number of steps per epoch; every other value stays the report's. On a split of the
    report's size or larger, the recipe is the report's own."""
    p = PRESETS[net]
    if n_train >= REPORT_TRAIN_IMAGES:
        return p, "the report's recipe unchanged: this train split is as large as the report's"
    want = p.batch_size * n_train / REPORT_TRAIN_IMAGES
    batch = max(MIN_SIZED_BATCH, 2 ** max(0, int(math.floor(math.log2(max(want, 1))))))
    batch = min(batch, p.batch_size)
    steps = math.ceil(n_train / batch)
    report_steps = math.ceil(REPORT_TRAIN_IMAGES / p.batch_size)
    why = (f"batch {batch} instead of the report's {p.batch_size}: {n_train:,} train images here against the "
           f"report's ~{REPORT_TRAIN_IMAGES:,}, so each epoch makes {steps} Adam steps (the report's recipe: "
           f"{report_steps}); epochs, learning rate and weight decay are the report's")
    return replace(p, batch_size=batch), why


@dataclass(frozen=True)
class DataConfig:
    test_fraction: float = 0.25  # held out (stratified, seeded) when a dataset has no test split
    split_seed: int = 0
    exts: tuple[str, ...] = field(default=(".jpg", ".jpeg", ".png", ".bmp", ".webp"))
