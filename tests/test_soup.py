"""maskrec.train.soup and ``python -m maskrec soup``: the mean of fine-tunes' weights, BatchNorm measured again."""
import json
from dataclasses import replace

import pytest
import torch
from torch import nn

from maskrec.models import checkpoint
from maskrec.train import distributed
from maskrec.config import PRESETS
from maskrec.data import batch_to_float
from maskrec.infer.predictor import Predictor
from maskrec.train.runs import new_run
from maskrec.train.soup import BN_BATCH, average, make_soup
from maskrec.train.loop import fit, load_data
from tests.test_cli import run_cli


@pytest.fixture(scope="module")
def ingredients(demo_dir, tmp_path_factory):
    """A Net1 trained 2 epochs, then two 1-epoch fine-tunes of it that differ in their seed only."""
    root = tmp_path_factory.mktemp("soup")
    base = replace(PRESETS["net1"], data=str(demo_dir), epochs=2, batch_size=32, seed=0, val_fraction=0.25, bf16=False)
    src = new_run(base, run_dir=root / "base")
    list(fit(base, src))
    runs = []
    for seed in (1, 2):
        cfg = replace(base, epochs=1, seed=seed, init=str(src.last_ckpt), augment=True, lr=5e-4)
        r = new_run(cfg, run_dir=root / f"tune{seed}")
        list(fit(cfg, r))
        runs.append(r)
    return base, runs


def test_average_takes_the_mean_of_float_tensors_and_the_first_ones_counts():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(7)}
    out = average([a, b])
    assert torch.equal(out["w"], torch.tensor([2.0, 4.0]))
    assert out["n"].item() == 3 and out["n"].dtype == torch.int64
    with pytest.raises(checkpoint.CheckpointError, match="ingredient 2 does not hold the same weights"):
        average([a, {"w": torch.zeros(3), "n": torch.tensor(1)}])
    with pytest.raises(checkpoint.CheckpointError, match="ingredient 2"):
        average([a, {"w": torch.zeros(2)}])


def _first_bn_input_means(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """Per channel, the mean over batches of BN_BATCH of each batch's mean input to the first
    BatchNorm (what update_bn's cumulative average of batch statistics holds), in eval mode."""
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    seen = []
    h = bn.register_forward_hook(lambda m, inp, out: seen.append(inp[0].mean(dim=(0, 2, 3))))
    model.eval()
    with torch.no_grad():
        for i in range(0, len(X), BN_BATCH):
            model(batch_to_float(X[i:i + BN_BATCH]))
    h.remove()
    return torch.stack(seen).mean(0), bn


@pytest.mark.slow  # trains a Net1 for 2 epochs and two 1-epoch fine-tunes of it (module fixture)
def test_a_soup_is_the_mean_of_its_ingredients_with_batchnorm_measured_on_the_train_faces(ingredients):
    base, runs = ingredients
    ck = make_soup([r.dir for r in runs])  # run folders: their last.pt
    states = [checkpoint.load(r.last_ckpt)["model"] for r in runs]
    conv = next(k for k in ck["model"] if k.endswith("weight") and ck["model"][k].dim() == 4)
    assert torch.allclose(ck["model"][conv], (states[0][conv] + states[1][conv]) / 2)
    assert not torch.equal(states[0][conv], states[1][conv])  # two seeds did move apart
    soup = checkpoint.model(ck)
    d = load_data(replace(base, seed=1), None, distributed.SINGLE, lambda p: None)
    want, bn = _first_bn_input_means(soup, d.Xtr)
    assert torch.allclose(bn.running_mean, want, atol=1e-4)
    mean_of_ingredients = [k for k in ck["model"] if k.endswith("running_mean")][0]
    naive = (states[0][mean_of_ingredients] + states[1][mean_of_ingredients]) / 2
    assert not torch.allclose(ck["model"][mean_of_ingredients], naive, atol=1e-4)  # measured, not averaged
    assert ck["soup"]["bn_images"] == len(d.Xtr)
    assert [i["seed"] for i in ck["soup"]["ingredients"]] == [1, 2]
    assert 0 <= ck["metrics"]["val_f1"] <= 1 and ck["metrics"]["val_auc"] is not None
    assert ck["config"]["val_fraction"] == 0.25 and ck["net"] == "net1"


@pytest.mark.slow  # trains a Net1 for 2 epochs and two 1-epoch fine-tunes of it (module fixture)
def test_the_soup_command_writes_a_checkpoint_the_app_loads(ingredients, tmp_path, capsys):
    _, runs = ingredients
    out = tmp_path / "soup.pt"
    code, stdout, _ = run_cli(capsys, "soup", runs[0].dir, runs[1].last_ckpt, "--out", out, "--json")
    assert code in (0, None)
    rep = json.loads(stdout.strip().splitlines()[-1])
    assert rep["ingredients"] == 2 and rep["net"] == "net1" and set(rep["val"]) >= {"f1", "auc", "loss"}
    pred = Predictor.load(out, engine="torch", exact=True)
    assert pred.net == "net1" and pred.threshold == 0.5
    # the figures it printed are the file's own net on the validation split
    assert rep["val"]["f1"] == pytest.approx(checkpoint.load(out)["metrics"]["val_f1"])
    code, _, err = run_cli(capsys, "soup", runs[0].dir, runs[1].dir, "--out", out)
    assert code == 2 and "exists" in err


@pytest.mark.slow  # trains a Net1 for 2 epochs and two 1-epoch fine-tunes of it (module fixture)
def test_the_soup_command_refuses_one_ingredient_mixed_nets_and_junk(ingredients, tmp_path, capsys):
    base, runs = ingredients
    code, _, err = run_cli(capsys, "soup", runs[0].dir, "--out", tmp_path / "a.pt")
    assert code == 2 and "at least two" in err
    other = dict(checkpoint.load(runs[1].last_ckpt), net="net2")
    checkpoint.save(tmp_path / "net2.pt", other)
    code, _, err = run_cli(capsys, "soup", runs[0].dir, tmp_path / "net2.pt", "--out", tmp_path / "b.pt")
    assert code == 2 and "a soup is of one net" in err
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    code, _, err = run_cli(capsys, "soup", runs[0].dir, tmp_path / "junk.pt", "--out", tmp_path / "c.pt")
    assert code == 2 and "junk.pt is not a readable checkpoint" in err
    assert not any((tmp_path / n).exists() for n in ("a.pt", "b.pt", "c.pt"))
