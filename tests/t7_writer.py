"""A minimal Torch7 serialiser (binary format, little-endian, 8-byte longs), for tests only.

``torchfile`` reads Torch7 files but cannot write them, so the tests build Newell's networks here as Torch7
objects (``nn`` modules, an ``nngraph`` ``gModule`` with its ``nngraph.Node`` objects) and write them the way
Torch7's ``File:writeObject`` does (torch7 ``File.lua``, ``generic/Tensor.c``, ``generic/Storage.c``):

- every value starts with a type id: 0 nil, 1 number (a double), 2 string (int length + bytes),
  3 table, 4 torch object, 5 boolean (an int);
- a table or torch object is followed by its reference index; one already written is only referred to
  (so shared objects and cycles, such as nngraph's parent links, come back as the same object);
- a new table: the number of entries, then key and value of each; a torch object: the version string
  ``"V 1"``, its class name, then its fields as a table;
- ``torch.FloatTensor``: number of dimensions, sizes and strides (longs), the 1-based storage offset
  (long), then its ``torch.FloatStorage``: the element count (long) and the raw float32 data.

It also evaluates such a network (:func:`forward`), restating Torch7 ``nn`` semantics with plain torch
functional calls, so tests compare a converted checkpoint against the Torch7 graph itself.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


class Table:
    """A Lua table: ordered ``(key, value)`` pairs; keys may be other tables (compared by identity)."""

    def __init__(self, pairs: Iterable[tuple[Any, Any]] = ()) -> None:
        self.pairs = list(pairs)

    @classmethod
    def array(cls, values: Iterable[Any]) -> Table:
        return cls((i + 1, v) for i, v in enumerate(values))

    def get(self, key: Any) -> Any:
        return next((v for k, v in self.pairs if k is key or (not isinstance(k, Table) and k == key)), None)

    def set(self, key: Any, value: Any) -> None:
        """``t[key] = value``: replaces the value of an existing key, else appends."""
        for i, (k, _) in enumerate(self.pairs):
            if k is key or (not isinstance(k, Table) and not isinstance(key, Table) and k == key):
                self.pairs[i] = (k, value)
                return
        self.pairs.append((key, value))


class TorchObject:
    """A Torch7 class instance: ``class_name`` and its fields (a :class:`Table` with string keys)."""

    def __init__(self, class_name: str, **fields: Any) -> None:
        self.class_name = class_name
        self.fields = Table(fields.items())

    def __getattr__(self, name: str) -> Any:
        return self.fields.get(name)


class Writer:
    def __init__(self) -> None:
        self.out = bytearray()
        self.index: dict[int, int] = {}
        self.keep: list[Any] = []  # keeps written objects alive so their ids stay unique

    def int(self, v: int) -> None:
        self.out += struct.pack("<i", v)

    def long(self, v: int) -> None:
        self.out += struct.pack("<q", v)

    def string(self, s: str) -> None:
        data = s.encode()
        self.int(len(data))
        self.out += data

    def reference(self, obj: Any) -> bool:
        """Write the reference index; True when ``obj`` was written before (nothing more to write)."""
        if id(obj) in self.index:
            self.int(self.index[id(obj)])
            return True
        self.index[id(obj)] = len(self.index) + 1
        self.keep.append(obj)
        self.int(self.index[id(obj)])
        return False

    def obj(self, v: Any) -> None:
        if v is None:
            self.int(0)
        elif isinstance(v, bool):
            self.int(5)
            self.int(int(v))
        elif isinstance(v, int | float):
            self.int(1)
            self.out += struct.pack("<d", float(v))
        elif isinstance(v, str):
            self.int(2)
            self.string(v)
        elif isinstance(v, Table):
            self.int(3)
            if not self.reference(v):
                self.int(len(v.pairs))
                for key, value in v.pairs:
                    self.obj(key)
                    self.obj(value)
        elif isinstance(v, list):
            self.obj(Table.array(v))
        elif isinstance(v, np.ndarray):
            self.tensor(v)
        elif isinstance(v, TorchObject):
            self.int(4)
            if not self.reference(v):
                self.string("V 1")
                self.string(v.class_name)
                self.obj(v.fields)
        else:
            raise TypeError(f"cannot write {type(v).__name__} as Torch7")

    def tensor(self, a: np.ndarray) -> None:
        a = np.ascontiguousarray(a, dtype=np.float32)
        self.int(4)
        if self.reference(a):
            return
        self.string("V 1")
        self.string("torch.FloatTensor")
        self.int(a.ndim)
        for size in a.shape:
            self.long(size)
        for stride in (s // a.itemsize for s in a.strides):
            self.long(stride)
        self.long(1)
        self.int(4)
        self.reference(a.data)
        self.string("V 1")
        self.string("torch.FloatStorage")
        self.long(a.size)
        self.out += a.tobytes()


def write(path: Any, root: Any) -> None:
    """Serialise ``root`` (``TorchObject``/``Table``/numbers/strings/float32 arrays) to ``path``."""
    writer = Writer()
    writer.obj(root)
    with open(path, "wb") as f:
        f.write(bytes(writer.out))


# --- nn modules, as Torch7 builds them (parameters random, BatchNorm statistics random) -------------------


class Params:
    """Random parameters from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def conv(self, n_in: int, n_out: int, k: int = 1, stride: int = 1, pad: int = 0, cls: str = "cudnn") -> TorchObject:
        bound = 1.0 / np.sqrt(n_in * k * k)
        return TorchObject(
            f"{cls}.SpatialConvolution",
            nInputPlane=n_in,
            nOutputPlane=n_out,
            kW=k,
            kH=k,
            dW=stride,
            dH=stride,
            padW=pad,
            padH=pad,
            weight=self.rng.uniform(-bound, bound, (n_out, n_in, k, k)).astype(np.float32),
            bias=self.rng.uniform(-bound, bound, n_out).astype(np.float32),
            train=False,
        )

    def bn(self, n: int) -> TorchObject:
        return TorchObject(
            "nn.SpatialBatchNormalization",
            eps=1e-5,
            momentum=0.1,
            affine=True,
            weight=self.rng.uniform(0.5, 1.5, n).astype(np.float32),
            bias=self.rng.normal(0, 0.2, n).astype(np.float32),
            running_mean=self.rng.normal(0, 0.3, n).astype(np.float32),
            running_var=self.rng.uniform(0.5, 1.5, n).astype(np.float32),
            train=False,
        )


def relu() -> TorchObject:
    return TorchObject("cudnn.ReLU", inplace=True, train=False)


def maxpool() -> TorchObject:
    return TorchObject("cudnn.SpatialMaxPooling", kW=2, kH=2, dW=2, dH=2, padW=0, padH=0, train=False)


def sequential(*modules: TorchObject) -> TorchObject:
    return TorchObject("nn.Sequential", modules=list(modules), train=False)


def residual(p: Params, n_in: int, n_out: int) -> TorchObject:
    """pose-hg-train ``layers/Residual.lua``: ConcatTable(convBlock, skipLayer) then CAddTable."""
    half = n_out // 2
    block = sequential(
        p.bn(n_in), relu(), p.conv(n_in, half), p.bn(half), relu(), p.conv(half, half, 3, 1, 1),
        p.bn(half), relu(), p.conv(half, n_out),
    )  # fmt: skip
    skip = TorchObject("nn.Identity", train=False) if n_in == n_out else sequential(p.conv(n_in, n_out))
    return sequential(TorchObject("nn.ConcatTable", modules=[block, skip]), TorchObject("nn.CAddTable", inplace=True))


# --- nngraph ---------------------------------------------------------------------------------------------


class Graph:
    """Builds an ``nngraph`` ``gModule``: ``node(module, *inputs)`` is Lua's ``module(inputs)``."""

    def __init__(self) -> None:
        self.nodes: list[TorchObject] = []

    def node(self, module: TorchObject | None, *inputs: TorchObject) -> TorchObject:
        mapindex = Table()
        for i, parent in enumerate(inputs, start=1):
            mapindex.set(i, parent.data)
            mapindex.set(parent.data, i)
        data = Table([("input", Table()), ("mapindex", mapindex), ("forwardNodeId", len(self.nodes) + 1)])
        if module is not None:
            data.set("module", module)
        node = TorchObject("nngraph.Node", data=data, children=Table(), visited=False, marked=False)
        for parent in inputs:
            parent.children.set(len(parent.children.pairs) + 1, node)
        self.nodes.append(node)
        return node

    def module(self, inputs: list[TorchObject], outputs: list[TorchObject]) -> TorchObject:
        """The ``gModule``: its ``forwardnodes`` end with a module-less output node whose inputs are ``outputs``."""
        out = self.node(None, *outputs)
        modules = [n.data.get("module") for n in self.nodes if n.data.get("module") is not None]
        return TorchObject(
            "nn.gModule",
            forwardnodes=list(self.nodes),
            innode=inputs[0],
            outnode=out,
            nInputs=len(inputs),
            modules=modules,
            train=False,
        )


# --- evaluation: Torch7 nn semantics in torch functional calls --------------------------------------------


def run_module(m: TorchObject, x: Any) -> Any:
    kind = m.class_name.split(".")[-1]
    if kind == "SpatialConvolution":
        w, b = torch.from_numpy(m.weight), torch.from_numpy(m.bias)
        return F.conv2d(x, w.view(m.nOutputPlane, m.nInputPlane, m.kH, m.kW), b, (m.dH, m.dW), (m.padH, m.padW))
    if kind == "SpatialBatchNormalization":
        t = {k: torch.from_numpy(getattr(m, k)) for k in ("running_mean", "running_var", "weight", "bias")}
        return F.batch_norm(x, t["running_mean"], t["running_var"], t["weight"], t["bias"], False, 0.0, m.eps)
    if kind == "ReLU":
        return F.relu(x)
    if kind == "SpatialMaxPooling":
        return F.max_pool2d(x, (m.kH, m.kW), (m.dH, m.dW))
    if kind == "SpatialUpSamplingNearest":
        return F.interpolate(x, scale_factor=float(m.scale_factor), mode="nearest")
    if kind == "Identity":
        return x
    if kind == "Sequential":
        for child in m.modules:
            x = run_module(child, x)
        return x
    if kind == "ConcatTable":
        return [run_module(child, x) for child in m.modules]
    if kind == "CAddTable":
        return sum(x[1:], x[0])
    raise ValueError(f"no evaluator for {m.class_name}")


def forward(g: TorchObject, x: torch.Tensor) -> list[torch.Tensor]:
    """Run a ``gModule`` built by :class:`Graph` on ``x`` (nodes are in topological order)."""
    values: dict[int, Any] = {}
    for node in g.forwardnodes:
        data = node.data
        parents = [v for k, v in data.get("mapindex").pairs if isinstance(k, int)]
        inputs = [values[id(p)] for p in parents]
        module = data.get("module")
        if node is g.innode:
            values[id(data)] = x
        elif module is None:
            values[id(data)] = inputs
        else:
            values[id(data)] = run_module(module, inputs[0] if len(inputs) == 1 else inputs)
    return values[id(g.outnode.data)]


def hg_lua(n_stack: int, n_modules: int, n_feats: int, n_parts: int, depth: int = 4, seed: int = 0) -> TorchObject:
    """``createModel()`` of pose-hg-train ``hg.lua`` with ``opt.nStack``, ``opt.nModules``, ``opt.nFeats``."""
    p, g = Params(seed), Graph()

    def hourglass(n, f, inp):
        up1 = inp
        for _ in range(n_modules):
            up1 = g.node(residual(p, f, f), up1)
        low1 = g.node(maxpool(), inp)
        for _ in range(n_modules):
            low1 = g.node(residual(p, f, f), low1)
        if n > 1:
            low2 = hourglass(n - 1, f, low1)
        else:
            low2 = low1
            for _ in range(n_modules):
                low2 = g.node(residual(p, f, f), low2)
        low3 = low2
        for _ in range(n_modules):
            low3 = g.node(residual(p, f, f), low3)
        up2 = g.node(TorchObject("nn.SpatialUpSamplingNearest", scale_factor=2, train=False), low3)
        return g.node(TorchObject("nn.CAddTable", inplace=False, train=False), up1, up2)

    def lin(n_in, n_out, inp):
        conv = g.node(p.conv(n_in, n_out), inp)
        return g.node(relu(), g.node(p.bn(n_out), conv))

    inp = g.node(TorchObject("nn.Identity", train=False))
    cnv1_ = g.node(p.conv(3, 64, 7, 2, 3), inp)
    cnv1 = g.node(relu(), g.node(p.bn(64), cnv1_))
    r1 = g.node(residual(p, 64, 128), cnv1)
    pool = g.node(maxpool(), r1)
    r4 = g.node(residual(p, 128, 128), pool)
    r5 = g.node(residual(p, 128, n_feats), r4)
    out, inter = [], r5
    for i in range(n_stack):
        hg = hourglass(depth, n_feats, inter)
        ll = hg
        for _ in range(n_modules):
            ll = g.node(residual(p, n_feats, n_feats), ll)
        ll = lin(n_feats, n_feats, ll)
        tmp_out = g.node(p.conv(n_feats, n_parts), ll)
        out.append(tmp_out)
        if i < n_stack - 1:
            ll_ = g.node(p.conv(n_feats, n_feats), ll)
            tmp_out_ = g.node(p.conv(n_parts, n_feats), tmp_out)
            inter = g.node(TorchObject("nn.CAddTable", inplace=False, train=False), inter, ll_, tmp_out_)
    return g.module([inp], out)
