"""Import checkpoints of princeton-vl/pytorch_stacked_hourglass (the authors' lab's PyTorch code).

Their ``PoseNet(nstack, inp_dim=256, oup_dim=16)`` is the same network as our
:class:`~hourglass.models.StackedHourglass` (``models/posenet.py``, ``models/layers.py``); only the
names differ. Per stack ``s`` and hourglass level ``i = 1..depth`` (level 1 at full resolution, ``P_i`` =
``"low2." * (i - 1)``, the recursion into the next level):

=====================================  ==========================================
theirs                                 ours
=====================================  ==========================================
``pre.0.conv``, ``pre.0.bn``           ``stem.conv``, ``stem.bn``
``pre.1``, ``pre.3``, ``pre.4``        ``stem.res1``, ``stem.res2``, ``stem.res3``
``hgs.s.0.{P_i}up1``                   ``hourglasses.s.skipconv_i``
``hgs.s.0.{P_i}low1``                  ``hourglasses.s.downconv_i``
``hgs.s.0.{P_i}low3``                  ``hourglasses.s.upconv_{depth + 1 - i}``
``hgs.s.0.{P_(depth+1)}``              ``hourglasses.s.midconv_1`` (innermost ``low2``)
``features.s.0``, ``features.s.1``     ``features.s.res``, ``features.s.conv`` + ``.bn``
``outs.s.conv``                        ``heads.s``
``merge_features.s.conv.conv``         ``merge_features.s``
``merge_preds.s.conv.conv``            ``merge_heatmaps.s``
=====================================  ==========================================

and inside each ``Residual``: ``bn1/bn2/bn3`` keep their names, ``convN.conv`` -> ``convN``,
``skip_layer.conv`` -> ``skip``. Their ``Residual`` builds ``skip_layer`` in every block but uses it only
when input and output widths differ (``need_skip``); the unused ones (every block but ``pre.1``) are
dropped. Their ``increase`` option (wider lower branches) has no counterpart here and is refused.

Their input convention (``data/MPII/dp.py``, ``test.py``): RGB images (``cv2.imread(...)[:, :, ::-1]``),
float values ``/ 255`` in [0, 1], no mean/std normalisation, 256x256 crops fed channels-last
``(B, H, W, 3)`` (``PoseNet.forward`` permutes to ``(B, 3, H, W)``); heatmaps 64x64. Ours takes
``(B, 3, H, W)`` directly, otherwise the same values.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hourglass.checkpoint.io import mismatch_summary, save_checkpoint
from hourglass.checkpoint.meta import CheckpointMeta
from hourglass.data.codec import HeatmapCodec
from hourglass.data.skeletons import MPII_16
from hourglass.errors import CheckpointError, ConfigError
from hourglass.models import StackedHourglass, create_model

_STEM_KEY = "pre.0.conv.weight"
_PRESETS = {1: "hg1", 2: "hg2", 4: "hg4", 8: "hg8"}


def _residual(ours: str) -> str:
    """Their key in a ``Residual`` for ours in a ``ResidualBlock``: ``conv1.weight`` -> ``conv1.conv.weight``."""
    head, _, tail = ours.partition(".")
    if head in ("conv1", "conv2", "conv3"):
        return f"{head}.conv.{tail}"
    if head == "skip":
        return f"skip_layer.conv.{tail}"
    return ours


def princeton_key(ours: str, depth: int) -> str:
    """The key in a princeton-vl ``PoseNet`` state dict that holds our state-dict entry ``ours``."""
    parts = ours.split(".")
    root = parts[0]
    if root == "stem":
        sub, rest = parts[1], ".".join(parts[2:])
        if sub in ("conv", "bn"):
            return f"pre.0.{sub}.{rest}"
        index = {"res1": 1, "res2": 3, "res3": 4}[sub]
        return f"pre.{index}.{_residual(rest)}"
    if root == "hourglasses":
        s, level, rest = parts[1], parts[2], ".".join(parts[3:])
        match = re.fullmatch(r"(skipconv|downconv|upconv|midconv)_(\d+)", level)
        if match is None:
            raise KeyError(ours)
        kind, n = match.group(1), int(match.group(2))
        if kind == "midconv":
            if n != 1:
                raise KeyError(ours)
            return f"hgs.{s}.0.{'low2.' * depth}{_residual(rest)}"
        i = depth + 1 - n if kind == "upconv" else n
        name = {"skipconv": "up1", "downconv": "low1", "upconv": "low3"}[kind]
        return f"hgs.{s}.0.{'low2.' * (i - 1)}{name}.{_residual(rest)}"
    if root == "features":
        s, sub, rest = parts[1], parts[2], ".".join(parts[3:])
        if sub == "res":
            return f"features.{s}.0.{_residual(rest)}"
        return f"features.{s}.1.{sub}.{rest}"
    if root == "heads":
        return f"outs.{parts[1]}.conv.{'.'.join(parts[2:])}"
    if root in ("merge_features", "merge_heatmaps"):
        name = "merge_features" if root == "merge_features" else "merge_preds"
        return f"{name}.{parts[1]}.conv.conv.{'.'.join(parts[2:])}"
    raise KeyError(ours)


def strip_prefix(state: Mapping[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """Remove the trainer's ``model.module.`` (or any other) prefix, found from the stem's key."""
    stems = [k for k in state if k.endswith(_STEM_KEY)]
    if not stems:
        raise CheckpointError(f"{where}: not a princeton-vl PoseNet state dict (no '{_STEM_KEY}' tensor)")
    prefix = min(stems, key=len)[: -len(_STEM_KEY)]
    outside = [k for k in state if not k.startswith(prefix)]
    if outside:
        raise CheckpointError(f"{where}: unexpected tensor(s) {', '.join(outside[:5])} outside '{prefix}'")
    return {k[len(prefix) :]: v for k, v in state.items()}


def infer_config(state: Mapping[str, torch.Tensor], where: str) -> dict[str, int]:
    """``num_stacks, num_joints, num_channels, depth, in_channels`` of a princeton-vl state dict (no prefix)."""
    try:
        stacks = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"hgs\.(\d+)\.", k)))
        depth = 1 + max(
            (k.split(".up1.")[0] + ".").count("low2.") for k in state if k.startswith("hgs.0.0.") and ".up1." in k
        )
        return {
            "num_stacks": stacks,
            "num_joints": int(state["outs.0.conv.weight"].shape[0]),
            "num_channels": int(state["pre.4.conv3.conv.weight"].shape[0]),
            "depth": depth,
            "in_channels": int(state[_STEM_KEY].shape[1]),
        }
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{where}: not a princeton-vl PoseNet state dict (cannot read {err})") from err


def map_princeton_state(
    state: Mapping[str, torch.Tensor], model: StackedHourglass, where: str = "state dict"
) -> dict[str, torch.Tensor]:
    """Our state dict for ``model`` from a princeton-vl state dict (prefix already stripped).

    Every tensor of ``model`` must be found (BatchNorm ``num_batches_tracked``, absent from checkpoints of
    PyTorch < 0.4.1, is set to 0), every tensor of ``state`` must be used except the unused
    ``skip_layer`` convolutions; shapes must agree. Errors name the tensor.
    """
    mapped: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    missing, misshaped = [], []
    for ours, target in model.state_dict().items():
        theirs = princeton_key(ours, model.depth)
        if theirs not in state:
            if ours.endswith("num_batches_tracked"):
                mapped[ours] = torch.zeros_like(target)
                continue
            missing.append(f"{theirs} (for {ours})")
            continue
        tensor = state[theirs]
        if tensor.shape != target.shape:
            misshaped.append(f"{theirs} {tuple(tensor.shape)}, expected {tuple(target.shape)} for {ours}")
        mapped[ours] = tensor.detach().to(target.dtype).clone()
        used.add(theirs)
    unused = [k for k in state if k not in used]
    unexpected = [k for k in unused if ".skip_layer." not in k]
    if missing or misshaped or unexpected:
        problems = mismatch_summary(missing, unexpected, misshaped)
        raise CheckpointError(f"{where}: princeton-vl weights do not fit: {problems}")
    return mapped


def read_princeton_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state dict without prefix, extra)`` of their ``checkpoint.pt`` (``{'state_dict': ...}``) or a bare state dict.

    Loaded with ``torch.load(weights_only=True)``: tensors and plain containers only, no code runs.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"{path}: cannot read as a weights-only PyTorch checkpoint ({err})") from err
    extra: dict[str, Any] = {}
    if isinstance(obj, Mapping) and "state_dict" in obj:
        extra = {k: obj[k] for k in ("epoch",) if isinstance(obj.get(k), int)}
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors or a dict with 'state_dict'")
    return strip_prefix(obj, str(path)), extra


def convert_princeton_vl(src: str | os.PathLike[str], out: str | os.PathLike[str]) -> tuple[Path, CheckpointMeta]:
    """Convert a princeton-vl checkpoint ``src`` into our ``.safetensors`` checkpoint ``out`` (written atomically).

    Returns ``(out, meta)``; ``meta`` records their input convention (256x256 RGB in [0, 1],
    64x64 heatmaps, MPII joint order, sigma 1 heatmap px).
    """
    state, extra = read_princeton_checkpoint(src)
    config = infer_config(state, str(src))
    stacks = config.pop("num_stacks")
    if stacks not in _PRESETS:
        raise CheckpointError(f"{src}: {stacks} stacks; presets exist for {sorted(_PRESETS)} stacks")
    model = create_model(_PRESETS[stacks], **config)
    model.load_state_dict(map_princeton_state(state, model, str(src)), strict=True)
    meta = CheckpointMeta(
        model=_PRESETS[stacks],
        model_kwargs=config,
        codec=HeatmapCodec((256, 256), (64, 64), sigma=1.0),
        skeleton=MPII_16 if config["num_joints"] == 16 else None,
        epoch=extra.get("epoch", 0),
        source={"from": "princeton-vl/pytorch_stacked_hourglass", "file": Path(src).name},
    )
    return save_checkpoint(out, model, meta), meta


CONVERTERS = {"princeton-vl": convert_princeton_vl}


def convert_checkpoint(
    source: str, src: str | os.PathLike[str], out: str | os.PathLike[str]
) -> tuple[Path, CheckpointMeta]:
    """Convert foreign weights ``src`` from ``source`` (``princeton-vl``) into our checkpoint ``out``."""
    if source not in CONVERTERS:
        raise ConfigError(f"unknown source {source!r}; supported: {', '.join(CONVERTERS)}")
    return CONVERTERS[source](src, out)
