"""torch.fx conversion of module graphs: residual sums, concatenations, flattening, and clear refusals."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
nn = torch.nn
F = torch.nn.functional

import lrpcore  # noqa: E402
from lrpcore import Graph, Sequential  # noqa: E402
from lrpcore.errors import ModelFormatError  # noqa: E402
from lrpcore.io.torch import from_torch, to_torch  # noqa: E402
from lrpcore.layers import Add, Concat, Flatten  # noqa: E402


class Residual(nn.Module):
    """Conv stem, a residual block that calls one ReLU module twice (as torchvision's BasicBlock), a
    two-branch concatenation, and a functional flatten."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.left = nn.Conv2d(4, 2, 1)
        self.right = nn.Conv2d(4, 3, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(5 * 4 * 4, 3)

    def forward(self, x):
        x = self.relu(self.stem(x))
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.conv2(out)
        out = self.relu(out + identity)
        out = self.pool(out)
        out = torch.cat([self.left(out), F.relu(self.right(out))], dim=1)
        return self.fc(torch.flatten(out, 1))


def _residual(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    module = Residual().double()
    with torch.no_grad():
        module.bn1.running_mean.uniform_(-0.5, 0.5)
        module.bn1.running_var.uniform_(0.5, 2.0)
    return module.eval()


def _forward(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def test_a_residual_network_converts_to_a_graph_computing_the_same_function():
    module = _residual()
    graph = from_torch(module, input_shape=(3, 8, 8))
    assert isinstance(graph, Graph) and not graph.is_chain
    assert graph.names == ["stem", "relu", "conv1", "bn1", "relu_1", "conv2", "add", "relu_2", "pool", "left",
                           "right", "relu_3", "cat", "flatten", "fc"]
    assert graph.node("add").inputs == ("conv2", "relu") and isinstance(graph["add"], Add)
    assert isinstance(graph["cat"], Concat) and graph["cat"].axis == 1 and isinstance(graph["flatten"], Flatten)
    x = np.random.default_rng(0).normal(size=(2, 3, 8, 8))
    np.testing.assert_allclose(graph.forward(x), _forward(module, x), rtol=1e-12, atol=1e-12)
    folded = lrpcore.canonize(graph)
    assert "bn1" not in folded.names
    np.testing.assert_allclose(folded.forward(x), _forward(module, x), rtol=1e-10, atol=1e-12)


def test_lrp0_of_a_converted_bias_free_residual_net_is_autograd_gradient_times_input():
    module = _residual(seed=1)
    for sub in module.modules():
        if isinstance(sub, (nn.Conv2d, nn.Linear)) and sub.bias is not None:
            nn.init.zeros_(sub.bias)
    module.bn1 = nn.Identity()
    graph = from_torch(module, input_shape=(3, 8, 8))
    x = np.random.default_rng(2).uniform(0, 1, size=(2, 3, 8, 8))
    explanation = lrpcore.explain(graph, x, target=1)
    inputs = torch.from_numpy(x).requires_grad_(True)
    module(inputs)[:, 1].sum().backward()
    np.testing.assert_allclose(explanation.relevance, (inputs.grad * inputs).detach().numpy(), rtol=1e-9, atol=1e-13)


def test_view_by_batch_size_and_tensor_methods_convert():
    class Methods(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3)
            self.fc = nn.Linear(3 * 2 * 2, 2)

        def forward(self, x):
            y = self.conv(x).relu()
            y = y.add(self.conv(x))
            y = y.view(y.size(0), -1)
            z = y.reshape(y.size()[0], -1)
            return self.fc(z.contiguous())

    torch.manual_seed(0)
    module = Methods().double().eval()
    graph = from_torch(module, input_shape=(2, 4, 4))
    assert graph.names == ["conv", "relu", "conv_1", "add", "flatten", "flatten_1", "fc"]
    x = np.random.default_rng(1).normal(size=(3, 2, 4, 4))
    np.testing.assert_allclose(graph.forward(x), _forward(module, x), rtol=1e-12, atol=1e-12)


def test_a_chain_still_converts_to_a_sequential_with_its_indices():
    module = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Identity(), nn.Linear(3, 2)).eval()
    model = from_torch(module, input_shape=(4,))
    assert isinstance(model, Sequential) and len(model) == 3


class _Sigmoid(nn.Module):
    def forward(self, x):
        return torch.sigmoid(x) + x


class _Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return self.fc(x) * 2


class _Branching(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return x


class _TwoInputs(nn.Module):
    def forward(self, x, y):
        return x + y


class _BatchCat(nn.Module):
    def forward(self, x):
        return torch.cat([x, x], dim=0)


class _AddConstant(nn.Module):
    def forward(self, x):
        return x + 1.0


@pytest.mark.parametrize("module, words", [
    (_Sigmoid(), r"function torch.sigmoid at traced node 'sigmoid' \(reading \['x'\]\)"),
    (_Scaled(), r"function _operator.mul at traced node 'mul' \(reading \['fc'\]\)"),
    (_Branching(), r"cannot trace _Branching.forward with torch.fx"),
    (_TwoInputs(), r"more than one input"),
    (_BatchCat(), r"dim=0; only a non-batch axis"),
    (_AddConstant(), r"the constant 1.0, not a tensor"),
])
def test_unsupported_operations_are_named_with_their_place(module, words):
    with pytest.raises(ModelFormatError, match=words):
        from_torch(module.eval(), input_shape=(3,))


def test_to_torch_of_a_graph_computes_the_same_function_and_converts_back():
    graph = from_torch(_residual(seed=3), input_shape=(3, 8, 8))
    twin = to_torch(graph)
    x = np.random.default_rng(4).normal(size=(2, 3, 8, 8))
    np.testing.assert_allclose(_forward(twin, x), graph.forward(x), rtol=1e-12, atol=1e-12)
    again = from_torch(twin, input_shape=(3, 8, 8))
    np.testing.assert_allclose(again.forward(x), graph.forward(x), rtol=1e-12, atol=1e-12)


class InvertedResidual(nn.Module):
    """MobileNet-v2's block: 1×1 expansion, 3×3 depthwise, 1×1 linear bottleneck, and the skip connection."""

    def __init__(self, channels: int = 4, expansion: int = 3):
        super().__init__()
        hidden = channels * expansion
        self.expand = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
                                       nn.BatchNorm2d(hidden), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 3))

    def forward(self, x):
        return self.head(x + self.project(self.depthwise(self.expand(x))))


def test_a_mobilenet_v2_block_with_its_residual_converts_and_explains():
    torch.manual_seed(5)
    module = InvertedResidual().double()
    for sub in module.modules():
        if isinstance(sub, nn.BatchNorm2d):
            with torch.no_grad():
                sub.running_mean.uniform_(-0.2, 0.2)
                sub.running_var.uniform_(0.5, 1.5)
    module.eval()
    graph = from_torch(module, input_shape=(4, 8, 8))
    assert isinstance(graph["add"], Add) and graph["depthwise.0"].groups == 12
    folded = lrpcore.canonize(graph)
    assert not any(isinstance(layer, lrpcore.layers.BatchNorm2d) for layer in folded.layers)
    assert folded["depthwise.0"].groups == 12
    x = np.random.default_rng(6).uniform(0, 1, size=(2, 4, 8, 8))
    np.testing.assert_allclose(folded.forward(x), _forward(module, x), rtol=1e-10, atol=1e-12)
    explanation = lrpcore.explain(folded, x, composite="epsilon_plus", record=True)
    add = explanation.trace["add"]
    np.testing.assert_allclose(add.sum_in, add.sum_out, rtol=1e-5)       # Norm at the Add: ε = 1e-6 only
    grad = lrpcore.gradient(folded, x, target=1)[0]
    inputs = torch.from_numpy(x).requires_grad_(True)
    module(inputs)[:, 1].sum().backward()
    np.testing.assert_allclose(grad, inputs.grad.numpy(), rtol=1e-9, atol=1e-12)
