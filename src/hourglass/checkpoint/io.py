"""Checkpoints: one ``.safetensors`` file of weights whose header carries everything needed to rebuild.

The header metadata (``safetensors`` string map) holds ``format`` and ``hourglass``, the latter the JSON
form of a :class:`~hourglass.checkpoint.meta.CheckpointMeta` (model, codec, skeleton, input convention,
provenance), so ``--checkpoint path/x.safetensors`` alone suffices for eval, predict and export. Files are written
atomically: a temporary file in the same folder, fsync, then ``os.replace``; a failure leaves any
previous file untouched (:func:`hourglass.files.atomic_write`; the file gets the umask's mode, as any
new file). Pickled checkpoints (``.pt``/``.pth``) are never unpickled here.

For ``--resume``, the optimiser, scheduler and random-generator state live beside the weights in
``x.state.pt`` (:func:`training_state_path`), written with ``torch.save`` and read back only with
``torch.load(weights_only=True)``, which refuses any pickle that would build arbitrary objects.

Model kwargs in the metadata are JSON; a layer type is stored by name (``"norm_layer": "group"``) and
resolved by :func:`build_model` through :data:`hourglass.models.blocks.NORM_LAYERS`.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file
from torch import nn

from hourglass.checkpoint.meta import CheckpointMeta, as_meta
from hourglass.errors import CheckpointError
from hourglass.files import atomic_write
from hourglass.models import create_model
from hourglass.models.blocks import NORM_LAYERS

FORMAT = "hourglass/1"


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, meta: CheckpointMeta | Mapping[str, Any]) -> Path:
    """Write ``model``'s state dict and ``meta`` (typed, or its JSON form, checked) atomically."""
    meta = as_meta(meta, path)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    header = {"format": FORMAT, "hourglass": json.dumps(meta.to_json(), sort_keys=True)}
    return atomic_write(path, lambda tmp: save_file(state, tmp, metadata=header))


def read_meta(path: str | os.PathLike[str]) -> CheckpointMeta:
    """The typed metadata of a checkpoint, without reading its tensors."""
    return CheckpointMeta.from_json(read_metadata(path), path)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a checkpoint in its JSON form (as stored), without reading its tensors."""
    with _open(path) as f:
        return f.hourglass_json()


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    """``(state_dict, meta)`` of a checkpoint written by :func:`save_checkpoint` (the file opened once)."""
    with _open(path) as f:
        meta = CheckpointMeta.from_json(f.hourglass_json(), f.path)
        return {k: v.to(map_location) for k, v in f.tensors().items()}, meta


class _SafetensorsFile:
    """A checkpoint file open for reading: header (metadata, tensor names and shapes) read on opening,
    tensors on demand, from the same open file.

    The layout is safetensors': an 8-byte little-endian header length, the JSON header (``__metadata__``,
    then per tensor ``dtype``, ``shape``, ``data_offsets``), the tensor bytes.
    """

    def __init__(self, path: Path, f: BinaryIO) -> None:
        self.path, self.file = path, f
        head = f.read(9)
        # the header length's low byte may be 0x80: only a file not starting like a safetensors one is a pickle
        if not (len(head) == 9 and head[8:9] == b"{"):
            if head[:1] == b"\x80" or head[:2] == b"PK":
                raise CheckpointError(
                    f"{path}: a pickled PyTorch checkpoint; those can run arbitrary code when loaded and are "
                    "refused. Use a .safetensors checkpoint (or `hourglass convert` for foreign weights)"
                )
            raise CheckpointError(f"{path}: not a readable .safetensors checkpoint (no safetensors header)")
        length, size = int.from_bytes(head[:8], "little"), os.fstat(f.fileno()).st_size
        if 8 + length > size:
            raise CheckpointError(
                f"{path}: not a readable .safetensors checkpoint (header of {length} bytes in a file of {size})"
            )
        try:
            header = json.loads(head[8:] + f.read(length - 1))
            self.metadata: dict[str, str] = header.pop("__metadata__", None) or {}
            self.shapes = {k: tuple(int(n) for n in v["shape"]) for k, v in header.items()}
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise CheckpointError(f"{path}: not a readable .safetensors checkpoint (header: {err})") from err

    def hourglass_json(self) -> dict[str, Any]:
        """The header's ``hourglass`` entry, parsed; refused when the header has none."""
        if self.metadata.get("format") != FORMAT or "hourglass" not in self.metadata:
            raise CheckpointError(
                f"{self.path}: a .safetensors file without hourglass metadata (expected format {FORMAT!r}); "
                "convert foreign weights with `hourglass convert`"
            )
        return json.loads(self.metadata["hourglass"])

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor, on the CPU (the whole file read once more from the open file)."""
        self.file.seek(0)
        try:
            return load_safetensors(self.file.read())
        except SafetensorError as err:
            raise CheckpointError(f"{self.path}: not a readable .safetensors checkpoint ({err})") from err


@contextlib.contextmanager
def _open(path: str | os.PathLike[str]) -> Iterator[_SafetensorsFile]:
    """The checkpoint at ``path`` opened once; a missing file or a pickle is a :class:`CheckpointError`."""
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.safetensors"))
        pick = f": pass one of the files in it, e.g. {path / found[0]}" if found else " and holds no .safetensors file"
        raise CheckpointError(f"{path}: a folder, not a checkpoint file{pick}")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.name.endswith(".state.pt"):
        weights = path.with_name(path.name.removesuffix(".state.pt") + ".safetensors")
        raise CheckpointError(
            f"{path}: the resume state that goes with {weights.name}, not a checkpoint; pass {weights} "
            "(--resume reads the state beside it)"
        )
    with open(path, "rb") as f:
        yield _SafetensorsFile(path, f)


def build_model(meta: CheckpointMeta | Mapping[str, Any]) -> nn.Module:
    """The (untrained) model a checkpoint's metadata describes (typed, or its JSON form ``{"model": ...}``).

    A string ``norm_layer`` in the kwargs is looked up in :data:`NORM_LAYERS`.
    """
    meta = as_meta(meta)
    kwargs = dict(meta.model_kwargs)
    norm = kwargs.get("norm_layer")
    if isinstance(norm, str):
        if norm not in NORM_LAYERS:
            raise CheckpointError(f"model.kwargs.norm_layer: unknown {norm!r}; known: {', '.join(NORM_LAYERS)}")
        kwargs["norm_layer"] = NORM_LAYERS[norm]
    return create_model(meta.model, **kwargs)


def training_state_path(path: str | os.PathLike[str]) -> Path:
    """Where the resume state of checkpoint ``path`` lives: ``x.safetensors`` -> ``x.state.pt``."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".safetensors") + ".state.pt")


def save_training_state(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Write ``state`` (optimiser/scheduler state dicts, RNG states, counters: tensors and plain data) atomically."""
    return atomic_write(path, lambda tmp: torch.save(dict(state), tmp))


def save_checkpoint_with_state(
    path: str | os.PathLike[str], model: nn.Module, meta: CheckpointMeta, state: Mapping[str, Any]
) -> Path:
    """Write checkpoint ``path`` and its resume state (:func:`training_state_path`) as a pair; returns ``path``.

    Both files are written under temporary names before either is renamed into place, so a write that
    fails (a full disk) leaves the previous pair as it was: weights and state of one step, which ``--resume``
    accepts. Only a crash between the two renames (the weights', then the state's) leaves a pair of two
    steps, and ``--resume`` refuses that by the ``step`` both record.
    """

    def state_then_weights(tmp: str) -> None:
        torch.save(dict(state), tmp)
        save_checkpoint(path, model, meta)

    atomic_write(training_state_path(path), state_then_weights)
    return Path(path)


def resumable_step(path: str | os.PathLike[str]) -> int | None:
    """The step of checkpoint ``path`` if its resume state is beside it and records the same step; else ``None``
    (no such files, unreadable ones, or weights and state of different steps)."""
    state_path = training_state_path(path)
    if not (Path(path).is_file() and state_path.is_file()):
        return None
    try:
        step = read_meta(path).step
        return step if load_training_state(state_path).get("step") == step else None
    except CheckpointError:
        return None


def load_weights_only(path: Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU: tensors and plain containers only, no code runs.

    Raises:
        CheckpointError: the file is unreadable or needs code to load; the message names the file, ``what``
            it should have been and the loader's first line.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise CheckpointError(
            f"{path}: cannot read as {what} (loaded with weights_only=True, which admits only tensors and plain "
            f"containers: {first})"
        ) from err


def load_training_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a state file of :func:`save_training_state` with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: missing file, or a pickle holding anything but tensors and plain containers.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no resume state beside the checkpoint (expected {path.name})")
    state = load_weights_only(path, "a resume state")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: resume state must be a dict, got {type(state).__name__}")
    return state


def open_model(
    path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    expect: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, CheckpointMeta]:
    """The network of a local checkpoint file, its weights loaded: ``(model.eval(), meta)``, the file opened once.

    The metadata is checked against the tensors' names and shapes before anything is allocated
    (:func:`check_tensors`). ``expect`` optionally gives ``model`` settings (``name`` and/or kwargs such as
    ``num_joints``) that the checkpoint must match; a mismatch is a :class:`CheckpointError` naming the setting
    and both values. Names and URLs are :func:`hourglass.checkpoint.load.load_model`'s.
    """
    with _open(path) as f:
        meta = CheckpointMeta.from_json(f.hourglass_json(), f.path)
        if expect:
            check_compatible(f.path, meta, expect)
        check_tensors(f.path, meta, f.shapes)
        model = build_model(meta)
        load_state(f.path, model, f.tensors())
    return model.to(map_location).eval(), meta


def check_tensors(path: str | os.PathLike[str], meta: CheckpointMeta, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse a checkpoint whose tensors (``shapes``: name -> shape, from the header) are not those of the
    network its metadata describes, before anything is allocated: the network is built on torch's ``meta``
    device, which has shapes and no storage (a lying ``num_channels`` of 200,000 costs nothing here).

    Raises:
        CheckpointError: naming ``path``, the model and the missing, unexpected or misshaped tensors.
    """
    with torch.device("meta"):
        model = build_model(meta)
    problems = state_mismatch(model.state_dict(), shapes)
    if problems:
        raise CheckpointError(
            f"{path}: the metadata's model ({meta.model} {json.dumps(meta.model_kwargs, sort_keys=True)}) does not "
            f"fit the tensors in the file: {problems}"
        )


def check_compatible(path: str | os.PathLike[str], meta: CheckpointMeta, expect: Mapping[str, Any]) -> None:
    """Refuse a checkpoint whose architecture differs from ``expect`` (``{"name": ..., "num_joints": ...}``)."""
    have = {"name": meta.model, **meta.model_kwargs}
    for key, want in expect.items():
        if key in have and have[key] != want:
            raise CheckpointError(
                f"{path}: checkpoint has {key}={have[key]!r} but {want!r} was expected; "
                "it was trained for another architecture or joint count"
            )


def load_state(path: str | os.PathLike[str], model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """``model.load_state_dict(state)``, strict, with an error that names missing, unexpected or misshaped tensors."""
    problems = state_mismatch(model.state_dict(), {k: tuple(v.shape) for k, v in state.items()})
    if problems:
        raise CheckpointError(f"{path}: weights do not fit the model: {problems}")
    model.load_state_dict(state, strict=True)


def state_mismatch(own: Mapping[str, torch.Tensor], shapes: Mapping[str, tuple[int, ...]]) -> str:
    """How tensors of ``shapes`` (name -> shape) differ from the state dict ``own``, in one line; "" if they fit."""
    missing = sorted(set(own) - set(shapes))
    unexpected = sorted(set(shapes) - set(own))
    misshaped = [
        f"{k} {tuple(shapes[k])} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in shapes and tuple(shapes[k]) != tuple(v.shape)
    ]
    if not (missing or unexpected or misshaped):
        return ""
    return mismatch_summary(missing, unexpected, misshaped, shape_label="shape mismatch (checkpoint vs model)")


def mismatch_summary(
    missing: list[str], unexpected: list[str], misshaped: list[str], shape_label: str = "shape mismatch"
) -> str:
    """One line naming (up to five of) the missing, unexpected and misshaped tensors of a state dict."""

    def some(names: list[str], sep: str = ", ") -> str:
        return sep.join(names[:5]) + (" ..." if len(names) > 5 else "")

    parts = []
    if missing:
        parts.append(f"missing {some(missing)}")
    if unexpected:
        parts.append(f"unexpected {some(unexpected)}")
    if misshaped:
        parts.append(f"{shape_label} {some(misshaped, '; ')}")
    return "; ".join(parts)
