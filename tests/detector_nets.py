"""Person detectors re-stated in torch, exported the way openmmlab publishes them (mmdeploy's ``end2end.onnx``).

For the tests of :mod:`hourglass.people.detect` and for ``benchmarks/detector_speed.py``: the speed of a
network does not depend on its weights, and the layout of its file is what the decoding must follow.

- :class:`YOLOX` and :class:`RTMDet`: the architectures of mmdetection 3.x (``CSPDarknet`` + ``YOLOXPAFPN`` +
  ``YOLOXHead``; ``CSPNeXt`` + ``CSPNeXtPAFPN`` + ``RTMDetSepBNHead``) at the sizes of the published person
  detectors (:data:`ARCHS`), each ending in its box decoding (``predict_by_feat`` as mmdeploy rewrites it):
  ``boxes (1, A, 4)`` ``[x1, y1, x2, y2]`` in input pixels and ``scores (1, A, C)``. BatchNorm layers are there
  as in training code (ONNX Runtime folds them). Parameter counts are checked against the published ones in
  ``tests/people/test_detect.py``.
- :func:`export_end2end`: the ONNX file with mmdeploy's tail appended (``multiclass_nms``:
  ``NonMaxSuppression``, then ``select_nms_index``: gather, one all-zero row appended, ``TopK`` of at most
  ``keep_top_k``), so its outputs are ``dets (1, N, 5)`` and ``labels (1, N)`` int64 with ``N`` known only
  when it runs, input ``input (1, 3, H, W)``.
- :class:`BrightBox`: a hand-made "detector" in the same layout that finds the bright rectangle of a picture,
  so that the tests know where the box must land in the picture's pixels.
- :class:`FixedOutput` and :func:`export_fixed`: a graph in the layout of Megvii's own YOLOX export
  (``tools/export_onnx.py``: input ``images``, one output ``output (1, A, 5 + C)``, not decoded) that answers a
  given tensor whatever the picture, so that the tests know every number the decoding reads.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch
from torch import nn

SiLU = nn.SiLU


class ConvModule(nn.Sequential):
    """mmcv's ``ConvModule``: convolution without bias, BatchNorm, SiLU."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), SiLU()
        )


class DepthwiseSeparable(nn.Sequential):
    """mmcv's ``DepthwiseSeparableConvModule``: a depthwise ``k x k`` ConvModule then a pointwise one."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1) -> None:
        super().__init__(ConvModule(cin, cin, k, stride, groups=cin), ConvModule(cin, cout, 1))


def conv_type(depthwise: bool) -> type[nn.Module]:
    return DepthwiseSeparable if depthwise else ConvModule


class Bottleneck(nn.Module):
    """``DarknetBottleneck`` (YOLOX: 1x1 then 3x3) or ``CSPNeXtBlock`` (RTMDet: 3x3 then depthwise 5x5 separable)."""

    def __init__(self, c: int, identity: bool, depthwise: bool, cspnext: bool) -> None:
        super().__init__()
        conv = conv_type(depthwise)
        if cspnext:
            self.conv1, self.conv2 = conv(c, c, 3), DepthwiseSeparable(c, c, 5)
        else:
            self.conv1, self.conv2 = ConvModule(c, c, 1), conv(c, c, 3)
        self.identity = identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.identity else out


class ChannelAttention(nn.Module):
    """CSPNeXt's channel attention: global average pool, 1x1 convolution with bias, hard sigmoid, scale."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(c, c, 1)
        self.act = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(self.fc(x.mean(dim=(2, 3), keepdim=True)))


class CSPLayer(nn.Module):
    """mmdet's ``CSPLayer`` (expand ratio 0.5): two 1x1 branches, blocks on one, concatenation, 1x1."""

    def __init__(
        self, cin: int, cout: int, n: int, identity: bool, depthwise: bool, cspnext: bool, attention: bool = False
    ) -> None:
        super().__init__()
        mid = int(cout * 0.5)
        self.main, self.short = ConvModule(cin, mid, 1), ConvModule(cin, mid, 1)
        self.blocks = nn.Sequential(*[Bottleneck(mid, identity, depthwise, cspnext) for _ in range(n)])
        self.attention = ChannelAttention(2 * mid) if attention else nn.Identity()
        self.final = ConvModule(2 * mid, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.attention(torch.cat([self.blocks(self.main(x)), self.short(x)], 1)))


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling (max pools 5, 9, 13) between two 1x1 ConvModules."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin // 2
        self.conv1, self.conv2 = ConvModule(cin, mid, 1), ConvModule(mid * 4, cout, 1)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in (5, 9, 13))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x, *[pool(x) for pool in self.pools]], 1))


class Focus(nn.Module):
    """YOLOX's stem: space to depth (2x2 pixels to 12 channels), then a 3x3 ConvModule."""

    def __init__(self, cout: int) -> None:
        super().__init__()
        self.conv = ConvModule(12, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tl, bl, tr, br = x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]
        return self.conv(torch.cat([tl, bl, tr, br], 1))


P5 = [(64, 128, 3, True, False), (128, 256, 9, True, False), (256, 512, 9, True, False), (512, 1024, 3, False, True)]
P5_CSPNEXT = [(64, 128, 3, True, False), (128, 256, 6, True, False), (256, 512, 6, True, False)]
P5_CSPNEXT.append((512, 1024, 3, False, True))


class Backbone(nn.Module):
    """``CSPDarknet`` (YOLOX) or ``CSPNeXt`` (RTMDet) with stages 2-4 out (strides 8, 16, 32)."""

    def __init__(self, deepen: float, widen: float, depthwise: bool, cspnext: bool) -> None:
        super().__init__()
        arch = P5_CSPNEXT if cspnext else P5
        c0 = int(arch[0][0] * widen)
        if cspnext:
            self.stem: nn.Module = nn.Sequential(
                ConvModule(3, c0 // 2, 3, 2), ConvModule(c0 // 2, c0 // 2, 3), ConvModule(c0 // 2, c0, 3)
            )
        else:
            self.stem = Focus(c0)
        conv = conv_type(depthwise)
        self.stages = nn.ModuleList()
        for cin, cout, n, identity, spp in arch:
            cin, cout = int(cin * widen), int(cout * widen)
            layers: list[nn.Module] = [conv(cin, cout, 3, 2)]
            if spp:
                layers.append(SPPBottleneck(cout, cout))
            blocks = max(round(n * deepen), 1)
            layers.append(CSPLayer(cout, cout, blocks, identity, depthwise, cspnext, attention=cspnext))
            self.stages.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i >= 1:
                outs.append(x)
        return outs


class PAFPN(nn.Module):
    """``YOLOXPAFPN`` (1x1 output convolutions) or ``CSPNeXtPAFPN`` (3x3 ones): top-down then bottom-up paths."""

    def __init__(self, channels: list[int], cout: int, n: int, depthwise: bool, cspnext: bool) -> None:
        super().__init__()
        conv = conv_type(depthwise)
        self.reduce = nn.ModuleList(ConvModule(channels[i], channels[i - 1], 1) for i in (2, 1))
        self.top_down = nn.ModuleList(
            CSPLayer(channels[i - 1] * 2, channels[i - 1], n, False, depthwise, cspnext) for i in (2, 1)
        )
        self.down = nn.ModuleList(conv(channels[i], channels[i], 3, 2) for i in (0, 1))
        self.bottom_up = nn.ModuleList(
            CSPLayer(channels[i] * 2, channels[i + 1], n, False, depthwise, cspnext) for i in (0, 1)
        )
        self.out_convs = nn.ModuleList((conv(c, cout, 3) if cspnext else ConvModule(c, cout, 1)) for c in channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        inner = [feats[2]]
        for j, i in enumerate((2, 1)):
            high = self.reduce[j](inner[0])
            inner[0] = high
            up = nn.functional.interpolate(high, scale_factor=2.0, mode="nearest")
            inner.insert(0, self.top_down[j](torch.cat([up, feats[i - 1]], 1)))
        outs = [inner[0]]
        for i in range(2):
            outs.append(self.bottom_up[i](torch.cat([self.down[i](outs[-1]), inner[i + 1]], 1)))
        return [conv(o) for conv, o in zip(self.out_convs, outs, strict=True)]


STRIDES = (8, 16, 32)


def _points(size: tuple[int, int], stride: int) -> torch.Tensor:
    """``(h * w, 2)`` ``(x, y)`` of each cell's corner, ``* stride`` (mmdet's ``MlvlPointGenerator``, offset 0)."""
    h, w = size
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], 1).float() * stride


class Detector(nn.Module):
    """Backbone, neck and head of a one-stage detector, with the head's box decoding: ``(1, 3, H, W) ->
    boxes (1, A, 4), scores (1, A, C)``, ``A`` = cells over strides 8, 16, 32."""

    def __init__(
        self,
        deepen: float,
        widen: float,
        depthwise: bool,
        cspnext: bool,
        classes: int = 1,
        share_conv: bool = False,
        exp_on_reg: bool = False,
    ) -> None:
        super().__init__()
        self.cspnext, self.exp_on_reg = cspnext, exp_on_reg
        self.backbone = Backbone(deepen, widen, depthwise, cspnext)
        channels = [int(c * widen) for c in (256, 512, 1024)]
        feat = int(256 * widen)
        self.neck = PAFPN(channels, feat, max(round(3 * deepen), 1), depthwise, cspnext)
        conv = conv_type(depthwise) if cspnext else ConvModule

        def stacked() -> nn.Sequential:
            return nn.Sequential(conv(feat, feat, 3), conv(feat, feat, 3))

        self.cls_convs = nn.ModuleList(stacked() for _ in STRIDES)
        self.reg_convs = nn.ModuleList(stacked() for _ in STRIDES)
        self.cls = nn.ModuleList(nn.Conv2d(feat, classes, 1) for _ in STRIDES)
        self.reg = nn.ModuleList(nn.Conv2d(feat, 4, 1) for _ in STRIDES)
        self.obj = nn.ModuleList(nn.Conv2d(feat, 1, 1) for _ in STRIDES) if not cspnext else None
        if share_conv:  # RTMDetSepBNHead(share_conv=True): one set of 3x3 weights, BatchNorm per level
            for convs in (self.cls_convs, self.reg_convs):
                for level in convs[1:]:
                    for i, module in enumerate(level):
                        module[0] = convs[0][i][0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        boxes, scores = [], []
        for i, (f, stride) in enumerate(zip(self.neck(self.backbone(x)), STRIDES, strict=True)):
            cls_feat, reg_feat = self.cls_convs[i](f), self.reg_convs[i](f)
            cls = self.cls[i](cls_feat).flatten(2).transpose(1, 2).sigmoid()  # (1, hw, C)
            reg = self.reg[i](reg_feat).flatten(2).transpose(1, 2)  # (1, hw, 4)
            points = _points((f.shape[2], f.shape[3]), stride)
            if self.cspnext:  # RTMDet: distances to the four edges (exp of them with exp_on_reg), times the stride
                dist = (reg.exp() if self.exp_on_reg else reg) * stride
                boxes.append(torch.cat([points - dist[..., :2], points + dist[..., 2:]], -1))
            else:  # YOLOX: centre offset and log size, times the stride; score = class x objectness
                assert self.obj is not None
                centre, size = reg[..., :2] * stride + points, reg[..., 2:].exp() * stride
                boxes.append(torch.cat([centre - size / 2, centre + size / 2], -1))
                cls = cls * self.obj[i](reg_feat).flatten(2).transpose(1, 2).sigmoid()
            scores.append(cls)
        return torch.cat(boxes, 1), torch.cat(scores, 1)


ARCHS: dict[str, dict] = {
    "yolox-tiny": {"kwargs": {"deepen": 0.33, "widen": 0.375, "depthwise": False, "cspnext": False}, "size": 416},
    "yolox-m": {"kwargs": {"deepen": 0.67, "widen": 0.75, "depthwise": False, "cspnext": False}, "size": 640},
    "yolox-x": {"kwargs": {"deepen": 1.33, "widen": 1.25, "depthwise": False, "cspnext": False}, "size": 640},
    "rtmdet-nano": {"kwargs": {"deepen": 0.33, "widen": 0.25, "depthwise": True, "cspnext": True}, "size": 320},
    "rtmdet-m": {
        "kwargs": {
            "deepen": 0.67,
            "widen": 0.75,
            "depthwise": False,
            "cspnext": True,
            "share_conv": True,
            "exp_on_reg": True,
        },
        "size": 640,
    },
}
"""The published person detectors' settings (mmpose's configs: ``yolox_*_8xb8-300e_humanart.py``,
``rtmdet_nano_320-8xb32_coco-person.py``, ``rtmdet_m_640-8xb32_coco-person.py`` on mmdet's ``rtmdet_l``), one
class, and their input size."""


def build(name: str, seed: int = 0, quiet: bool = False) -> Detector:
    """:data:`ARCHS` ``name`` with random weights (and randomised BatchNorm statistics), in eval mode.

    ``quiet``: the class (and objectness) layers as mmdetection initialises them (weights N(0, 0.01), bias
    ``log(0.01 / 0.99)``), so every score is about 0.01 and NMS keeps nothing, as on a picture without people:
    the network's own cost, for timing. Otherwise scores spread around 0.5 and many boxes survive.
    """
    torch.manual_seed(seed)
    net = Detector(**ARCHS[name]["kwargs"])
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        if quiet:
            for layer in [*net.cls, *(net.obj or [])]:
                layer.weight.normal_(0.0, 0.01)
                layer.bias.fill_(-4.595)
    return net.eval()


class BrightBox(nn.Module):
    """A "detector" in mmdeploy's layout whose answer is known: ``dets`` rows (in input pixels)

    0. the bounding box of the pixels brighter than 200 in every channel, score 0.9 (0 when there are none);
    1. the same box moved 2 pixels right, score 0.8 (a duplicate that suppression removes);
    2. the same box as class 1, score 0.95 (not a person);
    3. a box at the top left, 10 x 10 pixels, score 0.2 (under the default threshold);
    4. mmdeploy's all-zero row.

    Raw 0-255 BGR input (the YOLOX family).
    """

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bright = (x[0] > 200).all(dim=0)  # (H, W)
        cols, rows = bright.any(dim=0).to(torch.int64), bright.any(dim=1).to(torch.int64)
        width, height = x.shape[3], x.shape[2]
        x1, y1 = torch.argmax(cols), torch.argmax(rows)
        x2, y2 = width - torch.argmax(cols.flip(0)), height - torch.argmax(rows.flip(0))
        found = bright.any().to(torch.float32)
        box = torch.stack([x1, y1, x2, y2]).to(torch.float32)
        shift = torch.tensor([2.0, 0.0, 2.0, 0.0])
        corner = torch.tensor([0.0, 0.0, 10.0, 10.0])
        scores = torch.stack([0.9 * found, 0.8 * found, 0.95 * found, torch.tensor(0.2), torch.tensor(0.0)])
        boxes = torch.stack([box, box + shift, box, corner, torch.zeros(4)])
        dets = torch.cat([boxes, scores[:, None]], 1)[None]
        labels = torch.tensor([[0, 0, 1, 0, 0]], dtype=torch.int64)
        return dets, labels


class FixedOutput(nn.Module):
    """A "detector" whose one output is ``table`` ``(1, A, 5 + C)`` (plus 0 times the input, so that the graph reads
    its input as a real one does)."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table.to(torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table + 0.0 * x.mean()


def export_fixed(table: torch.Tensor, size: int, path: Path) -> Path:
    """:class:`FixedOutput` at input ``size x size`` with the names of Megvii's export: ``images`` -> ``output``."""
    export_onnx(FixedOutput(table), size, path, ["output"], input_name="images")
    return path


def export_onnx(net: nn.Module, size: int, path: Path, outputs: list[str], input_name: str = "input") -> None:
    """``torch.onnx.export`` of ``net`` at input ``(1, 3, size, size)``, input named ``input_name``."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.zeros(1, 3, size, size),),
            str(path),
            input_names=[input_name],
            output_names=outputs,
            dynamo=False,
            opset_version=17,
        )


def export_bright_box(path: Path, size: int = 64) -> Path:
    """:class:`BrightBox` at input ``size x size`` as ``dets`` / ``labels``."""
    export_onnx(BrightBox(), size, path, ["dets", "labels"])
    return path


def export_end2end(
    net: nn.Module, size: int, path: Path, iou: float = 0.5, score: float = 0.05, keep_top_k: int = 100
) -> Path:
    """``net`` (``boxes (1, A, 4)``, ``scores (1, A, C)``) with mmdeploy's NMS tail, as ``path``.

    mmdeploy's defaults for detection (``detection_onnxruntime_static.py``): ``iou_threshold`` 0.5,
    ``score_threshold`` 0.05, ``max_output_boxes_per_class`` 200, ``keep_top_k`` 100.
    """
    import onnx
    from onnx import TensorProto, helper

    raw = path.with_suffix(".raw.onnx")
    export_onnx(net, size, raw, ["boxes", "scores"])
    model = onnx.load(str(raw))
    raw.unlink()
    g = model.graph

    def const(name: str, value, dtype=TensorProto.INT64, dims=None) -> str:
        values = value if isinstance(value, list) else [value]
        g.initializer.append(helper.make_tensor(name, dtype, dims if dims is not None else [len(values)], values))
        return name

    nodes = [
        helper.make_node("Transpose", ["scores"], ["scores_t"], perm=[0, 2, 1]),  # (1, C, A)
        helper.make_node(
            "NonMaxSuppression",
            [
                "boxes",
                "scores_t",
                const("max_out", 200),
                const("iou", iou, TensorProto.FLOAT, []),
                const("score_thr", score, TensorProto.FLOAT, []),
            ],
            ["selected"],
        ),  # (S, 3): batch, class, box
        helper.make_node("Gather", ["selected", const("i1", 1, dims=[])], ["cls"], axis=1),  # (S,)
        helper.make_node("Gather", ["selected", const("i02", [0, 2])], ["batch_box"], axis=1),  # (S, 2)
        helper.make_node("GatherND", ["scores_t", "selected"], ["sel_scores"]),  # (S,)
        helper.make_node("GatherND", ["boxes", "batch_box"], ["sel_boxes"]),  # (S, 4)
        helper.make_node("Unsqueeze", ["sel_scores", const("ax1", [1])], ["sel_scores1"]),
        helper.make_node("Concat", ["sel_boxes", "sel_scores1"], ["rows"], axis=1),  # (S, 5)
        helper.make_node(
            "Concat", ["rows", const("zero_row", [0.0] * 5, TensorProto.FLOAT, [1, 5])], ["rows0"], axis=0
        ),
        helper.make_node("Concat", ["cls", const("zero_label", [0])], ["cls0"], axis=0),  # (S + 1,)
        helper.make_node("Shape", ["cls0"], ["count"]),
        helper.make_node("Min", ["count", const("top", [keep_top_k])], ["k"]),
        helper.make_node("Gather", ["rows0", const("i4", 4, dims=[])], ["row_scores"], axis=1),
        helper.make_node("TopK", ["row_scores", "k"], ["_", "order"], axis=0),
        helper.make_node("Gather", ["rows0", "order"], ["dets0"], axis=0),
        helper.make_node("Gather", ["cls0", "order"], ["labels0"], axis=0),
        helper.make_node("Unsqueeze", ["dets0", const("ax0", [0])], ["dets"]),
        helper.make_node("Unsqueeze", ["labels0", "ax0"], ["labels"]),
    ]
    g.node.extend(nodes)
    while len(g.output):
        g.output.pop()
    g.output.extend(
        [
            helper.make_tensor_value_info("dets", TensorProto.FLOAT, [1, "num_dets", 5]),
            helper.make_tensor_value_info("labels", TensorProto.INT64, [1, "num_dets"]),
        ]
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
