"""Where a demo model loses PCKh: fit vs. generalisation, decoding, and the kind of each miss.

    python benchmarks/demo_diagnostics.py [--run runs/demo] [--train-num 500]

Reads ``RUN/config.yaml`` and ``RUN/last.safetensors`` (what ``hourglass demo`` writes) and prints:

1. PCKh@0.5 on the first ``--train-num`` training figures (plain crops) next to the held-out split: a
   model that scores about as well on its own training data is underfitting, not overfitting;
2. PCKh@0.5 / @0.1 of the held-out split under two decodings of the same network: argmax + quarter-pixel
   shift (the default, as in the reference implementations) or DARK;
3. per joint, the misses (error above 0.5 head sizes) and how many of them land on the joint's mirror
   partner (a left/right swap).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch

from hourglass.checkpoint.load import load_model
from hourglass.config import load_config
from hourglass.data import HeatmapCodec
from hourglass.data.build import build_dataset
from hourglass.evaluation.evaluate import evaluate_model, predict_keypoints
from hourglass.metrics import mpii_pckh_report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=Path("runs/demo"), help="folder with config.yaml and last.safetensors")
    ap.add_argument("--train-num", type=int, default=500)
    args = ap.parse_args()
    cfg = load_config(args.run / "config.yaml")
    model, _ = load_model(args.run / "last.safetensors")
    model = model.to(memory_format=torch.channels_last).eval()
    device = torch.device("cpu")

    val = build_dataset(cfg, "val")
    held_out = evaluate_model(model, val, cfg, device, flip=cfg.eval.flip)
    train_cfg = copy.deepcopy(cfg)
    train_cfg.eval.max_samples = args.train_num
    train = evaluate_model(model, build_dataset(cfg, "train"), train_cfg, device, flip=cfg.eval.flip)
    print(f"1. PCKh@0.5: {args.train_num} training figures {train.summary['pckh@0.5']:.2f}, "
          f"{len(val)} held-out {held_out.summary['pckh@0.5']:.2f}")  # fmt: skip

    gt = val.annotations()
    visible = np.asarray(gt["visible"]) > 0
    head = np.asarray(gt["head_size"], dtype=np.float64)
    flip_index = val.skeleton.flip_index
    print("2. decoding of the held-out heatmaps, flip test on (PCKh@0.5 / PCKh@0.1):")
    for dark in (False, True):
        codec = HeatmapCodec(cfg.data.input_size, cfg.data.heatmap_size, cfg.data.sigma, dark=dark)
        kp, _ = predict_keypoints(model, val, codec, flip_index, device, channels_last=True, amp=cfg.train.amp)
        report = mpii_pckh_report(kp, gt["keypoints"], visible, head, thr=0.5)
        name = "DARK" if dark else "argmax + quarter-pixel shift"
        print(f"   {name}: {report['Total']:.2f} / {report['Mean@0.1']:.2f}")

    pred, truth = held_out.keypoints, np.asarray(gt["keypoints"])
    err = np.linalg.norm(pred - truth, axis=2) / head[:, None]
    err_mirror = np.linalg.norm(pred - truth[:, list(flip_index)], axis=2) / head[:, None]
    print("3. misses per joint (error > 0.5 head sizes), and of those, left/right swaps:")
    for k, name in enumerate(val.skeleton.joint_names):
        miss = visible[:, k] & (err[:, k] > 0.5)
        swaps = miss & (err_mirror[:, k] <= 0.5) & (np.asarray(flip_index)[k] != k)
        print(f"   {name:>12}: {miss.sum():4d} of {visible[:, k].sum():4d} missed, {swaps.sum():4d} swaps")


if __name__ == "__main__":
    main()
