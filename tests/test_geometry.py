"""Layer geometry: shapes and receptive fields against hand counts and a real forward pass."""

import pytest

from filterlab.core.geometry import GeometryError, Layer, layer_table, receptive_fields


def notebook_layers():
    return [Layer("conv1", "conv", 16, 5, 1, 2), Layer("relu1", "act", detail="relu"),
            Layer("pool1", "pool", 0, 2, 2, detail="max"), Layer("conv2", "conv", 32, 5, 1, 2),
            Layer("relu2", "act", detail="relu"), Layer("pool2", "pool", 0, 2, 2, detail="max"),
            Layer("flatten", "flatten"), Layer("output", "linear", 10)]


def test_notebook_shapes_and_params():
    rows = layer_table(notebook_layers(), (1, 28, 28))
    shapes = {r.name: r.shape for r in rows}
    assert shapes["conv1"] == (16, 28, 28) and shapes["pool1"] == (16, 14, 14)
    assert shapes["pool2"] == (32, 7, 7) and shapes["flatten"] == (1568,) and shapes["output"] == (10,)
    assert sum(r.params for r in rows) == (16 * 25 + 16) + (16 * 32 * 25 + 32) + (1568 * 10 + 10)


def test_receptive_field_hand_counts():
    # conv1 5x5: 5; pool 2/2: 5 + 1 = 6, jump 2; conv2 5x5: 6 + 4 * 2 = 14, padding offsets 2 then 2 + 2 * 2 = 6
    f = receptive_fields(notebook_layers())
    assert (f["conv1"].size, f["conv1"].jump, f["conv1"].offset) == (5, 1, 2)
    assert (f["pool1"].size, f["pool1"].jump) == (6, 2)
    assert (f["conv2"].size, f["conv2"].jump, f["conv2"].offset) == (14, 2, 6)
    assert f["conv2"].region(0, 0) == (-6, 7, -6, 7)
    assert f["conv2"].region(13, 13) == (20, 33, 20, 33)


def test_a_layer_that_does_not_fit_is_named():
    layers = [Layer("conv1", "conv", 8, 28), Layer("pool1", "pool", 0, 2, 2)]
    with pytest.raises(GeometryError, match="pool1"):
        layer_table(layers, (1, 28, 28))


def test_receptive_field_agrees_with_gradients():
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 5, padding=2), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
                              torch.nn.Conv2d(1, 1, 3, padding=1, dilation=1))
    torch.nn.init.constant_(net[0].weight, 1.0)
    torch.nn.init.constant_(net[3].weight, 1.0)
    x = torch.ones(1, 1, 28, 28, requires_grad=True)
    net(x)[0, 0, 5, 6].backward()
    rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    layers = [Layer("c1", "conv", 1, 5, 1, 2), Layer("p1", "pool", 0, 2, 2), Layer("c2", "conv", 1, 3, 1, 1)]
    r0, r1, c0, c1 = receptive_fields(layers)["c2"].region(5, 6)
    assert (rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()) == (r0, r1, c0, c1)
