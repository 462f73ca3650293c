"""A real photo through princeton-vl/pytorch_stacked_hourglass's ``test.py`` pipeline and through ours.

``their_keypoints`` re-states that pipeline (``test.py`` ``inference``/``post_process``, ``utils/img.py``
``crop``/``transform``, ``utils/group.py`` ``HeatmapParser``) without its flip test: the person's
``center``/``scale`` box is cut at integer corners and resized to 256x256 (``cv2.resize``, bilinear),
divided by 255; the last stack's heatmaps are clipped at 1, the argmax moved a quarter cell toward the
higher neighbour (away otherwise, ties included), ``+ 0.5``, times 4, and mapped back to the image with
the exact ``center``/``scale`` transform, truncated to integers.

Ours gets the very same crop (``Predictor.heatmaps`` of their float crop, then ``predict_crops``' decoding,
``codec.decode_to_image`` with their crop -> image matrix), so the
network input, normalisation (none: [0, 1] RGB) and heatmaps are the same, and the keypoints differ only
by decoding: theirs are ``2 q`` image pixels right of and below ours (``q`` = image pixels per input
pixel: half a heatmap cell, the cell-centre convention of ``docs/CHECKPOINTS.md``), give or take one
quarter step (``q``) where they step away from a tie or a border and we do not, then truncated to an
integer. Measured separately (not asserted): our own affine crop of the same box instead of their
integer-cornered one changes the heatmaps by 1-4% of their maximum on these photos.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from hourglass.checkpoint.convert import convert_princeton_vl
from hourglass.data.images import read_image
from hourglass.inference.predictor import Predictor
from princeton_net import PoseNet, randomised

RES = (256, 256)


def get_transform(center, scale, res):
    h = 200 * scale
    t = np.zeros((3, 3))
    t[0, 0], t[1, 1] = res[1] / h, res[0] / h
    t[0, 2] = res[1] * (-center[0] / h + 0.5)
    t[1, 2] = res[0] * (-center[1] / h + 0.5)
    t[2, 2] = 1
    return t


def transform(pt, center, scale, res, invert=0):
    t = get_transform(center, scale, res)
    if invert:
        t = np.linalg.inv(t)
    return np.dot(t, np.array([pt[0], pt[1], 1.0]))[:2].astype(int)


def crop(img, center, scale, res):
    import cv2

    ul = transform([0, 0], center, scale, res, invert=1)
    br = transform(res, center, scale, res, invert=1)
    new_img = np.zeros([br[1] - ul[1], br[0] - ul[0], img.shape[2]])
    new_x = max(0, -ul[0]), min(br[0], img.shape[1]) - ul[0]
    new_y = max(0, -ul[1]), min(br[1], img.shape[0]) - ul[1]
    old_x = max(0, ul[0]), min(img.shape[1], br[0])
    old_y = max(0, ul[1]), min(img.shape[0], br[1])
    new_img[new_y[0] : new_y[1], new_x[0] : new_x[1]] = img[old_y[0] : old_y[1], old_x[0] : old_x[1]]
    return cv2.resize(new_img, res)


def their_keypoints(net: PoseNet, image: np.ndarray, center, scale) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(16, 2)`` integer image keypoints, ``(16, 64, 64)`` heatmaps and the crop, as their ``test.py`` makes them."""
    im = crop(image, center, scale, RES)
    with torch.no_grad():
        det = net(torch.tensor(np.float32([im / 255])))[0, -1].numpy()
    det = np.minimum(det, 1)
    out = []
    for hm in det:
        idx = int(hm.argmax())
        col, row = idx % hm.shape[1], idx // hm.shape[1]
        x = col + (0.25 if hm[row, min(col + 1, hm.shape[1] - 1)] > hm[row, max(col - 1, 0)] else -0.25)
        y = row + (0.25 if hm[min(row + 1, hm.shape[0] - 1), col] > hm[max(0, row - 1), col] else -0.25)
        out.append(transform(np.array([x + 0.5, y + 0.5]) * 4, center, scale, RES, invert=1))
    return np.array(out, dtype=np.float64), det, im


def test_same_crop_same_heatmaps_keypoints_differ_by_the_decoding(mpii_photos, tmp_path) -> None:
    net = randomised(PoseNet(2, 64, 16), 0)
    with torch.no_grad():  # keep heatmaps under 1, as a trained model's are, so their clip changes nothing
        for head in net.outs:
            head.conv.weight.mul_(0.002)
            head.conv.bias.mul_(0.002)
    torch.save(net.state_dict(), tmp_path / "checkpoint.pt")
    path, _ = convert_princeton_vl(tmp_path / "checkpoint.pt", tmp_path / "hg2.safetensors")
    predictor = Predictor.from_checkpoint(path, flip=False)
    folder = mpii_photos[0].parent
    for person in json.loads((folder / "test_mpii.json").read_text()):
        rgb = read_image(folder / person["image"])
        center, scale = np.array(person["center"]), float(person["scale"])
        theirs, their_heatmaps, im = their_keypoints(net, rgb, center, scale)
        assert their_heatmaps.max() < 1, "the clip at 1 would change their heatmaps"
        to_image = np.linalg.inv(get_transform(center, scale, RES))[:2]
        # their crop is float (bilinear, not rounded): the network input it makes, then predict_crops' decoding
        heatmaps = predictor.heatmaps(np.float32([im / 255]).transpose(0, 3, 1, 2))
        ours, _, _ = predictor.codec.decode_to_image(heatmaps, np.stack([to_image]))
        scale_hm = np.abs(their_heatmaps).max()
        assert np.abs(heatmaps[0] - their_heatmaps).max() < 1e-4 * scale_hm, person["image"]
        assert (heatmaps[0].reshape(16, -1).argmax(1) == their_heatmaps.reshape(16, -1).argmax(1)).all()
        q = 200 * scale / RES[0]
        shift = theirs - ours[0] - 2 * q  # what is left after the half-cell convention
        # their truncation to integers moves a coordinate by (-1, 1]; the quarter steps are 0 or +-q apart
        steps = np.round(shift / q)
        assert np.isin(steps, (-1, 0, 1)).all(), f"{person['image']}: {shift / q}"
        assert (np.abs(shift - steps * q) < 1.0 + 1e-6).all(), f"{person['image']}: {shift}"
