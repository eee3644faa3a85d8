import pytest
import torch

from maskrec.models import build as models
from maskrec.models import nets
from maskrec.config import PRESETS
from maskrec.models.build import REGISTRY, build, count_weights, spec


@pytest.mark.parametrize("name,weights", [("net1", 402_770), ("net2", 1_814_866), ("resnet18", 11_177_538)])
def test_weight_counts_match_the_report(name, weights):
    """The torch-free count of the row (what `python -m maskrec models` prints: a table's computed,
    a torchvision row's pinned) is the built net's, and for Net1/Net2 both are the report's."""
    assert count_weights(build(name)) == weights
    assert spec(name).weights == weights


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_the_tables_count_follows_a_changed_table(monkeypatch, dropout):
    """A table the report does not have (every option on, an odd input size) still counts as built."""
    s = nets.NetSpec("odd", 48, (nets.Conv(5, 3, 1, bn=True), nets.Conv(7, 5, 2, pool=True, dropout=True),
                                 nets.Conv(9, 1, 0, bn=True, pool=True)))
    monkeypatch.setitem(nets.REGISTRY, "odd", s)
    assert count_weights(build("odd", dropout=dropout)) == s.weights


def test_models_re_exports_the_torch_free_tables():
    assert models.REGISTRY is nets.REGISTRY and models.spec is nets.spec and models.NetSpec is nets.NetSpec


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_net_maps_its_input_to_log_probabilities(name):
    s = spec(name)
    model = build(name).eval()
    out = model(torch.rand(3, 3, s.input_size, s.input_size))
    assert out.shape == (3, 2)
    assert torch.allclose(out.exp().sum(1), torch.ones(3), atol=1e-5)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_net_splits_where_grad_cam_looks(name):
    """cam_parts: features end at a conv stage (maps of the crop's layout), and the class scores
    after them are the net's own output before LogSoftmax, computed by the net's own modules."""
    s = spec(name)
    torch.manual_seed(0)
    model = build(name).eval()
    x = torch.rand(2, 3, s.input_size, s.input_size)
    features, scores = models.cam_parts(model)
    with torch.no_grad():
        maps = features(x)
        assert maps.ndim == 4 and maps.shape[0] == 2 and maps.shape[2] == maps.shape[3] >= 2
        assert torch.allclose(torch.log_softmax(scores(maps), 1), model(x), atol=1e-5)
    assert {id(p) for p in (*features.parameters(), *scores.parameters())} == {id(p) for p in model.parameters()}


def test_resnet18_is_torchvisions_with_two_outputs_and_no_dropout():
    model = build("resnet18", dropout=0.3)  # the rate is a table's: a torchvision row has no dropout layers
    assert type(model.body).__name__ == "ResNet" and model.body.fc.out_features == 2
    assert not any(isinstance(m, torch.nn.Dropout) for m in model.modules()) and not spec("resnet18").has_dropout
    with torch.no_grad():  # 64 px: a stride-2 stem, a max-pool and three stride-2 stages leave layer4 2x2
        assert models.cam_parts(model.eval())[0](torch.rand(1, 3, 64, 64)).shape[1:] == (512, 2, 2)


def test_every_net_has_a_preset():
    """The Train page's select box and the CLI's --net read PRESETS: one recipe per registry row."""
    assert list(PRESETS) == list(REGISTRY) and all(PRESETS[n].net == n for n in REGISTRY)
    r = PRESETS["resnet18"]
    assert (r.batch_size, r.epochs, r.lr, r.weight_decay, r.schedule, r.augment) == (64, 30, 1e-3, 5e-4, "cosine", True)


def test_net2_has_the_reports_two_dropouts_at_the_configured_rate():
    drops = [m for m in build("net2", dropout=0.2).modules() if isinstance(m, torch.nn.Dropout)]
    assert [d.p for d in drops] == [0.2, 0.2]
    assert not any(isinstance(m, torch.nn.Dropout) for m in build("net1").modules())


def test_tables_follow_the_report():
    n1, n2 = spec("net1"), spec("net2")
    assert [c.out for c in n1.convs] == [8, 16, 32, 64, 128, 256]
    assert [c.k for c in n1.convs] == [5, 3, 3, 3, 3, 3]
    assert [i for i, c in enumerate(n1.convs) if c.pool] == [3, 4, 5]
    assert [i for i, c in enumerate(n1.convs) if c.bn] == [3, 5]
    assert [c.k for c in n2.convs] == [5, 5, 5, 5, 5, 3, 3]
    assert [i for i, c in enumerate(n2.convs) if c.pool] == [3, 5, 6]
    assert [i for i, c in enumerate(n2.convs) if c.bn] == [3, 6]
    assert n1.feature_size == 4 and n2.feature_size == 8


def test_unknown_net_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown net"):
        build("net9")
