import pytest
import torch

from maskrec import models, nets
from maskrec.models import REGISTRY, build, count_weights, spec


@pytest.mark.parametrize("name,weights", [("net1", 402_770), ("net2", 1_814_866)])
def test_weight_counts_match_the_report(name, weights):
    """The torch-free count of the table (what `python -m maskrec models` prints) is the built
    net's, and both are the report's."""
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
