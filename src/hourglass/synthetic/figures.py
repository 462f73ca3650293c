"""Synthetic figures: procedurally drawn articulated people with MPII_16 joints, and files in COCO/MPII format.

Each image holds one main figure on a cluttered background. The figure's pose is drawn within human
joint limits (torso lean, head tilt, shoulder abduction up to overhead, elbow and knee flexion, hip
abduction and flexion, foreshortened segments), its proportions, limb widths, clothing and skin
colours vary, and it faces the viewer (a face with eyes and nose is drawn, its right side on the image
left) or turns its back (the head shows hair only), with a yaw that narrows shoulders and hips and moves
the nose. Distractor shapes (including loose limb-like capsules) clutter the background; occluders drawn
over the figure hide joints that stay labelled and are marked occluded. Joints that fall outside the
image are unlabelled.

Everything is a function of ``(index, seed, image_size)``: the geometry comes from
``np.random.default_rng((seed, index, 0))`` and the pixels from ``(seed, index, 1)``, so annotations are
produced without drawing and the same call always gives the same picture.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from hourglass.data.codec import HeatmapCodec
from hourglass.data.dataset import KeypointDataset, Record
from hourglass.data.skeletons import MPII_16, MPII_FILE_JOINTS
from hourglass.data.transforms import Augmentation, box_to_center_scale
from hourglass.errors import DataError
from hourglass.files import make_temp_dir, replace_folder
from hourglass.metrics.mpii import mpii_head_size

# MPII_16 indices
R_ANK, R_KNE, R_HIP, L_HIP, L_KNE, L_ANK, PELVIS, THORAX, NECK, HEAD, R_WRI, R_ELB, R_SHO, L_SHO, L_ELB, L_WRI = range(
    16
)

_SKIN = np.array([[255, 224, 196], [234, 192, 160], [198, 144, 110], [160, 110, 80], [110, 72, 50], [80, 52, 38]])
_HAIR = np.array([[30, 24, 20], [70, 45, 30], [140, 100, 60], [200, 170, 110], [120, 120, 120], [160, 60, 30]])


@dataclass
class Figure:
    """Geometry of one synthetic image (image pixels, 0-based, pixel centres at integers).

    Attributes:
        points: (16, 2) MPII_16 joint positions, also those outside the image (drawing uses these).
        visible: (16,) uint8, 1 = labelled (inside the image).
        occluded: (16,) uint8, 1 = labelled but under an occluder.
        bbox: (4,) person box (x, y, w, h), clipped to the image.
        head_box: (4,) axis-aligned head box (x1, y1, x2, y2); MPII head size = 0.6 x its diagonal.
        image_size: (H, W).
        front: the figure faces the viewer (its right side on the image left); else it shows its back.
        widths, torso_len, yaw, occluders: drawing parameters (limb half widths, torso length in pixels,
            turn of the body in radians, occluder polygons (M, 2)).
    """

    points: np.ndarray
    visible: np.ndarray
    occluded: np.ndarray
    bbox: np.ndarray
    head_box: np.ndarray
    image_size: tuple[int, int]
    front: bool
    widths: np.ndarray
    torso_len: float
    yaw: float
    occluders: list[np.ndarray]

    @property
    def joints(self) -> np.ndarray:
        """(16, 2) the annotation: joint positions, 0 for unlabelled joints."""
        return np.where(self.visible[:, None] > 0, self.points, 0.0)

    @property
    def head_size(self) -> float:
        return mpii_head_size(self.head_box)


def _unit(angle: float) -> np.ndarray:
    return np.array([np.sin(angle), -np.cos(angle)])  # angle 0 = up in image coordinates


def _rotate(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def sample_figure(index: int, seed: int = 0, image_size: Sequence[int] = (128, 128)) -> Figure:
    """The geometry and annotation of synthetic image ``index`` (no pixels drawn)."""
    H, W = int(image_size[0]), int(image_size[1])
    rng = np.random.default_rng((int(seed), int(index), 0))
    u = rng.uniform
    deg = np.deg2rad
    height = u(0.55, 0.9) * min(H, W)
    T = height / 3.6
    prop = u(0.9, 1.1, 6)
    thigh, shin, upper, fore, neck, head = np.array([0.95, 0.9, 0.6, 0.55, 0.25, 0.5]) * T * prop
    front = bool(rng.random() < 0.5)
    yaw = u(-deg(55), deg(55))
    width_k = max(abs(np.cos(yaw)), 0.35)
    lean = float(np.clip(rng.normal(0, deg(12)), -deg(35), deg(35)))
    up = _unit(lean)
    down = -up
    right_img = np.array([up[1] * -1, up[0]])  # image-right when upright
    side = -right_img if front else right_img  # the person's right side, in the image
    j = np.zeros((16, 2))
    j[PELVIS] = 0
    hw, sw = 0.22 * T * width_k * u(0.85, 1.15), 0.42 * T * width_k * u(0.85, 1.15)
    j[R_HIP], j[L_HIP] = j[PELVIS] + side * hw, j[PELVIS] - side * hw
    j[THORAX] = j[PELVIS] + up * T * u(0.9, 1.0)
    head_dir = _unit(lean + rng.normal(0, deg(12)))
    j[NECK] = j[THORAX] + head_dir * neck
    j[HEAD] = j[NECK] + _unit(lean + rng.normal(0, deg(15))) * head
    j[R_SHO], j[L_SHO] = j[THORAX] + side * sw + down * 0.05 * T, j[THORAX] - side * sw + down * 0.05 * T

    def limb(root: int, mid: int, end: int, out: np.ndarray, l1: float, l2: float, abd: tuple, flex: float) -> None:
        a = u(deg(abd[0]), deg(abd[1]))
        d = down * np.cos(a) + out * np.sin(a)
        k1 = u(0.7, 1.0) if rng.random() < 0.35 else 1.0
        j[mid] = j[root] + d * l1 * k1
        f = u(0, deg(flex)) * (1 if rng.random() < 0.5 else -1)
        k2 = u(0.7, 1.0) if rng.random() < 0.35 else 1.0
        j[end] = j[mid] + _rotate(d, f) * l2 * k2

    limb(R_SHO, R_ELB, R_WRI, side, upper, fore, (-40, 175), 150)
    limb(L_SHO, L_ELB, L_WRI, -side, upper, fore, (-40, 175), 150)
    leg_abd = (-20, 100) if rng.random() < 0.2 else (-20, 45)
    limb(R_HIP, R_KNE, R_ANK, side, thigh, shin, leg_abd, 130)
    limb(L_HIP, L_KNE, L_ANK, -side, thigh, shin, leg_abd, 130)
    # whole-figure rotation, then place the person box inside the image with some jitter
    rot = rng.normal(0, deg(15)) if rng.random() < 0.5 else 0.0
    c, s = np.cos(rot), np.sin(rot)
    j = j @ np.array([[c, s], [-s, c]])
    widths = np.array([0.15, 0.12, 0.2, 0.15]) * T * u(0.8, 1.25, 4)  # upper arm, forearm, thigh, shin half widths
    lo, hi = figure_extent(j, widths)
    hc = 0.5 * (j[NECK] + j[HEAD])
    hr = 0.5 * np.linalg.norm(j[HEAD] - j[NECK])
    size = hi - lo
    room = np.array([W, H]) - size
    offset = np.where(room > 0, u(0, 1, 2) * room, room / 2 + u(-0.1, 0.1, 2) * size) - lo
    j += offset
    lo, hi, hc = lo + offset, hi + offset, hc + offset
    head_box = np.concatenate([hc - hr, hc + hr])
    visible = ((j[:, 0] >= 0) & (j[:, 0] <= W - 1) & (j[:, 1] >= 0) & (j[:, 1] <= H - 1)).astype(np.uint8)
    x1, y1 = np.clip(lo, 0, [W - 1, H - 1])
    x2, y2 = np.clip(hi, 0, [W - 1, H - 1])
    bbox = np.array([x1, y1, max(x2 - x1, 1.0), max(y2 - y1, 1.0)])
    occluders = []
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        centre = j[rng.integers(16)] + rng.normal(0, 0.3 * T, 2)
        half = u(0.25, 0.6, 2) * T
        a = u(0, np.pi)
        if rng.random() < 0.5:
            corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
        else:
            t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
            corners = np.stack([np.cos(t), np.sin(t)], 1) * half
        poly = corners @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]) + centre
        occluders.append(poly)
    occluded = np.zeros(16, np.uint8)
    for poly in occluders:
        p32 = poly.astype(np.float32)
        for k in range(16):
            if visible[k] and cv2.pointPolygonTest(p32, (float(j[k, 0]), float(j[k, 1])), False) >= 0:
                occluded[k] = 1
    return Figure(j, visible, occluded, bbox, head_box, (H, W), front, widths, T, yaw, occluders)


def figure_extent(points: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corners ``(x1, y1)``, ``(x2, y2)`` of what a figure with joints ``points`` (16, 2) and limb half ``widths``
    covers: its joints and head, grown by the widest limb (unclipped)."""
    hc = 0.5 * (points[NECK] + points[HEAD])
    hr = 0.5 * np.linalg.norm(points[HEAD] - points[NECK])
    lo = np.minimum(points.min(0), hc - hr) - widths.max()
    hi = np.maximum(points.max(0), hc + hr) + widths.max()
    return lo, hi


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _jitter(rng: np.random.Generator, base: np.ndarray, amount: int = 20) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.clip(base + rng.integers(-amount, amount + 1, 3), 0, 255))


def _shade(colour: tuple[int, int, int], k: float) -> tuple[int, int, int]:
    return tuple(int(v * k) for v in colour)


def _capsule(img: np.ndarray, a: np.ndarray, b: np.ndarray, half: float, colour: tuple, outline: bool = True) -> None:
    s = 4  # fixed-point shift: sub-pixel accurate drawing
    pa, pb = tuple(int(v) for v in np.round(a * 16)), tuple(int(v) for v in np.round(b * 16))
    th = max(round(2 * half), 1)
    if outline:
        cv2.line(img, pa, pb, _shade(colour, 0.55), th + 2, cv2.LINE_AA, s)
    cv2.line(img, pa, pb, colour, th, cv2.LINE_AA, s)


def _background(rng: np.random.Generator, H: int, W: int) -> np.ndarray:
    kind = rng.integers(3)
    if kind == 0:  # gradient between two colours
        c1, c2 = np.array(_colour(rng), np.float32), np.array(_colour(rng), np.float32)
        t = np.linspace(0, 1, W, dtype=np.float32)[None, :, None]
        img = (c1 * (1 - t) + c2 * t).repeat(H, 0)
    elif kind == 1:  # smooth colour noise
        small = rng.integers(0, 256, (rng.integers(2, 8), rng.integers(2, 8), 3)).astype(np.float32)
        img = cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)
    else:  # flat colour
        img = np.empty((H, W, 3), np.float32)
        img[:] = _colour(rng)
    return np.clip(img, 0, 255).astype(np.uint8)


def _clutter(rng: np.random.Generator, img: np.ndarray, T: float) -> None:
    H, W = img.shape[:2]
    for _ in range(rng.integers(6, 18)):
        kind = rng.integers(5)
        col = _colour(rng)
        p = (rng.uniform(0, W), rng.uniform(0, H))
        r = rng.uniform(0.1, 0.6) * T
        if kind == 0:
            cv2.circle(img, (int(p[0] * 16), int(p[1] * 16)), int(r * 16), col, -1, cv2.LINE_AA, 4)
        elif kind == 1:
            box = ((p[0], p[1]), (2 * r, rng.uniform(0.3, 2) * r), rng.uniform(0, 180))
            cv2.fillPoly(img, [np.round(cv2.boxPoints(box) * 16).astype(np.int32)], col, cv2.LINE_AA, 4)
        elif kind == 2:  # a loose limb: one or two capsules in body colours
            a = np.array(p)
            col = _jitter(rng, _SKIN[rng.integers(len(_SKIN))]) if rng.random() < 0.5 else col
            for _ in range(rng.integers(1, 3)):
                b = a + _unit(rng.uniform(0, 2 * np.pi)) * rng.uniform(0.4, 0.9) * T
                _capsule(img, a, b, rng.uniform(0.08, 0.2) * T, col)
                a = b
        elif kind == 3:
            q = np.array(p) + rng.normal(0, T, (rng.integers(3, 6), 2))
            cv2.polylines(img, [np.round(q * 16).astype(np.int32)], False, col, int(rng.integers(1, 4)), cv2.LINE_AA, 4)
        else:
            cv2.ellipse(
                img,
                (int(p[0] * 16), int(p[1] * 16)),
                (int(r * 16), int(r * 8)),
                rng.uniform(0, 180),
                0,
                360,
                col,
                -1,
                cv2.LINE_AA,
                4,
            )


def render_figure(fig: Figure, index: int, seed: int = 0) -> np.ndarray:
    """Draw ``fig`` (from :func:`sample_figure` with the same ``index``/``seed``): (H, W, 3) uint8 RGB."""
    H, W = fig.image_size
    rng = np.random.default_rng((int(seed), int(index), 1))
    img = _background(rng, H, W)
    _clutter(rng, img, fig.torso_len)
    draw_figure(img, fig, rng)
    noise = rng.uniform(0, 8)
    out = img.astype(np.float32) + rng.normal(0, noise, img.shape).astype(np.float32)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.0))
    return np.clip(out, 0, 255).astype(np.uint8)


def draw_figure(img: np.ndarray, fig: Figure, rng: np.random.Generator) -> None:
    """Draw ``fig`` (and its occluders) onto ``img`` (H, W, 3) uint8 RGB in place; ``rng`` draws its colours and
    which arms pass behind the torso, so the same seed gives the same-looking person."""
    j = fig.points
    skin = _jitter(rng, _SKIN[rng.integers(len(_SKIN))])
    hair = _jitter(rng, _HAIR[rng.integers(len(_HAIR))])
    shirt, pants = _colour(rng), _colour(rng)
    sleeves = shirt if rng.random() < 0.6 else skin
    forearm = sleeves if rng.random() < 0.5 else skin
    ua, fa, th, sh = fig.widths

    def arm(s: int, e: int, w: int) -> None:
        # Long sleeves end at the wrist, short ones at the elbow; the hand is an outlined skin blob that
        # starts at the wrist and points along the forearm, as the shoe does for the ankle.
        _capsule(img, j[s], j[e], ua, sleeves)
        _capsule(img, j[e], j[w], fa, forearm)
        hand = j[w] + (j[w] - j[e]) / max(np.linalg.norm(j[w] - j[e]), 1e-6) * fa * 1.6
        _capsule(img, j[w], hand, fa * 1.2, _shade(skin, 0.9))

    def leg(h: int, k: int, a: int) -> None:
        _capsule(img, j[h], j[k], th, pants)
        _capsule(img, j[k], j[a], sh, pants)
        foot = j[a] + (j[a] - j[k]) / max(np.linalg.norm(j[a] - j[k]), 1e-6) * sh * 0.8
        _capsule(img, j[a], foot, sh * 0.9, (40, 35, 30), outline=False)

    behind = rng.random(2) < 0.3  # arms drawn behind the torso
    leg(R_HIP, R_KNE, R_ANK)
    leg(L_HIP, L_KNE, L_ANK)
    if behind[0]:
        arm(R_SHO, R_ELB, R_WRI)
    if behind[1]:
        arm(L_SHO, L_ELB, L_WRI)
    _capsule(img, j[THORAX], j[NECK], fa, skin)
    torso = np.stack([j[R_SHO], j[L_SHO], j[L_HIP], j[R_HIP]])
    centre = torso.mean(0)
    torso = centre + (torso - centre) * 1.15
    pts = np.round(torso * 16).astype(np.int32)
    cv2.fillPoly(img, [pts], shirt, cv2.LINE_AA, 4)
    cv2.polylines(img, [pts], True, _shade(shirt, 0.55), 1, cv2.LINE_AA, 4)
    _draw_head(img, fig, j, skin, hair)
    if fig.front:  # a collar V marks the front of the shirt
        v = np.stack(
            [j[R_SHO] * 0.7 + j[L_SHO] * 0.3, j[THORAX] * 0.6 + j[PELVIS] * 0.4, j[L_SHO] * 0.7 + j[R_SHO] * 0.3]
        )
        cv2.polylines(img, [np.round(v * 16).astype(np.int32)], False, _shade(shirt, 0.45), 2, cv2.LINE_AA, 4)
    if not behind[0]:
        arm(R_SHO, R_ELB, R_WRI)
    if not behind[1]:
        arm(L_SHO, L_ELB, L_WRI)
    for poly in fig.occluders:
        col = _colour(rng)
        cv2.fillPoly(img, [np.round(poly * 16).astype(np.int32)], col, cv2.LINE_AA, 4)
        cv2.polylines(img, [np.round(poly * 16).astype(np.int32)], True, _shade(col, 0.6), 1, cv2.LINE_AA, 4)


def _draw_head(img: np.ndarray, fig: Figure, j: np.ndarray, skin: tuple, hair: tuple) -> None:
    axis = j[HEAD] - j[NECK]
    hl = max(np.linalg.norm(axis), 1e-6)
    up = axis / hl
    right = np.array([-up[1], up[0]])  # image-right of the head when upright
    c = 0.5 * (j[HEAD] + j[NECK])
    angle = np.degrees(np.arctan2(up[1], up[0])) + 90
    axes = (int(0.4 * hl * 16), int(0.5 * hl * 16))
    centre = tuple(int(v) for v in np.round(c * 16))
    if not fig.front:
        cv2.ellipse(img, centre, axes, angle, 0, 360, hair, -1, cv2.LINE_AA, 4)
        cv2.ellipse(img, centre, axes, angle, 0, 360, _shade(hair, 0.6), 1, cv2.LINE_AA, 4)
        return
    cv2.ellipse(img, centre, axes, angle, 0, 360, skin, -1, cv2.LINE_AA, 4)
    cv2.ellipse(img, centre, axes, angle, 180, 360, hair, -1, cv2.LINE_AA, 4)  # hair on top
    cv2.ellipse(img, centre, axes, angle, 0, 360, _shade(skin, 0.6), 1, cv2.LINE_AA, 4)
    turn = np.sin(fig.yaw) * 0.18 * hl
    for side in (-1, 1):
        eye = c + right * (side * 0.15 * hl + turn) + up * 0.05 * hl
        cv2.circle(
            img,
            tuple(int(v) for v in np.round(eye * 16)),
            max(int(0.06 * hl * 16), 16),
            (20, 20, 20),
            -1,
            cv2.LINE_AA,
            4,
        )
    nose = np.stack(
        [c + right * turn, c + right * (turn * 1.6) - up * 0.15 * hl, c + right * (turn + 0.05 * hl) - up * 0.12 * hl]
    )
    cv2.fillPoly(img, [np.round(nose * 16).astype(np.int32)], _shade(skin, 0.7), cv2.LINE_AA, 4)
    mouth = c + right * turn * 1.2 - up * 0.28 * hl
    cv2.ellipse(
        img,
        tuple(int(v) for v in np.round(mouth * 16)),
        (int(0.12 * hl * 16), int(0.03 * hl * 16) + 8),
        angle - 90,
        0,
        360,
        (150, 40, 40),
        -1,
        cv2.LINE_AA,
        4,
    )


def figure_record(fig: Figure, index: int, image_file: str, aspect_ratio: float) -> Record:
    """The annotation record of a figure, with the crop box of the COCO loader (person box, 1.25 padding)."""
    center, scale = box_to_center_scale(fig.bbox, aspect_ratio)
    return Record(
        image_file=image_file,
        center=center,
        scale=scale,
        keypoints=fig.joints,
        visible=fig.visible.copy(),
        occluded=fig.occluded.copy(),
        head_size=fig.head_size,
        bbox=fig.bbox.copy(),
        score=1.0,
        image_id=index,
    )


def image_name(index: int, image_format: str = "png") -> str:
    """File name of synthetic image ``index`` inside ``images/``."""
    return f"{index:06d}.{image_format}"


class SyntheticFigures(KeypointDataset):
    """In-memory synthetic figures: the same pictures and annotations ``hourglass synth`` writes, no files.

    Args:
        num: number of images (one figure each).
        seed: figure seed; different seeds give different figures.
        codec: heatmap codec (input size, heatmap size, sigma); default 128x128 input, 32x32 heatmaps, sigma 2.
        image_size: (H, W) of the full synthetic image before cropping.
        augmentation: training augmentation or ``None``.
        aug_seed: seed of the augmentation draws (independent of the figures).
        image_format: only names ``meta["image_file"]`` (``images/000000.png``) as ``synth`` would.

    Records are built exactly as the COCO loader builds them from ``synth`` output (person box to
    center/scale at the codec's aspect ratio, padding 1.25); for a square input the MPII loader gives
    the same boxes.
    """

    def __init__(
        self,
        num: int,
        seed: int = 0,
        codec: HeatmapCodec | None = None,
        image_size: Sequence[int] = (128, 128),
        augmentation: Augmentation | None = None,
        aug_seed: int = 0,
        image_format: str = "png",
    ) -> None:
        codec = codec or HeatmapCodec((128, 128), (32, 32), sigma=2.0)
        self.figure_seed = int(seed)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        aspect = codec.input_size[1] / codec.input_size[0]
        records = [
            figure_record(sample_figure(i, seed, self.image_size), i, f"images/{image_name(i, image_format)}", aspect)
            for i in range(int(num))
        ]
        super().__init__(records, MPII_16, codec, None, augmentation, aug_seed, False, f"<synthetic seed {seed}>")

    def read_image(self, index: int) -> np.ndarray:
        return render_figure(sample_figure(index, self.figure_seed, self.image_size), index, self.figure_seed)


def write_synthetic(
    out: str | os.PathLike[str],
    num: int,
    format: str = "coco",
    seed: int = 0,
    image_size: Sequence[int] = (128, 128),
    image_format: str = "png",
    overwrite: bool = False,
) -> Path:
    """Write ``num`` synthetic images and their annotations under ``out``, atomically.

    Layout: ``out/images/000000.png ...`` and, for ``format="coco"``, ``out/annotations.json`` (COCO
    person_keypoints style; the category carries MPII_16's names, skeleton and ``flip_index``; each
    annotation also has ``head_box`` (x1, y1, x2, y2)); for ``format="mpii"``, ``out/annotations.json``
    (HRNet MPII JSON: 1-based ``joints``, ``center``/``scale`` before HRNet's ``c_y += 15 s; s *= 1.25``,
    plus ``joints_occluded`` and ``headbox``) and ``out/gt_valid.mat`` (``pos_gt_src`` (16, 2, N) 1-based,
    ``jnt_missing`` (16, N), ``headboxes_src`` (2, 2, N), ``dataset_joints``) for the MPII evaluation tools.

    Everything is written into a temporary folder beside ``out`` and renamed into place at the end: a
    failure leaves no partial dataset, and an existing ``out`` is kept unless ``overwrite``.
    """
    if format not in ("coco", "mpii"):
        raise DataError(f"synth: format must be 'coco' or 'mpii', got {format!r}")
    if image_format not in ("png", "jpg"):
        raise DataError(f"synth: image format must be 'png' or 'jpg', got {image_format!r}")
    if num < 1:
        raise DataError(f"synth: --num must be at least 1, got {num}")
    if len(image_size) != 2:
        n = len(image_size)
        raise DataError(
            f"synth: --image-size '{' '.join(map(str, image_size))}': expected H W, got {n} number{'s' * (n != 1)}"
        )
    if min(image_size) < 32:
        raise DataError(f"synth: --image-size must be at least 32 x 32 pixels, got {tuple(image_size)}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise DataError(f"{out}: already exists; choose another folder or pass --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out.parent, f".{out.name}.")  # the data set folder, once renamed: umask mode
    try:
        (tmp / "images").mkdir()
        figs = []
        for i in range(num):
            fig = sample_figure(i, seed, image_size)
            figs.append(fig)
            bgr = cv2.cvtColor(render_figure(fig, i, seed), cv2.COLOR_RGB2BGR)
            path = tmp / "images" / image_name(i, image_format)
            if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95] if image_format == "jpg" else []):
                raise DataError(f"{path}: OpenCV could not write the image")
        names = [f"images/{image_name(i, image_format)}" for i in range(num)]
        if format == "coco":
            _write_coco(tmp / "annotations.json", figs, names, seed)
        else:
            _write_mpii(tmp, figs, names)
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_coco(path: Path, figs: list[Figure], names: list[str], seed: int) -> None:
    images, anns = [], []
    for i, (fig, name) in enumerate(zip(figs, names, strict=True)):
        H, W = fig.image_size
        images.append({"id": i, "file_name": name, "height": H, "width": W})
        v = np.where(fig.visible > 0, np.where(fig.occluded > 0, 1, 2), 0)
        kps = np.concatenate([fig.joints, v[:, None]], 1)
        anns.append(
            {
                "id": i + 1,
                "image_id": i,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [float(x) for x in fig.bbox],
                "area": float(fig.bbox[2] * fig.bbox[3]),
                "num_keypoints": int((v > 0).sum()),
                "keypoints": [float(x) if k % 3 < 2 else int(x) for k, x in enumerate(kps.reshape(-1))],
                "head_box": [float(x) for x in fig.head_box],
            }
        )
    doc = {
        "info": {"description": f"hourglass synthetic figures, seed {seed}"},
        "images": images,
        "annotations": anns,
        "categories": [MPII_16.to_coco_category(1, "person")],
    }
    path.write_text(json.dumps(doc))


def _write_mpii(folder: Path, figs: list[Figure], names: list[str]) -> None:
    entries = []
    for i, (fig, name) in enumerate(zip(figs, names, strict=True)):
        center, scale = box_to_center_scale(fig.bbox, 1.0)
        s_raw = float(scale[0]) / 1.25  # undo HRNet's adjustment, which the loader applies
        c_raw = center - np.array([0.0, 15.0 * s_raw])
        joints = np.where(fig.visible[:, None] > 0, fig.joints + 1, -1.0)
        entries.append(
            {
                "image": name,
                "image_id": i,
                "center": [float(c_raw[0] + 1), float(c_raw[1] + 1)],
                "scale": s_raw,
                "joints": joints.tolist(),
                "joints_vis": fig.visible.astype(int).tolist(),
                "joints_occluded": fig.occluded.astype(int).tolist(),
                "headbox": (fig.head_box + 1).tolist(),
            }
        )
    (folder / "annotations.json").write_text(json.dumps(entries))
    n = len(figs)
    pos = np.stack([f.joints + 1 for f in figs], axis=2) if n else np.zeros((16, 2, 0))
    missing = np.stack([1 - f.visible for f in figs], axis=1).astype(np.float64)
    heads = np.stack([f.head_box.reshape(2, 2) + 1 for f in figs], axis=2)
    names_cell = np.empty((1, 16), dtype=object)
    names_cell[0, :] = list(MPII_FILE_JOINTS)
    scipy.io.savemat(
        folder / "gt_valid.mat",
        {"pos_gt_src": pos, "jnt_missing": missing, "headboxes_src": heads, "dataset_joints": names_cell},
    )
