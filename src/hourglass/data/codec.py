"""Heatmap codec: keypoints <-> Gaussian heatmaps, one object for training targets and for inference.

Coordinate convention (the HRNet/mmpose ``MSRAHeatmap`` one): a keypoint at input-crop pixel ``(x, y)``
sits at heatmap coordinate ``(x * w / W, y * h / H)``; pixel centres are at integers in both. Targets are
Gaussians centred at that exact sub-pixel position (mmpose's ``unbiased=True`` encoding; HRNet and the
official Torch code round the centre to the nearest heatmap pixel first), so the classic argmax plus
quarter-pixel shift decodes a noiseless target within 0.25 heatmap px.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from hourglass.errors import DataError

from .transforms import transform_points

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


class HeatmapCodec:
    """Encode keypoints as Gaussian heatmaps and decode heatmaps back to keypoints.

    Args:
        input_size: (H, W) of the network input crop.
        heatmap_size: (h, w) of the network output; default ``(H // 4, W // 4)``.
        sigma: standard deviation of the target Gaussian, in heatmap pixels.
        dark: refine decoded positions with DARK (Zhang et al., CVPR 2020, "Distribution-Aware Coordinate
            Representation"): Gaussian-smooth the heatmap, then one Newton step on its logarithm.
        blur_kernel: kernel size of the DARK smoothing (mmpose's default 11); its sigma follows OpenCV's
            rule for that size (``0.3 * ((k - 1) / 2 - 1) + 0.8``, 2.0 for 11).

    Example:
        >>> codec = HeatmapCodec((256, 256), (64, 64), sigma=2.0)
        >>> hm, w = codec.encode(np.array([[100.0, 52.0]]), np.array([1]))
        >>> hm.shape, w
        ((1, 64, 64), array([1.], dtype=float32))
        >>> codec.decode(hm)[0].round(1)
        array([[100.,  52.]], dtype=float32)
    """

    def __init__(
        self,
        input_size: Sequence[int],
        heatmap_size: Sequence[int] | None = None,
        sigma: float = 2.0,
        dark: bool = False,
        blur_kernel: int = 11,
    ) -> None:
        self.input_size = (int(input_size[0]), int(input_size[1]))
        if heatmap_size is None:
            heatmap_size = (self.input_size[0] // 4, self.input_size[1] // 4)
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        if min(self.input_size + self.heatmap_size) <= 0 or sigma <= 0:
            raise DataError(
                f"HeatmapCodec: sizes must be positive and sigma > 0, got input_size={self.input_size}, "
                f"heatmap_size={self.heatmap_size}, sigma={sigma}"
            )
        self.sigma = float(sigma)
        self.dark = bool(dark)
        self.blur_kernel = int(blur_kernel) | 1
        h, w = self.heatmap_size
        H, W = self.input_size
        self.stride = np.array([w / W, h / H])  # input px -> heatmap px, per (x, y)
        n = max(h, w)
        self._grid = np.arange(n, dtype=np.float32)[None, None, :].repeat(2, axis=1)  # (1, 2, n)
        self._inv_two_sigma_sq = np.float32(-0.5 / self.sigma**2)
        self._crop_bounds = (np.array([-0.5, -0.5]), np.array([W - 0.5, H - 0.5]))

    def __repr__(self) -> str:
        return (
            f"HeatmapCodec(input_size={self.input_size}, heatmap_size={self.heatmap_size}, sigma={self.sigma}, "
            f"dark={self.dark})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in checkpoint metadata: ``input_size``, ``heatmap_size`` (lists), ``sigma``,
        ``dark``, ``blur_kernel``. :meth:`from_dict` reads it back.

        Example:
            >>> HeatmapCodec.from_dict(HeatmapCodec((128, 96), sigma=1.5).to_dict())
            HeatmapCodec(input_size=(128, 96), heatmap_size=(32, 24), sigma=1.5, dark=False)
        """
        return {
            "input_size": list(self.input_size),
            "heatmap_size": list(self.heatmap_size),
            "sigma": self.sigma,
            "dark": self.dark,
            "blur_kernel": self.blur_kernel,
        }

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], where: str = "codec") -> HeatmapCodec:
        """The codec of :meth:`to_dict`'s form; ``input_size`` is required, the rest default as in the constructor.

        Keys other than the constructor's are ignored (checkpoint metadata keeps the codec beside the
        skeleton and the dataset format). ``where`` names the source in errors.

        Raises:
            DataError: ``input_size`` missing, or a value that is not a size or a number, naming ``where``.
        """
        if "input_size" not in spec:
            raise DataError(f"{where}: no input_size; cannot rebuild the heatmap codec")
        try:
            return cls(
                [int(v) for v in spec["input_size"]],
                [int(v) for v in spec["heatmap_size"]] if spec.get("heatmap_size") is not None else None,
                sigma=float(spec.get("sigma", 2.0)),
                dark=bool(spec.get("dark", False)),
                blur_kernel=int(spec.get("blur_kernel", 11)),
            )
        except (TypeError, ValueError, IndexError) as err:
            if isinstance(err, DataError):
                raise DataError(f"{where}: {err}") from None
            raise DataError(f"{where}: not a heatmap codec ({err}): {dict(spec)!r}") from None

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Target heatmaps and per-joint weights.

        Args:
            keypoints: (K, 2) (x, y) in input-crop pixels.
            visible: (K,) nonzero where the joint is labelled.

        Returns:
            heatmaps (K, h, w) float32, peak at the keypoint (value 1 when it falls on a pixel centre), and
            weights (K,) float32: 1, or 0 for an unlabelled joint, a non-finite coordinate or a keypoint
            outside the crop (off every input pixel, ``[-0.5, W - 0.5)``); those joints get an all-zero map.
        """
        kp = np.asarray(keypoints, dtype=np.float64)
        vis = np.asarray(visible).reshape(-1)
        if kp.ndim != 2 or kp.shape[1] != 2 or vis.shape[0] != kp.shape[0]:
            raise DataError(f"encode: expected keypoints (K, 2) and visible (K,), got {kp.shape} and {vis.shape}")
        lo, hi = self._crop_bounds  # (x, y) bounds of the crop, [-0.5, size - 0.5)
        inside = ((kp >= lo) & (kp < hi)).all(axis=1)  # NaN compares False
        ok = inside & (vis > 0)
        weights = ok.astype(np.float32)
        mu = (kp * self.stride).astype(np.float32)
        mu[~ok] = 0.0
        d = self._grid - mu[:, :, None]  # (K, 2, n): offsets along x (first w) and y (first h)
        g = np.exp(d * d * self._inv_two_sigma_sq)
        g[~ok, 0] = 0.0
        h, w = self.heatmap_size
        heatmaps = g[:, 1, :h, None] * g[:, 0, None, :w]
        return heatmaps, weights

    def decode(self, heatmaps: ArrayT) -> tuple[ArrayT, ArrayT]:
        """Keypoints and scores from heatmaps, batched over leading dimensions.

        Args:
            heatmaps: (..., K, h, w) numpy array or torch tensor (any device).

        Returns:
            keypoints (..., K, 2) (x, y) in input-crop pixels and scores (..., K) (the heatmap maximum),
            of the same kind (and device) as the input, float32. Position: the argmax, shifted a quarter
            pixel toward the higher neighbour in x and in y (Newell et al.), or DARK-refined if enabled.
        """
        is_numpy = isinstance(heatmaps, np.ndarray)
        hm = torch.from_numpy(np.ascontiguousarray(heatmaps)) if is_numpy else heatmaps
        if hm.ndim < 3 or tuple(hm.shape[-2:]) != self.heatmap_size:
            raise DataError(
                f"decode: expected heatmaps (..., K, {self.heatmap_size[0]}, {self.heatmap_size[1]}), "
                f"got {tuple(hm.shape)}"
            )
        lead = hm.shape[:-2]
        h, w = self.heatmap_size
        flat = hm.detach().float().reshape(-1, h, w)
        scores, idx = flat.reshape(flat.shape[0], -1).max(dim=1)
        px, py = idx % w, torch.div(idx, w, rounding_mode="floor")
        if self.dark:
            x, y = _dark_refine(flat, px, py, self.blur_kernel, self._dark_sigma())
        else:
            x, y = _quarter_shift(flat, px, py)
        coords = torch.stack([x, y], dim=-1) / torch.as_tensor(self.stride, dtype=torch.float32, device=flat.device)
        keypoints = coords.reshape(*lead, 2)
        scores = scores.reshape(lead)
        if is_numpy:
            return keypoints.numpy(), scores.numpy()
        return keypoints, scores

    def decode_to_image(
        self, heatmaps: np.ndarray | torch.Tensor, crop_to_image: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Keypoints in image pixels: :meth:`decode`, then each crop's crop -> image matrix.

        The one path from heatmaps to image coordinates (evaluation, inference, runtime accuracy checks).

        Args:
            heatmaps: ``(N, K, h, w)`` of crops of this codec's input size.
            crop_to_image: ``(N, 2, 3)`` affine matrices from crop pixels to image pixels
                (``get_affine_matrix(..., inverse=True)``).

        Returns:
            image keypoints ``(N, K, 2)`` float64, scores ``(N, K)`` float64 (heatmap maxima) and the crop
            keypoints ``(N, K, 2)`` they came from.
        """
        crop_kp, scores = self.decode(heatmaps)
        if isinstance(crop_kp, torch.Tensor):
            crop_kp, scores = crop_kp.detach().cpu().numpy(), scores.detach().cpu().numpy()
        image_kp = transform_points(crop_kp, np.asarray(crop_to_image, dtype=np.float64))
        return image_kp, np.asarray(scores, dtype=np.float64), crop_kp

    def _dark_sigma(self) -> float:
        return 0.3 * ((self.blur_kernel - 1) * 0.5 - 1) + 0.8


def _quarter_shift(flat: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """argmax (px, py) of each (h, w) map plus 0.25 px toward the higher neighbour (none at the border)."""
    n, h, w = flat.shape
    ar = torch.arange(n, device=flat.device)
    x, y = px.float(), py.float()
    inner_x = (px > 0) & (px < w - 1)
    inner_y = (py > 0) & (py < h - 1)
    dx = flat[ar, py, (px + 1).clamp(max=w - 1)] - flat[ar, py, (px - 1).clamp(min=0)]
    dy = flat[ar, (py + 1).clamp(max=h - 1), px] - flat[ar, (py - 1).clamp(min=0), px]
    x = x + 0.25 * torch.sign(dx) * inner_x
    y = y + 0.25 * torch.sign(dy) * inner_y
    return x, y


def _dark_refine(
    flat: torch.Tensor, px: torch.Tensor, py: torch.Tensor, kernel: int, blur_sigma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """DARK: Gaussian-blur each (h, w) map, take the log, one Newton step from the argmax (px, py).

    Same result as mmpose's ``gaussian_blur`` (zero padding, blurred map rescaled to the original peak)
    followed by ``refine_keypoints_dark`` (log map edge-padded by 2, central differences), but only the
    5x5 blurred neighbourhood of each argmax is computed: the derivatives of the log do not depend on the
    rescaling, and edge padding of the map is the same as clamping the neighbour coordinates into it.
    Steps longer than one pixel (flat or degenerate maps) are discarded.
    """
    n, h, w = flat.shape
    r = (kernel - 1) // 2
    size = 2 * r + 5  # patch that yields the 5x5 blurred window around the argmax
    t = torch.arange(-r, r + 1, dtype=torch.float32, device=flat.device)
    g = torch.exp(-0.5 * (t / blur_sigma) ** 2)
    padded = F.pad(flat, (r + 2, r + 2, r + 2, r + 2))
    span = torch.arange(size, device=flat.device)
    ar = torch.arange(n, device=flat.device)
    patch = padded[ar[:, None, None], (py[:, None] + span)[:, :, None], (px[:, None] + span)[:, None, :]]
    blurred = F.conv2d(F.conv2d(patch.unsqueeze(1), g.view(1, 1, -1, 1)), g.view(1, 1, 1, -1))[:, 0]  # (n, 5, 5)
    logm = torch.log(blurred.clamp(min=1e-10))

    def at(dy: int, dx: int) -> torch.Tensor:
        iy = (py + dy).clamp(0, h - 1) - py + 2
        ix = (px + dx).clamp(0, w - 1) - px + 2
        return logm[ar, iy, ix]

    c = at(0, 0)
    gx = 0.5 * (at(0, 1) - at(0, -1))
    gy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = 0.25 * (at(0, 2) - 2 * c + at(0, -2))
    dyy = 0.25 * (at(2, 0) - 2 * c + at(-2, 0))
    dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    det = dxx * dyy - dxy * dxy
    ok = det.abs() > 1e-12
    safe = torch.where(ok, det, torch.ones_like(det))
    ox = -(dyy * gx - dxy * gy) / safe
    oy = -(-dxy * gx + dxx * gy) / safe
    ok = ok & (ox.abs() <= 1) & (oy.abs() <= 1)
    x = px.float() + torch.where(ok, ox, torch.zeros_like(ox))
    y = py.float() + torch.where(ok, oy, torch.zeros_like(oy))
    return x, y


def flip_back(heatmaps: ArrayT, flip_index: Sequence[int], shift: bool = True) -> ArrayT:
    """Heatmaps predicted on a horizontally flipped crop, brought back to the unflipped crop.

    Mirrors the last axis, swaps left/right channels (``flip_index`` of the skeleton) and, with ``shift``,
    moves the maps one heatmap pixel right (HRNet's ``shift_heatmap``). Under our coordinate convention
    the exact offset between mirrored maps is ``1 - w / W`` heatmap px (0.75 at stride 4); the one-pixel
    shift is the reference implementations' approximation of it.

    Args:
        heatmaps: (..., K, h, w) numpy array or torch tensor.
        flip_index: K joint indices (``Skeleton.flip_index``).

    Returns:
        (..., K, h, w), same kind. ``flip_back(flip_back(x, f, False), f, False)`` equals ``x``.
    """
    idx = list(flip_index)
    if heatmaps.shape[-3] != len(idx):
        raise DataError(f"flip_back: heatmaps have {heatmaps.shape[-3]} joints, flip_index has {len(idx)}")
    if isinstance(heatmaps, np.ndarray):
        out = heatmaps[..., idx, :, ::-1].copy()
        if shift:
            out[..., 1:] = out[..., :-1].copy()
        return out
    out = heatmaps[..., idx, :, :].flip(-1)
    if shift:
        out = torch.cat([out[..., :1], out[..., :-1]], dim=-1)
    return out


def flip_test(forward: Callable[[ArrayT], ArrayT], images: ArrayT, flip_index: Sequence[int]) -> ArrayT:
    """The flip test of Newell et al. and HRNet: heatmaps of ``images`` averaged with those of their mirrors.

    ``forward`` maps network inputs ``(B, C, H, W)`` to heatmaps ``(B, K, h, w)`` (numpy or torch, as
    ``images``); it is called once on the ``2B`` inputs, and the mirrored half is brought back with
    :func:`flip_back` (joints swapped, one-pixel shift) before averaging. Returns ``(B, K, h, w)``.
    """
    n = len(images)
    if isinstance(images, np.ndarray):
        both = np.concatenate([images, images[..., ::-1]])
    else:
        both = torch.cat([images, images.flip(-1)])
    out = forward(both)
    return 0.5 * (out[:n] + flip_back(out[n:], flip_index, shift=True))


def flip_keypoints(keypoints: ArrayT, flip_index: Sequence[int], width: float) -> ArrayT:
    """Keypoints (..., K, 2) mirrored in an image ``width`` pixels wide (x -> width - 1 - x), joints swapped.

    Exact for pixel-centre coordinates; applying it twice gives back the input.
    """
    idx = list(flip_index)
    if keypoints.shape[-2] != len(idx):
        raise DataError(f"flip_keypoints: keypoints have {keypoints.shape[-2]} joints, flip_index has {len(idx)}")
    out = keypoints[..., idx, :]
    out = out.copy() if isinstance(out, np.ndarray) else out.clone()
    out[..., 0] = width - 1 - out[..., 0]
    return out
