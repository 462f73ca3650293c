"""What a checkpoint says about itself, typed: :class:`CheckpointMeta`, read and written here only.

The JSON form (the ``hourglass`` entry of the ``.safetensors`` header) is::

    {"model": {"name": "hg2", "kwargs": {...}},      # create_model(name, **kwargs) rebuilds the network
     "data": {"input_size": [H, W], "heatmap_size": [h, w], "sigma": 2.0, "dark": false, "blur_kernel": 11,
              "skeleton": "mpii_16" | {COCO category}, "format": "mpii" | "coco",
              "normalisation": "rgb/255"},            # how images become network inputs
     "step": int, "epoch": int, "metrics": {...},     # provenance: where training stopped, its scores
     "config": {...}, "source": {...}}                # the run's recipe, or where converted weights came from

Checkpoints written before this module (without ``dark``, ``blur_kernel`` or ``normalisation``) read back
with the defaults, which are what they were trained with.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hourglass.config import Config
from hourglass.data.build import make_codec
from hourglass.data.codec import HeatmapCodec
from hourglass.data.skeletons import Skeleton, get_skeleton, skeleton_spec
from hourglass.errors import CheckpointError, ConfigError, DataError
from hourglass.models.summary import image_size

NORMALISATION = "rgb/255"
"""The one input convention: RGB channel order, ``uint8`` pixels divided by 255 (``[0, 1]``), no mean or std."""

DEFAULT_INPUT_SIZE = (256, 256)
"""``(H, W)`` assumed for a network whose metadata has no codec (a bare preset): the paper's crop."""


@dataclass
class CheckpointMeta:
    """A checkpoint's description of itself: model, codec, skeleton, input convention and provenance.

    Attributes:
        model: preset name for :func:`hourglass.models.create_model`.
        model_kwargs: its keyword arguments (JSON; a normalisation layer by name, ``"norm_layer": "group"``).
        codec: the heatmap codec of training (input size, heatmap size, sigma, DARK); None if unknown.
        skeleton: the joints (names, flip pairs, colours); None if unknown (then a caller must supply one).
        data_format: ``"mpii"`` or ``"coco"``, the annotation format trained on; None if unknown.
        normalisation: how images become inputs; only :data:`NORMALISATION` exists today.
        step, epoch, metrics: where training stopped and the validation scores there.
        config: the training recipe as a dict (``Config.to_dict()``), if any.
        source: provenance of converted weights (``{"from": ..., "file": ...}``), if any.
    """

    model: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    codec: HeatmapCodec | None = None
    skeleton: Skeleton | None = None
    data_format: str | None = None
    normalisation: str = NORMALISATION
    step: int = 0
    epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    source: dict[str, Any] | None = None

    @classmethod
    def from_config(cls, cfg: Config, skeleton: Skeleton) -> CheckpointMeta:
        """What a run of ``cfg`` on a dataset of ``skeleton`` writes (step 0, no metrics; the loop fills those).

        ``num_joints`` is set from the skeleton; ``model.norm`` other than ``batch`` is stored by name.

        Raises:
            ConfigError: ``model.kwargs`` sets ``norm_layer`` (use ``model.norm``) or a ``num_joints`` that
                is not the skeleton's.
        """
        kwargs = dict(cfg.model.kwargs)
        if "norm_layer" in kwargs:
            raise ConfigError("model.kwargs.norm_layer: set model.norm (batch or group) instead")
        if kwargs.get("num_joints", skeleton.num_joints) != skeleton.num_joints:
            raise ConfigError(
                f"model.kwargs.num_joints={kwargs['num_joints']} but the dataset's skeleton has "
                f"{skeleton.num_joints} joints"
            )
        kwargs["num_joints"] = skeleton.num_joints
        if cfg.model.norm != "batch":
            kwargs["norm_layer"] = cfg.model.norm
        return cls(
            model=cfg.model.name,
            model_kwargs=kwargs,
            codec=make_codec(cfg),
            skeleton=skeleton,
            data_format=cfg.data.format,
            config=cfg.to_dict(),
        )

    @property
    def input_size(self) -> tuple[int, int]:
        """``(H, W)`` of the network input: the codec's, else :data:`DEFAULT_INPUT_SIZE`."""
        return self.codec.input_size if self.codec is not None else DEFAULT_INPUT_SIZE

    def input_size_or(self, given: Sequence[int] | None, channels: int = 3) -> tuple[int, int]:
        """``given`` as ``(H, W)`` when there is one, else :attr:`input_size` (the checkpoint's or 256x256).

        The one rule for "the checkpoint's input size unless one is given" (runtimes, bench, bench --train,
        export). ``given`` may be ``H W`` or ``C H W`` with ``C`` equal to ``channels``, the model's input
        channels (:func:`hourglass.models.summary.image_size`).

        Raises:
            ConfigError: ``given`` has another count of numbers, another ``C``, or a size below 1.
        """
        return self.input_size if given is None else image_size(given, channels)

    @property
    def num_joints(self) -> int | None:
        """Heatmaps per stack, from the model's kwargs (None when the preset's default applies)."""
        return self.model_kwargs.get("num_joints")

    def require_codec(self, path: str | os.PathLike[str]) -> HeatmapCodec:
        """The codec, or :class:`CheckpointError` naming ``path`` when the metadata has none."""
        if self.codec is None:
            raise CheckpointError(f"{path}: checkpoint metadata has no data.input_size; cannot tell how to crop")
        return self.codec

    def require_skeleton(
        self, path: str | os.PathLike[str], override: Skeleton | str | Mapping[str, Any] | None = None
    ) -> Skeleton:
        """``override`` (a skeleton, name or COCO category) or the stored skeleton, checked against the joint count.

        Raises:
            CheckpointError: no skeleton stored and none given, or one whose joint count is not the network's.
        """
        if override is None and self.skeleton is None:
            raise CheckpointError(
                f"{path}: checkpoint metadata has no data.skeleton; pass one (e.g. skeleton='mpii_16')"
            )
        skeleton = get_skeleton(override) if override is not None else self.skeleton
        assert skeleton is not None
        if self.num_joints is not None and self.num_joints != skeleton.num_joints:
            raise CheckpointError(
                f"{path}: the network predicts {self.num_joints} joints but skeleton {skeleton.name!r} "
                f"has {skeleton.num_joints}"
            )
        return skeleton

    def to_json(self) -> dict[str, Any]:
        """The JSON form of the module docstring (plain types only)."""
        data: dict[str, Any] = {"normalisation": self.normalisation}
        if self.codec is not None:
            data.update(self.codec.to_dict())
        if self.skeleton is not None:
            data["skeleton"] = skeleton_spec(self.skeleton)
        if self.data_format is not None:
            data["format"] = self.data_format
        out: dict[str, Any] = {
            "model": {"name": self.model, "kwargs": dict(self.model_kwargs)},
            "data": data,
            "step": self.step,
            "epoch": self.epoch,
            "metrics": dict(self.metrics),
        }
        if self.config is not None:
            out["config"] = self.config
        if self.source is not None:
            out["source"] = self.source
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], path: str | os.PathLike[str] = "checkpoint") -> CheckpointMeta:
        """Read the JSON form back, checking each entry.

        Raises:
            CheckpointError: a missing model name or an entry of the wrong kind, naming ``path`` and the key.
        """
        if not isinstance(raw, Mapping):
            raise CheckpointError(f"{path}: checkpoint metadata must be a JSON object, got {type(raw).__name__}")
        spec = raw.get("model")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise CheckpointError(f"{path}: checkpoint metadata needs a 'model' entry with a 'name'")
        kwargs = spec.get("kwargs", {})
        data = raw.get("data") or {}
        for key, value, kind in (("model.kwargs", kwargs, Mapping), ("data", data, Mapping)):
            if not isinstance(value, kind):
                raise CheckpointError(f"{path}: checkpoint metadata {key} must be an object, got {value!r}")
        normalisation = data.get("normalisation", NORMALISATION)
        if normalisation != NORMALISATION:
            raise CheckpointError(
                f"{path}: data.normalisation={normalisation!r}; this version feeds networks {NORMALISATION!r} only"
            )
        try:
            codec = HeatmapCodec.from_dict(data, f"{path}: data") if "input_size" in data else None
            skeleton = get_skeleton(data["skeleton"]) if data.get("skeleton") is not None else None
        except DataError as err:
            raise CheckpointError(str(err) if str(err).startswith(str(path)) else f"{path}: {err}") from None
        return cls(
            model=spec["name"],
            model_kwargs=dict(kwargs),
            codec=codec,
            skeleton=skeleton,
            data_format=data.get("format"),
            normalisation=normalisation,
            step=int(raw.get("step", 0)),
            epoch=int(raw.get("epoch", 0)),
            metrics=dict(raw.get("metrics") or {}),
            config=raw.get("config"),
            source=raw.get("source"),
        )

    def check_same_data(
        self, path: str | os.PathLike[str], other: CheckpointMeta, keys: tuple[str, ...], against: str = "this run"
    ) -> None:
        """Refuse a checkpoint whose ``keys`` (``input_size``, ``heatmap_size``, ``skeleton``) differ from ``other``'s.

        Keys this checkpoint does not record are not compared. The message names the key, both values and
        ``against`` (what ``other`` describes: "this run", "the config").
        """
        mine, theirs = self.to_json()["data"], other.to_json()["data"]
        for key in keys:
            if key in mine and key in theirs and mine[key] != theirs[key]:
                raise CheckpointError(
                    f"{path}: checkpoint has data.{key}={mine[key]!r} but {against} has {theirs[key]!r}"
                )


def as_meta(meta: CheckpointMeta | Mapping[str, Any], path: str | os.PathLike[str] = "checkpoint") -> CheckpointMeta:
    """``meta`` itself, or its JSON form read by :meth:`CheckpointMeta.from_json`."""
    return meta if isinstance(meta, CheckpointMeta) else CheckpointMeta.from_json(meta, path)
