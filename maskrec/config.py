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


@dataclass(frozen=True)
class TrainConfig:
    net: str = "net1"
    data: str = ""  # dataset folder or .zip; "" means the built-in demo dataset
    epochs: int = 10
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-3
    dropout: float = 0.0  # rate of the net's own dropout layers (Net1 has none)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    augment: bool = False  # flip, small crop/scale, colour jitter
    augment_strength: float = 1.0  # scales the crop/scale and colour ranges of augment (1 = train.augment_batch's)
    schedule: str = "constant"  # constant | cosine (warm-up, then cosine decay to 0; see train.lr_at)
    eval_batch_size: int = 512
    # For small data (issue 18), each off by default: the report's recipe is none of them.
    val_fraction: float = 0.0  # share of the train split held out as validation (stratified, by group; see validation.py)
    label_smoothing: float = 0.0  # NLL target smoothed towards uniform: (1-e) * NLL + e * mean(-log p)
    ema: float = 0.0  # decay of an exponential moving average of the weights (0 = off); the average is evaluated and saved
    mixup: float = 0.0  # Beta(a, a) of mixup (0 = off): pairs of training images and their targets blended
    low_res: float = 0.0  # share of each train batch shown at a lower resolution (recipe.low_res; 0 = off)
    drawn_masks: float = 0.0  # share of the bare train faces that also train with a mask drawn on (masks.py; 0 = off)
    init: str = ""  # a checkpoint of the same net whose weights the run starts from (fine-tuning); "" = seeded random weights
    distill: str = ""  # teacher checkpoints joined by os.pathsep whose mean P(class) is a soft target (distill.py); "" = off
    distill_weight: float = 0.5  # share of the loss that the teachers' target takes (with distill)
    # Speed switches (see docs/guide.md, Performance). None = pick what is fastest on this machine.
    channels_last: bool | None = None
    bf16: bool | None = None
    # The review decisions the run trained with (maskrec.data.overrides.Stamp as a dict: csv, sha1 of its
    # bytes, decisions), filled in by train.fit from the dataset it loaded, so a run says which
    # labels it learned; None: the folder's own labels.
    overrides: dict | None = None

    def validate(self) -> "TrainConfig":
        """Raise ValueError with a plain message when a value cannot work."""
        problems = []
        if self.net not in REGISTRY:
            problems.append(f"unknown net {self.net!r} (choose from {', '.join(REGISTRY)})")
        if not 1 <= self.epochs <= 10_000:
            problems.append(f"epochs must be 1..10000, got {self.epochs}")
        if not 1 <= self.batch_size <= 65_536:
            problems.append(f"batch size must be 1..65536, got {self.batch_size}")
        if not (0 < self.lr <= 10) or self.lr != self.lr:
            problems.append(f"learning rate must be in (0, 10], got {self.lr}")
        if not (0 <= self.weight_decay <= 1) or self.weight_decay != self.weight_decay:
            problems.append(f"weight decay must be in [0, 1], got {self.weight_decay}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0 < self.augment_strength <= 3:
            problems.append(f"augment strength must be in (0, 3], got {self.augment_strength}")
        if not 0 <= self.val_fraction < 0.9:
            problems.append(f"validation fraction must be in [0, 0.9), got {self.val_fraction}")
        if not 0 <= self.label_smoothing < 0.5:
            problems.append(f"label smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if not (self.ema == 0 or 0.5 <= self.ema < 1):
            problems.append(f"EMA decay must be 0 (off) or in [0.5, 1), got {self.ema}")
        if not 0 <= self.drawn_masks <= 1:
            problems.append(f"drawn masks must be a share in [0, 1], got {self.drawn_masks}")
        if not 0 <= self.low_res <= 1:
            problems.append(f"low-res share must be in [0, 1], got {self.low_res}")
        if not 0 <= self.mixup <= 10:
            problems.append(f"mixup alpha must be in [0, 10], got {self.mixup}")
        if not 0 < self.distill_weight <= 1:
            problems.append(f"distillation weight must be in (0, 1], got {self.distill_weight}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")):
            problems.append(f"device must be auto, cpu or cuda[:N], got {self.device!r}")
        if problems:
            raise ValueError("; ".join(problems))
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
