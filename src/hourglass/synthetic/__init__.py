"""Figures the project draws itself, with exact labels and no download: articulated stick people in images
(:mod:`~hourglass.synthetic.figures`, ``hourglass synth``, the demo's data) and walking through videos with
identities and per-frame truth (:mod:`~hourglass.synthetic.video`, ``hourglass synth --video``).

Above ``data`` (skeletons, codec, datasets, transforms), whose datasets they are; the next synthetic scenes
(crowds of figures for multi-person training) belong here too.
"""

from .figures import SyntheticFigures, render_figure, sample_figure, write_synthetic
from .video import SyntheticVideo, write_synthetic_video

__all__ = [
    "SyntheticFigures",
    "SyntheticVideo",
    "render_figure",
    "sample_figure",
    "write_synthetic",
    "write_synthetic_video",
]
