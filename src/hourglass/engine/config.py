"""Typed run configuration, read from a YAML recipe (``configs/*.yaml``) plus ``--set key=value`` overrides.

Every section is a dataclass; :func:`load_config` checks each key and type and raises :class:`ConfigError`
naming the dotted key (``optim.lr``) and what was expected. Paths in a recipe are taken relative to the
working directory, like the command-line tools that read them.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml


class ConfigError(ValueError):
    """A recipe or override that does not fit the schema; the message names the key."""


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
    """Dataset format, splits, codec settings (sizes are (height, width)) and loader options."""

    format: Literal["mpii", "coco"] = "mpii"
    train: SplitConfig = field(default_factory=SplitConfig)
    val: SplitConfig = field(default_factory=SplitConfig)
    input_size: tuple[int, int] = (256, 256)
    heatmap_size: tuple[int, int] = (64, 64)
    sigma: float = 2.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    skip_bad: bool = False
    num_workers: int = 2


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule. ``milestones`` are epochs; ``warmup_steps`` are iterations."""

    name: Literal["rmsprop", "adam", "adamw", "sgd"] = "rmsprop"
    lr: float = 2.5e-4
    weight_decay: float = 0.0
    momentum: float = 0.0
    schedule: Literal["constant", "step", "cosine"] = "step"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    warmup_steps: int = 0


@dataclass
class TrainConfig:
    """Loop settings. ``batch_size`` is the global batch, split evenly over distributed processes.

    Training stops at whichever comes first of ``epochs``, ``max_steps`` and ``time_limit_s`` (seconds of
    training, excluding start-up and evaluation).
    """

    epochs: int = 1
    max_steps: int | None = None
    time_limit_s: float | None = None
    batch_size: int = 16
    seed: int = 0
    amp: Literal["none", "bf16", "fp16"] = "bf16"
    channels_last: bool = True
    sync_batchnorm: bool = False
    device: str = "auto"
    out_dir: str = "runs/train"
    log_every: int = 10
    val_every: int = 1
    best_metric: str = "pckh@0.5"
    grad_clip: float | None = None
    progress: bool = True
    tensorboard: bool = True


@dataclass
class EvalConfig:
    """Evaluation: flip test, batch size and the PCK threshold used to pick the best checkpoint."""

    flip: bool = True
    batch_size: int = 32
    pck_threshold: float = 0.5
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


def load_config(path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML recipe (or start from the defaults when ``path`` is None) and apply ``key=value`` overrides.

    Override values are parsed as YAML (``--set train.epochs=3``, ``--set data.input_size=[128,128]``).

    Raises:
        ConfigError: unreadable file, unknown key, wrong type or invalid value, naming the key.
    """
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise ConfigError(f"{path}: cannot read config ({err.strerror or err})") from err
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err})") from err
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(loaded).__name__}")
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
    need(cfg.optim.lr > 0, "optim.lr", "> 0", cfg.optim.lr)
    need(cfg.optim.warmup_steps >= 0, "optim.warmup_steps", ">= 0", cfg.optim.warmup_steps)
    need(cfg.train.batch_size >= 1, "train.batch_size", ">= 1", cfg.train.batch_size)
    need(cfg.train.epochs >= 1, "train.epochs", ">= 1", cfg.train.epochs)
    need(cfg.train.max_steps is None or cfg.train.max_steps >= 0, "train.max_steps", ">= 0", cfg.train.max_steps)
    need(cfg.train.log_every >= 1, "train.log_every", ">= 1", cfg.train.log_every)
    need(cfg.train.val_every >= 0, "train.val_every", ">= 0 (0 disables validation)", cfg.train.val_every)
    need(cfg.eval.batch_size >= 1, "eval.batch_size", ">= 1", cfg.eval.batch_size)
    need(0 < cfg.eval.pck_threshold <= 1, "eval.pck_threshold", "in (0, 1]", cfg.eval.pck_threshold)
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
        return _convert(value, inner[0], key, source)
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


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
