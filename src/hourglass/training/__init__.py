"""Training: the loop (``loop``), optimisers and schedules, distributed plumbing, the run log, the demo.

May import evaluation (validation during training) and inference's pictures (the demo's overlays); nothing
below imports training.
"""
