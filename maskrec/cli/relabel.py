"""``relabel DATA FILE... --to 0|1|exclude|keep`` (or ``--undo``): record review decisions.

Nothing in DATA changes: the decisions go to the dataset's overrides file under MASKREC_HOME
(``maskrec.data.overrides``), which every later scan, training and evaluation applies. FILE is a path
inside DATA: absolute, relative to DATA, or relative to the working directory."""
from __future__ import annotations

from maskrec.data import overrides
from maskrec.data import discover
from maskrec.cli.common import UserError

TARGETS = {"0": ("relabel", 0), "1": ("relabel", 1), "exclude": ("exclude", None), "keep": ("keep", None)}


def add_arguments(s):
    s.add_argument("data", help="dataset folder or .zip")
    s.add_argument("files", nargs="+", metavar="FILE", help="images of the dataset")
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--to", choices=list(TARGETS), help="new label (0 bare, 1 covered), exclude, or keep as is")
    what.add_argument("--undo", action="store_true", help="remove the decisions on these files")


def run(a):
    ds = discover(a.data, overrides=False)  # decisions name the folder's files, whatever was decided before
    try:
        rels = [overrides.relative(ds, f) for f in a.files]  # every FILE checked before any is written
    except overrides.OverridesError as e:
        raise UserError(str(e)) from None
    for rel in rels:
        if a.undo:
            print(f"{rel}: {'undone' if overrides.undo(ds, rel) else 'no decision to undo'}")
        else:
            d = overrides.decide(ds, rel, *TARGETS[a.to])
            print(f"{rel}: {d.action}" + (f" -> {d.label}" if d.label is not None else ""))
    s = overrides.summary(ds)
    print(f"{s['total']} decision(s) in {s['csv']}: {s['relabel']} relabelled, {s['exclude']} excluded, "
          f"{s['keep']} kept")
