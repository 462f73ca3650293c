"""The seed tutorial, step by step, on the hourglass library (see docs/seed-walkthrough.md).

Run: .venv/bin/python examples/seed_walkthrough.py
"""

import random

import numpy as np
import torch
import torchinfo

from hourglass import Hourglass, ResidualBlock
from hourglass.models.summary import quiz_answer

# Step 1: seed everything, as the tutorial does.
torch.manual_seed(0)
np.random.seed(0)
random.seed(0)

# Step 2: the module, built exactly as in the tutorial.
hg = Hourglass(ResidualBlock)

# Step 3: the summary (torchinfo replaces the tutorial's torchsummary; same shapes and counts).
stats = torchinfo.summary(hg, input_size=(1, 256, 64, 64), depth=2, col_names=("output_size", "num_params"))
print(f"Total parameters: {stats.total_params:,}")  # 3,217,920

# Step 4: the quiz. Hook midconv_1.conv2 and upconv_3.conv2, run one forward pass on rand(1, 256, 64, 64),
# and sum A * (B - C // 3) over the two output shapes (1, A, B, C).
shapes = {}
for name in ("midconv_1", "upconv_3"):
    layer = hg._modules[name]._modules["conv2"]
    layer.register_forward_hook(lambda m, i, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
with torch.no_grad():
    hg(torch.rand(1, 256, 64, 64))
print(shapes)  # {'midconv_1': (1, 128, 4, 4), 'upconv_3': (1, 128, 32, 32)}
answer = sum(a * (b - c // 3) for _, a, b, c in shapes.values())
print(f"Your answer is : {answer}")  # 3200
assert answer == quiz_answer(hg) == 3200
