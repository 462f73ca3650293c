"""Typed run configuration, read from a YAML recipe plus ``--set key=value`` overrides.

A recipe is a YAML file on disk or the name of one shipped inside the package (``hourglass/recipes/``,
package data read with :mod:`importlib.resources`, so ``--config mpii-hg2`` works after ``pip install`` in
any directory; :func:`list_recipes` names them). Every section is a dataclass; :func:`load_config` checks
each key and type and raises :class:`ConfigError` naming the dotted key (``optim.lr``) and what was
expected. Paths inside a recipe are taken relative to the working directory, like the command-line tools
that read them.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import os
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from hourglass.errors import ConfigError


@dataclass
class ModelConfig:
    """``create_model(name, **kwargs)``; ``norm`` picks the normalisation layer (``group`` = GroupNorm)."""

    name: str = "hg2"
    kwargs: dict[str, Any] = field(default_factory=dict)
    norm: Literal["batch", "group"] = "batch"
    grad_checkpointing: bool = False


@dataclass
class SplitConfig:
    """One split on disk: the annotation file and the folder its image paths are relative to.

    ``detections`` (COCO format only) is a detection-results JSON whose person boxes replace the
    ground-truth boxes, for evaluation with a detector as in the COCO keypoint benchmark.
    ``head_boxes`` (MPII format only) is a ``gt_valid.mat`` (or pose-hg-train ``valid.h5``) listing the same
    people in the same order; its head boxes give the PCKh head sizes that HRNet's MPII JSON does not carry.
    """

    annotations: str = ""
    images: str = ""
    detections: str = ""
    head_boxes: str = ""


@dataclass
class AugmentConfig:
    """Training augmentation: rotation in degrees (+-), scale factor range, horizontal flip, colour jitter."""

    rotation: float = 30.0
    scale: tuple[float, float] = (0.75, 1.25)
    flip: bool = True
    color_jitter: float = 0.2


@dataclass
class DataConfig:
    """Dataset format, splits, codec settings (sizes are (height, width)) and loader options.

    ``holdout`` (format ``lsp`` only): the last ``holdout`` records of ``train.annotations`` are not trained on;
    when ``val.annotations`` names the same file, validation scores exactly those records (any other file is
    scored whole).
    """

    format: Literal["mpii", "coco", "lsp"] = "mpii"
    train: SplitConfig = field(default_factory=SplitConfig)
    val: SplitConfig = field(default_factory=SplitConfig)
    holdout: int = 0
    input_size: tuple[int, int] = (256, 256)
    heatmap_size: tuple[int, int] = (64, 64)
    sigma: float = 2.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    skip_bad: bool = False
    num_workers: int = 2


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule. ``milestones`` are epochs; ``warmup_steps`` are iterations.

    ``fused``: torch's one-pass kernels (fused Adam/AdamW/SGD, multi-tensor RMSprop); ``false`` runs torch's
    per-parameter loop, the same update rule (:func:`hourglass.training.optim.build_optimizer`).
    """

    name: Literal["rmsprop", "adam", "adamw", "sgd"] = "rmsprop"
    lr: float = 2.5e-4
    weight_decay: float = 0.0
    momentum: float = 0.0
    schedule: Literal["constant", "step", "cosine"] = "step"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    warmup_steps: int = 0
    fused: bool = True


@dataclass
class TrainConfig:
    """Loop settings. ``batch_size`` is the global batch, split evenly over distributed processes.

    Training stops at whichever comes first of ``epochs``, ``max_steps`` and ``time_limit_s`` (seconds of
    training, excluding start-up and evaluation).

    ``step`` is how a bf16 step runs (:mod:`hourglass.training.step`): ``autocast`` casts fp32 weights in
    every forward; ``bf16_weights`` trains a bf16 working copy with fp32 master weights (one process only);
    ``auto`` picks ``bf16_weights`` for bf16 on a CPU in one process, else ``autocast``.
    ``procs`` runs training data-parallel in that many processes of this machine, started by ``hourglass
    train`` itself (:mod:`hourglass.training.local`; ``auto``: one per usable CPU core, see
    :func:`~hourglass.training.local.resolve_procs`); under torchrun it is ignored.
    ``last.safetensors`` is written at every epoch end and, mid-epoch, every ``save_every_steps`` steps
    and/or every ``save_every_minutes`` minutes of wall time, whichever comes first; ``--resume`` from a
    mid-epoch checkpoint continues at the same batch of the same epoch.
    """

    epochs: int = 1
    max_steps: int | None = None
    time_limit_s: float | None = None
    batch_size: int = 16
    seed: int = 0
    amp: Literal["none", "bf16", "fp16"] = "bf16"
    channels_last: bool = True
    step: Literal["auto", "autocast", "bf16_weights"] = "auto"
    procs: int | Literal["auto"] = 1
    sync_batchnorm: bool = False
    device: str = "auto"
    out_dir: str = "runs/train"
    log_every: int = 10
    val_every: int = 1
    best_metric: str = "pckh@0.5"
    grad_clip: float | None = None
    progress: bool = True
    tensorboard: bool = True
    save_every_steps: int | None = None
    save_every_minutes: float | None = None


@dataclass
class EvalConfig:
    """Evaluation: flip test, batch size, and at most how many records to score (``None``: all).

    The scores are fixed by the dataset kind (``hourglass.evaluation.evaluate``); ``train.best_metric`` picks
    which of them chooses ``best.safetensors``.
    """

    flip: bool = True
    batch_size: int = 32
    max_samples: int | None = None


@dataclass
class Config:
    """A whole run: ``model``, ``data``, ``optim``, ``train``, ``eval``."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON- and YAML-serialisable form (tuples become lists)."""
        return _plain(dataclasses.asdict(self))


def list_recipes() -> list[str]:
    """Names of the recipes shipped with the package (``hourglass/recipes/<name>.yaml``), sorted."""
    folder = importlib.resources.files("hourglass") / "recipes"
    return sorted(f.name.removesuffix(".yaml") for f in folder.iterdir() if f.name.endswith(".yaml"))


def read_recipe(path: str | os.PathLike[str]) -> tuple[str, str]:
    """``(source, text)`` of a recipe: a YAML file on disk, else a shipped recipe of that name.

    ``mpii-hg2`` and ``mpii-hg2.yaml`` name the shipped recipe unless a file of that name exists in the
    working directory (a file on disk always wins).

    Raises:
        ConfigError: neither a readable file nor a shipped recipe; the message lists the recipes.
    """
    disk = Path(path)
    if disk.is_file():
        try:
            return str(path), disk.read_text()
        except OSError as err:
            raise ConfigError(f"{path}: cannot read config ({err.strerror or err})") from err
    name = str(path).removesuffix(".yaml")
    if name in list_recipes():
        shipped = importlib.resources.files("hourglass") / "recipes" / f"{name}.yaml"
        return f"recipe {name}", shipped.read_text()
    raise ConfigError(
        f"{path}: cannot read config (no such file) and no recipe of that name ships with hourglass "
        f"({', '.join(list_recipes())})"
    )


def load_config(path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None) -> Config:
    """Read a recipe (a YAML file, or the name of a shipped one: :func:`read_recipe`), or start from the
    defaults when ``path`` is None, and apply ``key=value`` overrides.

    Override values are parsed as YAML (``--set train.epochs=3``, ``--set data.input_size=[128,128]``).

    Raises:
        ConfigError: unreadable file, unknown key, wrong type or invalid value, naming the key.
    """
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source, text = read_recipe(path)
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"{source}: not valid YAML ({err})") from err
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{source}: expected a mapping of sections at the top level, got {type(loaded).__name__}")
        raw = loaded or {}
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. optim.lr=1e-3")
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {item!r}: value is not valid YAML ({err})") from err
        _set_dotted(raw, key.strip().split("."), parsed)
    cfg = _build(Config, raw, "", source)
    validate(cfg, source)
    return cfg


def validate(cfg: Config, source: str = "config") -> None:
    """Value checks beyond types (positive sizes and rates, even splits), naming the key."""

    def need(ok: bool, key: str, what: str, value: Any) -> None:
        if not ok:
            raise ConfigError(f"{source}: {key} must be {what}, got {value!r}")

    for key, size in (("data.input_size", cfg.data.input_size), ("data.heatmap_size", cfg.data.heatmap_size)):
        need(all(s > 0 for s in size), key, "two positive integers [height, width]", list(size))
    need(cfg.data.sigma > 0, "data.sigma", "> 0", cfg.data.sigma)
    lo, hi = cfg.data.augment.scale
    need(0 < lo <= hi, "data.augment.scale", "[low, high] with 0 < low <= high", [lo, hi])
    need(cfg.data.num_workers >= 0, "data.num_workers", ">= 0", cfg.data.num_workers)
    need(cfg.data.holdout >= 0, "data.holdout", ">= 0 (records held out of training)", cfg.data.holdout)
    need(cfg.data.holdout == 0 or cfg.data.format == "lsp", "data.holdout",
         "0 unless data.format is lsp (one person per record and image)", cfg.data.holdout)  # fmt: skip
    need(cfg.optim.lr > 0, "optim.lr", "> 0", cfg.optim.lr)
    need(cfg.optim.warmup_steps >= 0, "optim.warmup_steps", ">= 0", cfg.optim.warmup_steps)
    need(cfg.train.batch_size >= 1, "train.batch_size", ">= 1", cfg.train.batch_size)
    need(cfg.train.epochs >= 1, "train.epochs", ">= 1", cfg.train.epochs)
    need(cfg.train.max_steps is None or cfg.train.max_steps >= 0, "train.max_steps", ">= 0", cfg.train.max_steps)
    procs = cfg.train.procs
    need(procs == "auto" or procs >= 1, "train.procs", "a positive integer or 'auto'", procs)
    need(cfg.train.log_every >= 1, "train.log_every", ">= 1", cfg.train.log_every)
    every = cfg.train.save_every_steps
    need(every is None or every >= 1, "train.save_every_steps", ">= 1 (or null)", every)
    minutes = cfg.train.save_every_minutes
    need(minutes is None or minutes > 0, "train.save_every_minutes", "> 0 (or null)", minutes)
    need(cfg.train.val_every >= 0, "train.val_every", ">= 0 (0 disables validation)", cfg.train.val_every)
    need(cfg.eval.batch_size >= 1, "eval.batch_size", ">= 1", cfg.eval.batch_size)
    need(cfg.train.device in ("auto", "cpu") or cfg.train.device.startswith("cuda"), "train.device",
         "'auto', 'cpu' or 'cuda[:N]'", cfg.train.device)  # fmt: skip


def _set_dotted(tree: dict[str, Any], keys: list[str], value: Any) -> None:
    for i, k in enumerate(keys[:-1]):
        node = tree.get(k)
        if node is None:
            node = tree[k] = {}
        if not isinstance(node, dict):
            raise ConfigError(f"--set {'.'.join(keys)}: {'.'.join(keys[: i + 1])} is not a section")
        tree = node
    tree[keys[-1]] = value


def _build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {where} must be a mapping, got {type(raw).__name__} {raw!r}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in raw if k not in names]
    if unknown:
        key = str(unknown[0])
        close = difflib.get_close_matches(key, names, n=1)
        hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; known keys: {', '.join(names)}"
        raise ConfigError(f"{source}: unknown key '{prefix}{key}'{hint}")
    values = {name: _convert(raw[name], hints[name], f"{prefix}{name}", source) for name in names if name in raw}
    return cls(**values)


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    origin = get_origin(tp)
    args = get_args(tp)

    def fail(expected: str) -> ConfigError:
        return ConfigError(f"{source}: {key} must be {expected}, got {type(value).__name__} {value!r}")

    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, f"{key}.", source)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for tp_i in inner[:-1]:  # e.g. int | Literal["auto"]: the first type that takes the value
            try:
                return _convert(value, tp_i, key, source)
            except ConfigError:
                pass
        try:
            return _convert(value, inner[-1], key, source)
        except ConfigError:
            if len(inner) == 1:
                raise
            raise fail(" or ".join(_describe(a) for a in inner)) from None
    if origin is Literal:
        if value not in args:
            raise fail("one of " + ", ".join(repr(a) for a in args))
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise fail("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("an integer")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise fail("a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail("a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise fail("a string")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise fail(f"a list of {len(args)} values")
        return tuple(_convert(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise fail("a list")
        return [_convert(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise fail("a mapping")
        return dict(value)
    raise TypeError(f"config schema: unsupported type {tp!r} for {key}")


def _describe(tp: Any) -> str:
    """How an error message names what a type accepts."""
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
