"""Training: the loop (``loop``), optimisers and schedules, distributed plumbing, the run log, ``bench --train``.

May import evaluation (validation during training); nothing below imports training. (The demo, which wires
training, evaluation and pictures, sits beside the CLI: ``hourglass.demo``.)
"""
