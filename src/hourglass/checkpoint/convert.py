"""Import published Stacked Hourglass weights as our ``.safetensors`` checkpoints.

Families (``hourglass convert --from bearpaw|princeton-vl|torch7|auto``); ``auto`` tells them apart by the
file's tensor names. Pickled files load with ``torch.load(weights_only=True)`` (no code runs).

princeton-vl/pytorch_stacked_hourglass (the authors' lab's PyTorch code)
-----------------------------------------------------------------------

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

bearpaw/pytorch-pose (and anibali/pytorch-stacked-hourglass's ``bearpaw_hg*.pth`` copies)
------------------------------------------------------------------------------------------

``pose/models/hourglass.py``: ``HourglassNet(Bottleneck, num_stacks, num_blocks)``, built here by the
``bearpaw-hgN`` presets (``num_blocks`` blocks per unit, its wider stem; see
:class:`~hourglass.models.StackedHourglass`). Per stack ``s``, level ``i`` (1 = full resolution) is their
``hg.s.hg.{depth - i}``, whose children ``0, 1, 2`` are ``up1, low1, low3`` and whose ``3`` (innermost
level only) is the bottom:

=====================================  ==========================================
theirs                                 ours
=====================================  ==========================================
``conv1``, ``bn1``                     ``stem.conv``, ``stem.bn``
``layer1.0``, ``layer2.0``,            ``stem.res1``, ``stem.res2``, ``stem.res3``
``layer3.0``
``hg.s.hg.{depth-i}.0.j``              ``hourglasses.s.skipconv_i[.j]``
``hg.s.hg.{depth-i}.1.j``              ``hourglasses.s.downconv_i[.j]``
``hg.s.hg.{depth-i}.2.j``              ``hourglasses.s.upconv_{depth + 1 - i}[.j]``
``hg.s.hg.0.3.j``                      ``hourglasses.s.midconv_{j + 1}``
``res.s.j``                            ``features.s.res[.j]``
``fc.s.0``, ``fc.s.1``                 ``features.s.conv``, ``features.s.bn``
``score.s``, ``fc_.s``, ``score_.s``   ``heads.s``, ``merge_features.s``, ``merge_heatmaps.s``
=====================================  ==========================================

(``[.j]`` only when ``num_blocks > 1``), and in a ``Bottleneck`` ``downsample.0`` -> ``skip``. Their
files: a bare ``state_dict`` (anibali's release assets) or ``checkpoint.pth.tar``, a dict with
``state_dict`` (keys prefixed ``module.`` by DataParallel), ``epoch``, ``arch``, ``best_acc``,
``optimizer``. Inputs: RGB in [0, 1] minus the MPII training mean (their ``color_normalize`` subtracts the
mean only; anibali's predictor passes a standard deviation too, which that same function ignores),
256x256 crops, 64x64 heatmaps; the converted checkpoint's model subtracts the mean itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hourglass.checkpoint.io import load_state, load_weights_only, mismatch_summary, save_checkpoint
from hourglass.checkpoint.meta import CheckpointMeta
from hourglass.data.codec import HeatmapCodec
from hourglass.data.skeletons import MPII_16
from hourglass.errors import CheckpointError, ConfigError
from hourglass.extras import require_extra
from hourglass.models import StackedHourglass, create_model
from hourglass.models.registry import MPII_RGB_MEAN

_STEM_KEY = "pre.0.conv.weight"
_PRESETS = {1: "hg1", 2: "hg2", 4: "hg4", 8: "hg8"}
_BEARPAW_KEY = "layer1.0.conv1.weight"
MPII_CODEC = HeatmapCodec((256, 256), (64, 64), sigma=1.0)
"""The data settings of every published MPII model: 256x256 crops, 64x64 heatmaps, sigma 1 (MPII joint order)."""


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


def strip_prefix(
    state: Mapping[str, torch.Tensor], where: str, anchor: str = _STEM_KEY, what: str = "princeton-vl PoseNet"
) -> dict[str, torch.Tensor]:
    """Remove the trainer's ``model.module.`` (or any other) prefix, found from the key ``anchor``."""
    stems = [k for k in state if k == anchor or k.endswith("." + anchor)]
    if not stems:
        raise CheckpointError(f"{where}: not a {what} state dict (no '{anchor}' tensor){_family_hint(state)}")
    prefix = min(stems, key=len)[: -len(anchor)]
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
    return map_state(
        state, model, lambda ours: princeton_key(ours, model.depth), where, "princeton-vl", idle=".skip_layer."
    )


def map_state(
    state: Mapping[str, torch.Tensor],
    model: nn.Module,
    theirs_of: Callable[[str], str],
    where: str,
    family: str,
    idle: str | None = None,
) -> dict[str, torch.Tensor]:
    """Our state dict for ``model``: entry ``k`` is ``state[theirs_of(k)]``.

    Every tensor of ``model`` must be found (BatchNorm ``num_batches_tracked``, absent from files of
    PyTorch < 0.4.1, is set to 0); every tensor of ``state`` must be used, except those whose name contains
    ``idle``; shapes must agree. A mismatch is one :class:`CheckpointError` naming up to five tensors of each kind.
    """
    mapped: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    missing, misshaped = [], []
    for ours, target in model.state_dict().items():
        theirs = theirs_of(ours)
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
    unexpected = [k for k in unused if idle is None or idle not in k]
    if missing or misshaped or unexpected:
        problems = mismatch_summary(missing, unexpected, misshaped)
        raise CheckpointError(f"{where}: {family} weights do not fit: {problems}")
    return mapped


def read_state_dict(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state dict, extra)`` of a pickled PyTorch file: a bare state dict or a dict with ``state_dict``.

    Loaded with ``torch.load(weights_only=True)``: tensors and plain containers only, no code runs; a file
    that needs code to load is refused. ``extra`` keeps ``epoch`` and ``arch`` when present.
    """
    path = Path(path)
    _is_torch_save(path)  # refuses a missing file and a .safetensors one, each in its own words
    obj = load_weights_only(path, "a weights-only PyTorch checkpoint")
    extra: dict[str, Any] = {}
    if isinstance(obj, Mapping) and "state_dict" in obj:
        extra = {k: obj[k] for k in ("epoch", "arch") if isinstance(obj.get(k), int | str)}
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors or a dict with 'state_dict'")
    return dict(obj), extra


def read_princeton_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state dict without prefix, extra)`` of their ``checkpoint.pt`` (``{'state_dict': ...}``) or a bare one."""
    state, extra = read_state_dict(path)
    return strip_prefix(state, str(path)), extra


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
    meta = _meta(
        _PRESETS[stacks],
        config,
        epoch=extra.get("epoch", 0),
        source={"from": "princeton-vl/pytorch_stacked_hourglass", "file": Path(src).name},
    )
    return save_checkpoint(out, model, meta), meta


def _meta(name: str, kwargs: dict[str, Any], epoch: int, source: dict[str, Any]) -> CheckpointMeta:
    """The metadata of a converted MPII model: :data:`MPII_CODEC`, and the MPII skeleton when it has 16 joints."""
    return CheckpointMeta(
        model=name,
        model_kwargs=kwargs,
        codec=MPII_CODEC,
        skeleton=MPII_16 if kwargs["num_joints"] == 16 else None,
        epoch=epoch,
        source=source,
    )


def bearpaw_key(ours: str, depth: int, num_blocks: int) -> str:
    """The key in a bearpaw/pytorch-pose ``HourglassNet`` state dict that holds our state-dict entry ``ours``."""
    parts = ours.split(".")
    root = parts[0]

    def unit(rest: list[str]) -> str:
        """``[j.]block-key`` -> ``j.block-key`` with their ``downsample.0`` for our ``skip``."""
        if num_blocks == 1:
            rest = ["0", *rest]
        if rest[1] == "skip":
            rest = [rest[0], "downsample", "0", *rest[2:]]
        return ".".join(rest)

    if root == "stem":
        sub = parts[1]
        if sub in ("conv", "bn"):
            return f"{sub}1.{'.'.join(parts[2:])}"
        layer = {"res1": 1, "res2": 2, "res3": 3}[sub]
        rest = parts[2:]
        if rest[0] == "skip":
            rest = ["downsample", "0", *rest[1:]]
        return f"layer{layer}.0.{'.'.join(rest)}"
    if root == "hourglasses":
        s, level = parts[1], parts[2]
        match = re.fullmatch(r"(skipconv|downconv|upconv|midconv)_(\d+)", level)
        if match is None:
            raise KeyError(ours)
        kind, n = match.group(1), int(match.group(2))
        if kind == "midconv":
            return f"hg.{s}.hg.0.3.{n - 1}.{'.'.join(parts[3:])}"
        i = depth + 1 - n if kind == "upconv" else n
        child = {"skipconv": 0, "downconv": 1, "upconv": 2}[kind]
        return f"hg.{s}.hg.{depth - i}.{child}.{unit(parts[3:])}"
    if root == "features":
        s, sub = parts[1], parts[2]
        if sub == "res":
            return f"res.{s}.{unit(parts[3:])}"
        return f"fc.{s}.{ {'conv': 0, 'bn': 1}[sub] }.{'.'.join(parts[3:])}"
    name = {"heads": "score", "merge_features": "fc_", "merge_heatmaps": "score_"}.get(root)
    if name is None:
        raise KeyError(ours)
    return f"{name}.{parts[1]}.{'.'.join(parts[2:])}"


def infer_bearpaw_config(state: Mapping[str, torch.Tensor], where: str) -> dict[str, int]:
    """``num_stacks, num_blocks, num_joints, num_channels, depth, in_channels`` of a bearpaw state dict."""
    try:
        stacks = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"hg\.(\d+)\.", k)))
        blocks = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"res\.0\.(\d+)\.", k)))
        depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"hg\.0\.hg\.(\d+)\.", k)))
        return {
            "num_stacks": stacks,
            "num_blocks": blocks,
            "num_joints": int(state["score.0.weight"].shape[0]),
            "num_channels": int(state["score.0.weight"].shape[1]),
            "depth": depth,
            "in_channels": int(state["conv1.weight"].shape[1]),
        }
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{where}: not a bearpaw HourglassNet state dict (cannot read {err})") from err


def convert_bearpaw(src: str | os.PathLike[str], out: str | os.PathLike[str]) -> tuple[Path, CheckpointMeta]:
    """Convert a bearpaw/pytorch-pose checkpoint (or anibali's ``bearpaw_hg*.pth``) into our checkpoint ``out``.

    The model is the ``bearpaw-hgN`` preset with every setting written out in ``meta.model_kwargs``
    (stack and block counts, widths, its stem, the MPII mean it subtracts), so the file alone rebuilds it.
    """
    raw, extra = read_state_dict(src)
    state = strip_prefix(raw, str(src), _BEARPAW_KEY, "bearpaw HourglassNet")
    config = infer_bearpaw_config(state, str(src))
    stacks = config.pop("num_stacks")
    if stacks not in _PRESETS:
        raise CheckpointError(f"{src}: {stacks} stacks; bearpaw presets exist for {sorted(_PRESETS)} stacks")
    name = f"bearpaw-{_PRESETS[stacks]}"
    kwargs: dict[str, Any] = {
        **config,
        "num_bottom_blocks": config["num_blocks"],
        "stem": "bearpaw",
        "input_mean": list(MPII_RGB_MEAN),
    }
    model = create_model(name, **kwargs)
    mapping = map_state(
        state, model, lambda ours: bearpaw_key(ours, model.depth, config["num_blocks"]), str(src), "bearpaw"
    )
    model.load_state_dict(mapping, strict=True)
    meta = _meta(
        name,
        kwargs,
        epoch=extra.get("epoch", 0),
        source={
            "from": "bearpaw/pytorch-pose",
            "file": Path(src).name,
            **({"arch": extra["arch"]} if "arch" in extra else {}),
        },
    )
    return save_checkpoint(out, model, meta), meta


_ANCHORS = {"princeton-vl": _STEM_KEY, "bearpaw": _BEARPAW_KEY}


def _family_hint(state: Mapping[str, torch.Tensor]) -> str:
    """``"; it looks like a bearpaw file (--from bearpaw)"`` when another family's anchor tensor is present."""
    for family, anchor in _ANCHORS.items():
        if any(k == anchor or k.endswith("." + anchor) for k in state):
            return f"; it looks like a {family} file (--from {family})"
    return ""


def _is_torch_save(path: Path) -> bool:
    """Whether ``path`` is a ``torch.save`` file (a zip archive, or a bare pickle whose first byte is 0x80)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with open(path, "rb") as f:
        head = f.read(9)
    if head[8:9] == b"{":  # a safetensors header: 8-byte length, then JSON
        raise CheckpointError(
            f"{path}: already a .safetensors checkpoint, nothing to convert; pass it as it is "
            f"(--checkpoint {path}); `hourglass convert` reads published .pth/.pth.tar/.pt and Torch7 .t7 files"
        )
    return head[:2] == b"PK" or head[:1] == b"\x80"


def detect_family(path: str | os.PathLike[str]) -> str:
    """``"bearpaw"``, ``"princeton-vl"`` or ``"torch7"`` for the file at ``path``, from its contents.

    A zip or pickle (``torch.save``) is told apart by its tensor names; anything else is tried as Torch7.
    """
    path = Path(path)
    if _is_torch_save(path):
        state, _ = read_state_dict(path)
        for family, anchor in _ANCHORS.items():
            if any(k == anchor or k.endswith("." + anchor) for k in state):
                return family
        raise CheckpointError(
            f"{path}: a PyTorch state dict of no known family (no '{_STEM_KEY}' as princeton-vl has, "
            f"no '{_BEARPAW_KEY}' as bearpaw has)"
        )
    return "torch7"


# --- Newell's Torch7 releases ---------------------------------------------------------------------------


def _field(obj: Any, name: str) -> Any:
    """Field ``name`` of a Torch7 object or table read by ``torchfile`` (None when absent)."""
    fields = obj if isinstance(obj, dict) else getattr(obj, "_obj", None)
    return fields.get(name.encode()) if isinstance(fields, dict) else None


class _T7Graph:
    """Walks an nngraph ``gModule`` read by ``torchfile`` backwards from its outputs, naming our tensors.

    Newell's ``hg.lua`` (pose-hg-train; pose-hg-demo's model has the same form) builds, per stack ``s``, with
    ``R`` = ``opt.nModules`` residual modules per unit: ``hourglass(4, nFeats, inter)`` (``up1``: R
    Residuals on the input; ``low1``: max-pool then R Residuals; ``low2``: the next level or, innermost, R
    Residuals; ``low3``: R Residuals, then nearest x2 upsampling; their sum), R Residuals, ``lin`` (1x1 conv,
    BatchNorm, ReLU), the 1x1 heatmap conv, and between stacks ``inter + conv(ll) + conv(heatmaps)``. That
    is :class:`~hourglass.models.StackedHourglass` with ``num_blocks = num_bottom_blocks = R``. A
    ``Residual`` is ``Sequential(ConcatTable(convBlock, skipLayer), CAddTable)``, ``convBlock`` being
    BN-ReLU-conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1 and ``skipLayer`` an ``Identity`` or a 1x1 conv.
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self.state: dict[str, torch.Tensor] = {}

    def fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.where}: not a Stacked Hourglass Torch7 graph as hg.lua builds it ({what})")

    @staticmethod
    def kind(module: Any) -> str:
        if module is None:
            return "none"
        name = module.torch_typename() if hasattr(module, "torch_typename") else b""
        return name.decode(errors="replace").rpartition(".")[2]

    def inputs(self, data: Any) -> list[Any]:
        mapindex = _field(data, "mapindex")
        if isinstance(mapindex, list):
            return mapindex
        return [mapindex[i] for i in range(1, 1 + sum(isinstance(k, int) for k in mapindex))]

    def parent(self, data: Any, kind: str) -> Any:
        """The single input of ``data``, whose module must be of ``kind``."""
        parents = self.inputs(data)
        if len(parents) != 1 or self.kind(_field(parents[0], "module")) != kind:
            found = [self.kind(_field(p, "module")) for p in parents]
            raise self.fail(f"expected one {kind} input to a {self.kind(data[b'module'])} node, found {found}")
        return parents[0]

    def expect(self, data: Any, kind: str) -> Any:
        if self.kind(_field(data, "module")) != kind:
            raise self.fail(f"expected a {kind} node, found {self.kind(data[b'module'])}")
        return _field(data, "module")

    def tensor(self, module: Any, field: str, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        value = _field(module, field)
        if not isinstance(value, np.ndarray) or value.size == 0:
            raise self.fail(f"a {self.kind(module)} without {field}")
        t = torch.from_numpy(np.array(value, dtype=np.float32))
        return t.reshape(shape) if shape is not None else t

    def conv(self, module: Any, ours: str, k: int, stride: int = 1) -> None:
        if self.kind(module) != "SpatialConvolution":
            raise self.fail(f"expected a SpatialConvolution for {ours}, found {self.kind(module)}")
        n_out, n_in = int(_field(module, "nOutputPlane")), int(_field(module, "nInputPlane"))
        geometry = tuple(int(_field(module, f) or 0) for f in ("kW", "kH", "dW", "dH", "padW", "padH"))
        if geometry != (k, k, stride, stride, k // 2, k // 2):
            raise self.fail(
                f"{ours}: kernel, stride, padding {geometry}, expected {(k, k, stride, stride, k // 2, k // 2)}"
            )
        self.state[f"{ours}.weight"] = self.tensor(module, "weight", (n_out, n_in, k, k))
        bias = _field(module, "bias")
        has_bias = isinstance(bias, np.ndarray) and bias.size
        self.state[f"{ours}.bias"] = self.tensor(module, "bias") if has_bias else torch.zeros(n_out)

    def bn(self, module: Any, ours: str) -> None:
        if self.kind(module) != "SpatialBatchNormalization":
            raise self.fail(f"expected a SpatialBatchNormalization for {ours}, found {self.kind(module)}")
        eps = float(_field(module, "eps") or 1e-5)
        mean = self.tensor(module, "running_mean")
        if isinstance(_field(module, "running_var"), np.ndarray):
            var = self.tensor(module, "running_var")
        else:  # nn before 2016 kept 1 / sqrt(var + eps)
            var = self.tensor(module, "running_std").pow(-2) - eps
        n = mean.numel()
        affine = _field(module, "affine") is not False and isinstance(_field(module, "weight"), np.ndarray)
        self.state[f"{ours}.weight"] = self.tensor(module, "weight") if affine else torch.ones(n)
        self.state[f"{ours}.bias"] = self.tensor(module, "bias") if affine else torch.zeros(n)
        self.state[f"{ours}.running_mean"] = mean
        self.state[f"{ours}.running_var"] = var + (eps - 1e-5)  # same output with our eps of 1e-5
        self.state[f"{ours}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)

    def residual(self, module: Any, ours: str) -> None:
        if self.kind(module) != "Sequential" or len(_field(module, "modules")) != 2:
            raise self.fail(f"expected a Residual (Sequential of ConcatTable and CAddTable) for {ours}")
        branches = _field(_field(module, "modules")[0], "modules")
        block, skip = _field(branches[0], "modules"), branches[1]
        kinds = [self.kind(m) for m in block]
        if kinds != ["SpatialBatchNormalization", "ReLU", "SpatialConvolution"] * 3:
            raise self.fail(f"{ours}: convBlock of {kinds}")
        for n, (bn, conv, k) in enumerate(((block[0], block[2], 1), (block[3], block[5], 3), (block[6], block[8], 1))):
            self.bn(bn, f"{ours}.bn{n + 1}")
            self.conv(conv, f"{ours}.conv{n + 1}", k)
        if self.kind(skip) == "Sequential":
            self.conv(_field(skip, "modules")[0], f"{ours}.skip", 1)
        elif self.kind(skip) != "Identity":
            raise self.fail(f"{ours}: skip layer {self.kind(skip)}")

    def chain(self, data: Any, names: list[str]) -> Any:
        """Residual nodes ending at ``data``, named ``names`` (first to last); returns the node before them."""
        for name in reversed(names):
            self.residual(self.expect(data, "Sequential"), name)
            data = self.inputs(data)[0]
        return data

    def unit(self, prefix: str, blocks: int) -> list[str]:
        return [prefix] if blocks == 1 else [f"{prefix}.{j}" for j in range(blocks)]

    def skip_back(self, data: Any, blocks: int) -> Any:
        """The node before the ``blocks`` Residual nodes ending at ``data`` (not named yet)."""
        for _ in range(blocks):
            self.expect(data, "Sequential")
            data = self.inputs(data)[0]
        return data

    def hourglass(self, data: Any, s: int, level: int, blocks: int) -> tuple[Any, int]:
        """Name the hourglass level whose sum node is ``data``; returns ``(the level's input, depth)``."""
        self.expect(data, "CAddTable")
        up1, up2 = self.inputs(data)
        self.expect(up2, "SpatialUpSamplingNearest")
        low3 = self.inputs(up2)[0]
        low2 = self.skip_back(low3, blocks)
        if self.kind(_field(low2, "module")) == "CAddTable":
            low1, depth = self.hourglass(low2, s, level + 1, blocks)
        else:
            depth = level
            low1 = self.chain(low2, [f"hourglasses.{s}.midconv_{j + 1}" for j in range(blocks)])
        pool = self.chain(low1, self.unit(f"hourglasses.{s}.downconv_{level}", blocks))
        self.expect(pool, "SpatialMaxPooling")
        inp = self.inputs(pool)[0]
        self.chain(low3, self.unit(f"hourglasses.{s}.upconv_{depth + 1 - level}", blocks))
        if self.chain(up1, self.unit(f"hourglasses.{s}.skipconv_{level}", blocks)) is not inp:
            raise self.fail(f"stack {s} level {level}: the skip branch does not start at the hourglass input")
        return inp, depth

    def features_blocks(self, data: Any) -> int:
        """R: Residual nodes between an hourglass's sum and the ``lin`` convolution at ``data``."""
        count, node = 0, self.inputs(data)[0]
        while self.kind(_field(node, "module")) == "Sequential":
            count, node = count + 1, self.inputs(node)[0]
        if count == 0 or self.kind(_field(node, "module")) != "CAddTable":
            raise self.fail("expected Residual modules between an hourglass and its 1x1 convolution")
        return count

    def read(self, model: Any) -> dict[str, int]:
        """Fill :attr:`state`; returns our model kwargs (and ``num_stacks``)."""
        if self.kind(model) != "gModule":
            raise CheckpointError(
                f"{self.where}: a Torch7 {self.kind(model) or type(model).__name__}, expected an nngraph gModule"
            )
        out = _field(model, "outnode") or _field(model, "forwardnodes")[-1]
        heads = self.inputs(_field(out, "data"))
        stacks = len(heads)
        if stacks == 0:
            raise self.fail("no outputs")
        lin_relu = self.inputs(heads[0])[0]
        lin_conv = self.parent(self.parent(lin_relu, "SpatialBatchNormalization"), "SpatialConvolution")
        blocks = self.features_blocks(lin_conv)
        inter = None
        for s in reversed(range(stacks)):
            self.conv(self.expect(heads[s], "SpatialConvolution"), f"heads.{s}", 1)
            relu = self.parent(heads[s], "ReLU")
            bn = self.parent(relu, "SpatialBatchNormalization")
            self.bn(_field(bn, "module"), f"features.{s}.bn")
            conv = self.parent(bn, "SpatialConvolution")
            self.conv(_field(conv, "module"), f"features.{s}.conv", 1)
            hg_sum = self.chain(self.inputs(conv)[0], self.unit(f"features.{s}.res", blocks))
            inp, depth = self.hourglass(hg_sum, s, 1, blocks)
            if s > 0:
                self.expect(inp, "CAddTable")
                _, ll_, out_ = self.inputs(inp)
                self.conv(self.expect(ll_, "SpatialConvolution"), f"merge_features.{s - 1}", 1)
                self.conv(self.expect(out_, "SpatialConvolution"), f"merge_heatmaps.{s - 1}", 1)
                if self.inputs(out_)[0] is not heads[s - 1]:
                    raise self.fail(f"stack {s}: the merged heatmaps are not stack {s - 1}'s")
            inter = inp
        pool = self.chain(inter, ["stem.res2", "stem.res3"])
        self.expect(pool, "SpatialMaxPooling")
        relu = self.chain(self.inputs(pool)[0], ["stem.res1"])
        self.expect(relu, "ReLU")
        bn = self.parent(relu, "SpatialBatchNormalization")
        self.bn(_field(bn, "module"), "stem.bn")
        conv = self.parent(bn, "SpatialConvolution")
        self.conv(_field(conv, "module"), "stem.conv", 7, stride=2)
        weight = self.state["heads.0.weight"]
        return {
            "num_stacks": stacks,
            "num_joints": int(weight.shape[0]),
            "num_channels": int(weight.shape[1]),
            "depth": depth,
            "in_channels": int(self.state["stem.conv.weight"].shape[1]),
            "num_blocks": blocks,
        }


def read_torch7(path: str | os.PathLike[str]) -> Any:
    """The object in a Torch7 file (``torchfile``, the ``[torch7]`` extra: ``pip install 'hourglass-pose[torch7]'``)."""
    path = Path(path)
    if _is_torch_save(path):
        raise CheckpointError(f"{path}: a PyTorch file, not Torch7 (use --from bearpaw, princeton-vl or auto)")
    torchfile = require_extra("torchfile", "torch7")
    try:
        return torchfile.load(str(path))
    except Exception as err:  # torchfile raises struct.error, ValueError, T7ReaderException ... on bad input
        raise CheckpointError(f"{path}: not a readable Torch7 file ({type(err).__name__}: {err})") from err


def convert_torch7(src: str | os.PathLike[str], out: str | os.PathLike[str]) -> tuple[Path, CheckpointMeta]:
    """Convert Newell's Torch7 model (pose-hg-demo's ``umich-stacked-hourglass.t7``, pose-hg-train's
    ``model_N.t7``: nngraph ``gModule`` objects) into our checkpoint ``out``.

    Their input convention (pose-hg-demo ``main.lua``, pose-hg-train ``util/img.lua``): RGB in [0, 1] from
    ``image.load``, no normalisation, 256x256 crops, 64x64 heatmaps; nothing to add to the model.
    """
    graph = _T7Graph(str(src))
    root = read_torch7(src)
    try:
        config = graph.read(root)
    except (TypeError, IndexError, AttributeError, ValueError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise graph.fail(f"{type(err).__name__}: {err}") from None
    stacks = config.pop("num_stacks")
    if stacks not in _PRESETS:
        raise CheckpointError(f"{src}: {stacks} stacks; presets exist for {sorted(_PRESETS)} stacks")
    if config["num_blocks"] == 1:
        config.pop("num_blocks")
    else:
        config["num_bottom_blocks"] = config["num_blocks"]
    model = create_model(_PRESETS[stacks], **config)
    load_state(src, model, graph.state)
    meta = _meta(
        _PRESETS[stacks],
        config,
        epoch=0,
        source={"from": "Newell's Torch7 (pose-hg-demo / pose-hg-train)", "file": Path(src).name},
    )
    return save_checkpoint(out, model, meta), meta


CONVERTERS = {"bearpaw": convert_bearpaw, "princeton-vl": convert_princeton_vl, "torch7": convert_torch7}


def convert_checkpoint(
    source: str, src: str | os.PathLike[str], out: str | os.PathLike[str]
) -> tuple[Path, CheckpointMeta]:
    """Convert the foreign weights of the local file ``src`` from ``source`` (a key of :data:`CONVERTERS`, or
    ``auto``) into ``out``. Nothing is written unless the whole conversion succeeds (the file is written atomically
    at the end). Published weights by name or URL: fetch them first (:func:`hourglass.checkpoint.hub.source_file`,
    as ``hourglass convert`` does).
    """
    if source == "auto":
        source = detect_family(src)
    if source not in CONVERTERS:
        raise ConfigError(f"unknown source {source!r}; supported: {', '.join([*CONVERTERS, 'auto'])}")
    return CONVERTERS[source](src, out)
