"""maskrec.train.distill and ``train --distill``: trained nets' P(mask) as a soft NLL target."""
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from maskrec.models import checkpoint
from maskrec.config import PRESETS
from maskrec.train.distill import Teacher, soft_nll
from maskrec.models.build import build
from maskrec.train.recipe import nll
from maskrec.train.runs import new_run
from maskrec.train.loop import fit


def test_soft_nll_is_the_report_nll_for_one_hot_targets_and_label_smoothing_for_mixed_ones():
    torch.manual_seed(0)
    out = torch.randn(6, 2).log_softmax(1)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    one_hot = F.one_hot(y, 2).float()
    assert torch.allclose(soft_nll(out, one_hot), F.nll_loss(out, y))
    e = 0.1
    assert torch.allclose(soft_nll(out, (1 - e) * one_hot + e / 2), nll(out, y, e))


def _checkpoint(path, net: str, model: nn.Module) -> str:
    size = 32 if net == "net1" else 64
    checkpoint.save(path, {"net": net, "input_size": size, "threshold": 0.5, "config": {"dropout": 0.0},
                           "model": model.state_dict()})
    return str(path)


def _always_mask(net: str) -> nn.Module:
    """A net whose last layer ignores the image and says "mask" with P ~ 1."""
    model = build(net)
    fc = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        fc.weight.zero_()
        fc.bias.copy_(torch.tensor([-20.0, 20.0]))
    return model


def test_a_teacher_averages_its_nets_probabilities_each_at_its_own_input_size(tmp_path):
    torch.manual_seed(1)
    net1, net2 = build("net1").eval(), build("net2").eval()
    t = Teacher([_checkpoint(tmp_path / "a.pt", "net1", net1), _checkpoint(tmp_path / "b.pt", "net2", net2)],
                torch.device("cpu"))
    x = torch.rand(5, 3, 64, 64)  # a Net2 student's batch
    q = t.probs(x)
    with torch.no_grad():
        want = (net1(F.interpolate(x, size=(32, 32), mode="area")).exp() + net2(x).exp()) / 2
    assert q.shape == (5, 2) and torch.allclose(q, want, atol=1e-5)
    assert torch.allclose(q.sum(1), torch.ones(5), atol=1e-5)
    assert not q.requires_grad and not q.is_inference()  # usable as a plain target in the loss
    with pytest.raises(ValueError, match="at least one teacher"):
        Teacher([], torch.device("cpu"))


@pytest.mark.slow  # two 2-epoch Net1 runs on the demo data
def test_the_student_learns_what_its_teacher_says_not_only_the_labels(demo_dir, tmp_path):
    """A teacher that calls every face "mask" pulls a student trained on its target alone to call
    (nearly) every test face "mask"; the same run without it learns the labels."""
    from PIL import Image

    from maskrec.data import discover
    from maskrec.infer.predictor import Predictor
    teacher = _checkpoint(tmp_path / "teacher.pt", "net1", _always_mask("net1"))
    base = replace(PRESETS["net1"], data=str(demo_dir), epochs=2, batch_size=32, lr=2e-3, seed=0, bf16=False)
    shares = {}
    for name, cfg in (("plain", base), ("taught", replace(base, distill=teacher, distill_weight=1.0))):
        run = new_run(cfg, run_dir=tmp_path / name)
        list(fit(cfg, run))
        test = [i for i in discover(str(demo_dir)).items if i.split == "test"]
        p = Predictor.load(run.last_ckpt).predict_proba([Image.open(i.path) for i in test])
        shares[name] = (sum(x >= 0.5 for x in p) / len(p), sum((x >= 0.5) == i.label for x, i in zip(p, test)) / len(p))
    assert shares["taught"][0] > 0.95, shares  # it says what the teacher says
    assert shares["plain"][1] > 0.7 and shares["plain"][0] < 0.8, shares  # without it: the labels
    assert checkpoint.load(tmp_path / "taught" / "last.pt")["config"]["distill"] == teacher
