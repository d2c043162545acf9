"""lrpcore.models.resnet18/34/50 compute what torchvision's ResNets compute, with the same parameter names.

``torchvision.models.resnet`` is the real package where it imports, else the test stand-in
(``_stubs/torchvision/models/resnet.py``), whose parameter counts are checked against the numbers
torchvision documents for its models.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed; these tests need torch==2.13.0")
import zennit  # noqa: E402,F401  (with torch present, a missing zennit is an error, not a skip)
from torchvision.models import resnet as torchvision_resnet  # noqa: E402

import _resnet_harness as resnets  # noqa: E402
from lrpcore.errors import ModelFormatError  # noqa: E402
from lrpcore.models import state_dict_to_model  # noqa: E402
from lrpcore.models.resnet import parameter_shapes  # noqa: E402

#: torchvision's documented parameter counts (``ResNet18_Weights.IMAGENET1K_V1.meta["num_params"]`` etc.).
DOCUMENTED_PARAMETERS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032}


@pytest.mark.parametrize("arch", sorted(DOCUMENTED_PARAMETERS))
def test_torchvision_architecture_has_the_documented_size_and_lrpcores_names(arch):
    network = getattr(torchvision_resnet, arch)(num_classes=1000)
    assert sum(parameter.numel() for parameter in network.parameters()) == DOCUMENTED_PARAMETERS[arch]
    state = {key: tuple(value.shape) for key, value in network.state_dict().items()
             if not key.endswith("num_batches_tracked")}
    assert state == parameter_shapes(arch, 1000)
    assert list(state) == list(parameter_shapes(arch, 1000))


@pytest.mark.parametrize("arch, size", [("resnet18", 64), ("resnet34", 48), ("resnet50", 64), ("resnet18", 97)])
def test_lrpcore_resnet_computes_torchvisions_function(arch, size):
    assert resnets.forward_difference(arch, seed=0, size=size) <= 1e-12


def test_zennits_canonizer_recognises_the_blocks():
    from zennit.torchvision import ResNetCanonizer

    network = torchvision_resnet.resnet18(num_classes=3).double().eval()
    instances = ResNetCanonizer().apply(network)
    try:
        summed = [name for name, module in network.named_modules() if hasattr(module, "canonizer_sum")]
        assert len(summed) == 8 and "layer4.1" in summed
    finally:
        for instance in instances:
            instance.remove()


def test_state_dict_file_of_a_torchvision_resnet50_loads(tmp_path):
    network = torchvision_resnet.resnet50(num_classes=7).double().eval()
    path = tmp_path / "resnet50.pth"
    torch.save({"state_dict": network.state_dict()}, path)       # a checkpoint dict holding the state dict
    model = state_dict_to_model(path, "resnet50", input_size=64, dtype="float64")
    assert model["fc"].out_features == 7 and model.metadata.input_shape == (3, 64, 64)
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        reference = network(x).numpy()
    assert abs(model.forward(x.numpy()) - reference).max() <= 1e-12 * abs(reference).max()
    with pytest.raises(ModelFormatError, match=r"missing \[\], unexpected \['layer1.0.bn3.bias'.*\(165 in all\)"):
        state_dict_to_model(path, "resnet18")
