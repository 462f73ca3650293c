"""Every registered model: forward, backward, gradients everywhere, finite outputs (timm-style)."""

from __future__ import annotations

import pytest
import torch

import hourglass
from hourglass.models.summary import count_macs, count_parameters

SMALL_INPUT = {"hourglass-module": (256, 16, 16)}


@pytest.mark.parametrize("name", hourglass.list_models())
def test_forward_backward_every_parameter_gets_gradient(name: str) -> None:
    torch.manual_seed(0)
    model = hourglass.create_model(name).train()
    size = SMALL_INPUT.get(name, (3, 64, 64))
    x = torch.rand(2, *size)
    out = model(x)
    if isinstance(model, hourglass.StackedHourglass):
        assert out.shape == (2, model.num_stacks, 16, size[1] // 4, size[2] // 4)
    else:
        assert out.shape == x.shape
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name}: {pname} has an all-zero gradient"


def test_list_models_and_unknown_name() -> None:
    assert hourglass.list_models() == [
        "bearpaw-hg1",
        "bearpaw-hg2",
        "bearpaw-hg4",
        "bearpaw-hg8",
        "hg1",
        "hg2",
        "hg4",
        "hg8",
        "hourglass-module",
    ]
    with pytest.raises(ValueError, match=r"unknown model 'hg3'.*hg1, hg2"):
        hourglass.create_model("hg3")


def test_overrides_reach_the_builder() -> None:
    model = hourglass.create_model("hg2", num_joints=17, num_channels=64, depth=3).eval()
    assert (model.num_stacks, model.num_joints, model.num_channels, model.depth) == (2, 17, 64, 3)
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 2, 17, 8, 8)


# Official layer layout, 16 joints, 256x256: parameters and convolution multiply-adds.
OFFICIAL = {
    "hg1": (3_426_448, 5_150_343_168, "3.43M", "5.15"),
    "hg2": (6_570_400, 8_334_606_336, "6.57M", "8.33"),
    "hg4": (12_858_304, 14_703_132_672, "12.86M", "14.70"),
    "hg8": (25_434_112, 27_440_185_344, "25.43M", "27.44"),
}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_parameter_and_multiply_add_counts(name: str) -> None:
    params, macs, params_text, gmacs_text = OFFICIAL[name]
    with torch.device("meta"):
        model = hourglass.create_model(name)
    assert count_parameters(model) == params
    assert f"{params / 1e6:.2f}M" == params_text
    assert count_macs(model, (3, 256, 256)) == macs
    assert f"{macs / 1e9:.2f}" == gmacs_text


def test_seed_module_parameter_count() -> None:
    assert count_parameters(hourglass.create_model("hourglass-module")) == 3_217_920
    assert count_parameters(hourglass.ResidualBlock(256)) == 214_528


def test_seeded_construction_and_forward_are_deterministic() -> None:
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = hourglass.create_model("hg1", num_channels=32).eval()
        torch.manual_seed(7)
        x = torch.rand(1, 3, 64, 64)
        outs.append(model(x))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    torch.manual_seed(124)
    other = hourglass.create_model("hg1", num_channels=32).eval()
    assert not torch.equal(other(x), outs[0])


def test_grad_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    model = hourglass.create_model("hg2", num_channels=32, depth=2).train()
    x = torch.rand(2, 3, 32, 32)
    grads = []
    for enable in (False, True):
        model.zero_grad()
        model.set_grad_checkpointing(enable)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        model(x).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
        model.load_state_dict(state)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_list_models_filters_with_a_wildcard() -> None:
    assert hourglass.list_models("hg*") == ["hg1", "hg2", "hg4", "hg8"]
    assert hourglass.list_models("bearpaw-hg[12]") == ["bearpaw-hg1", "bearpaw-hg2"]
    assert hourglass.list_models("resnet*") == []
    assert hourglass.list_models() == hourglass.list_models("*")


def test_a_second_registration_of_a_name_is_refused() -> None:
    from hourglass.models.registry import register_model

    def hg2(**kwargs: object) -> torch.nn.Module:
        return torch.nn.Identity()

    with pytest.raises(ValueError, match=r"model 'hg2' is already registered by hourglass\.models\.registry\.hg2"):
        register_model(hg2)
    assert isinstance(hourglass.create_model("hg2", num_channels=32, depth=1), hourglass.StackedHourglass)
