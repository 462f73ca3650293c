"""A real photo through pose-hg-demo's pipeline (re-stated) on a Torch7 graph, and through our predictor.

``their_keypoints`` re-states pose-hg-demo's ``main.lua`` with ``img.lua``/``util.lua`` (the functions
pose-hg-train shares): ``image.load`` gives RGB in [0, 1]; ``crop`` cuts the ``center``/``scale`` box at
integer 1-based corners (``transform`` truncates) and ``image.scale``s it to 256x256 (torch ``image``'s
``scaleBilinear``: rows then columns, an area average when shrinking, corner-aligned linear when
growing); the network is the Torch7 graph itself (``t7_writer.forward``); negative heatmap values are set
to 0; ``getPreds`` takes the 1-based argmax, adds 0.5 and maps it back with ``transform(..., 64, invert)``
to integer 1-based MATLAB pixels. No flip test, no quarter step.

Ours is given that same crop (``Predictor.heatmaps`` of their float input, then ``predict_crops``' decoding,
``codec.decode_to_image`` with their crop -> image transform), so input
and heatmaps are the same and the keypoints differ by decoding only: theirs, made 0-based, are ``2 q``
image pixels right of and below ours (``q`` = image pixels per input pixel: the half-cell convention of
``docs/CHECKPOINTS.md``), minus our quarter step (``0`` or ``+-q``), then truncated toward zero as they do.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from hourglass.checkpoint.convert import convert_torch7
from hourglass.data.images import read_image
from hourglass.inference.predictor import Predictor
from t7_writer import forward, hg_lua, write

RES = 256


def get_transform(center, scale, res):
    h = 200 * scale
    t = np.eye(3)
    t[0, 0] = t[1, 1] = res / h
    t[0, 2] = res * (-center[0] / h + 0.5)
    t[1, 2] = res * (-center[1] / h + 0.5)
    return t


def transform(pt, center, scale, res, invert=False):
    """Their ``transform``: 1-based point in, 1-based integer point out."""
    t = get_transform(center, scale, res)
    if invert:
        t = np.linalg.inv(t)
    new = (t @ np.array([pt[0] - 1, pt[1] - 1, 1.0]))[:2] + 1e-4
    return np.trunc(new).astype(int) + 1


def scale_linear(src_len: int, dst_len: int) -> np.ndarray:
    """``(dst_len, src_len)`` weights of torch image's ``scaleLinear_rowcol``."""
    w = np.zeros((dst_len, src_len), dtype=np.float64)
    if dst_len > src_len:
        step = np.float32(src_len - 1) / np.float32(dst_len - 1)
        for di in range(dst_len - 1):
            si_f = np.float32(di * step)
            si_i = int(si_f)
            frac = float(si_f - si_i)
            w[di, si_i] += 1 - frac
            if frac:
                w[di, si_i + 1] += frac
        w[dst_len - 1, src_len - 1] = 1
    elif dst_len < src_len:
        step = np.float32(src_len) / np.float32(dst_len)
        si0_i, si0_f = 0, 0.0
        for di in range(dst_len):
            si1 = np.float32((di + 1) * step)
            si1_i = int(si1)
            si1_f = float(si1 - si1_i)
            w[di, si0_i] += 1 - si0_f
            w[di, si0_i + 1 : si1_i] += 1
            if si1_i < src_len:
                w[di, si1_i] += si1_f
            w[di] /= w[di].sum()
            si0_i, si0_f = si1_i, si1_f
    else:
        w = np.eye(src_len)
    return w


def crop(img: np.ndarray, center, scale, res: int) -> np.ndarray:
    """Their ``crop`` (no rotation) of a ``(3, H, W)`` float image in [0, 1]."""
    ul = transform([1, 1], center, scale, res, invert=True)
    br = transform([res + 1, res + 1], center, scale, res, invert=True)
    ht, wd = img.shape[1:]
    new = np.zeros((img.shape[0], br[1] - ul[1], br[0] - ul[0]))
    new_x = max(1, -ul[0] + 2), min(br[0], wd + 1) - ul[0]
    new_y = max(1, -ul[1] + 2), min(br[1], ht + 1) - ul[1]
    old_x = max(1, ul[0]), min(br[0], wd + 1) - 1
    old_y = max(1, ul[1]), min(br[1], ht + 1) - 1
    new[:, new_y[0] - 1 : new_y[1], new_x[0] - 1 : new_x[1]] = img[:, old_y[0] - 1 : old_y[1], old_x[0] - 1 : old_x[1]]
    rows = scale_linear(new.shape[2], res)  # widths first, then heights
    cols = scale_linear(new.shape[1], res)
    return np.stack([cols @ channel @ rows.T for channel in new])


def their_keypoints(graph, image_rgb: np.ndarray, center, scale):
    """``(16, 2)`` 1-based integer keypoints, ``(16, 64, 64)`` heatmaps and the ``(3, 256, 256)`` crop."""
    inp = crop(image_rgb.transpose(2, 0, 1) / 255.0, center, scale, RES)
    with torch.no_grad():
        hm = forward(graph, torch.from_numpy(inp[None]).float())[-1][0].numpy()
    hm = np.maximum(hm, 0)
    out = []
    for m in hm:
        idx = int(m.argmax())
        x, y = idx % m.shape[1] + 1, idx // m.shape[1] + 1
        pred = (np.array([x, y]) - 0.5) * (m.max() > 0) + 1
        out.append(transform(pred, center, scale, m.shape[0], invert=True))
    return np.array(out, dtype=np.float64), hm, inp


def test_same_crop_same_heatmaps_keypoints_differ_by_the_decoding(mpii_photos, tmp_path) -> None:
    graph = hg_lua(1, 1, n_feats=32, n_parts=16, depth=4, seed=5)
    for node in graph.outnode.data.get("mapindex").pairs:  # lift the heads so every heatmap has a positive max
        if isinstance(node[0], int):
            head = node[1].get("module")
            head.fields.set("bias", head.bias + 2.0)
    write(tmp_path / "umich-stacked-hourglass.t7", graph)
    path, _ = convert_torch7(tmp_path / "umich-stacked-hourglass.t7", tmp_path / "hg1.safetensors")
    predictor = Predictor.from_checkpoint(path, flip=False)
    folder = mpii_photos[0].parent
    for person in json.loads((folder / "test_mpii.json").read_text()):
        rgb = read_image(folder / person["image"])
        center, scale = np.array(person["center"]), float(person["scale"])
        theirs, their_heatmaps, inp = their_keypoints(graph, rgb, center, scale)
        assert (their_heatmaps.reshape(16, -1).max(1) > 0).all()
        to_image = np.linalg.inv(get_transform(center, scale, RES))[:2]
        # their crop is float (image.scale, not rounded): the same network input, then predict_crops' decoding
        heatmaps = predictor.heatmaps(np.float32(inp[None]))
        ours, _, _ = predictor.codec.decode_to_image(heatmaps, np.stack([to_image]))
        their_raw = np.maximum(heatmaps[0], 0)
        assert np.abs(their_raw - their_heatmaps).max() < 1e-4 * their_heatmaps.max(), person["image"]
        assert (heatmaps[0].reshape(16, -1).argmax(1) == their_heatmaps.reshape(16, -1).argmax(1)).all()
        q = 200 * scale / RES
        # theirs - 1 = trunc(ours + 2 q - our quarter step (0 or +-q)): find a step that gives exactly theirs
        fits = np.zeros(theirs.shape, dtype=bool)
        for step in (-1, 0, 1):
            exact = ours[0] + (2 - step) * q + 1e-4
            fits |= (np.trunc(exact - 1e-6) == theirs - 1) | (np.trunc(exact + 1e-6) == theirs - 1)
        assert fits.all(), f"{person['image']}: {theirs - 1 - ours[0] - 2 * q}"
