"""Peak memory of one training step with and without gradient checkpointing of the hourglass blocks.

Each setting runs in a fresh subprocess and reports the growth of its peak resident set size (RSS,
``ru_maxrss``) over its first forward + backward + optimiser step, measured from the moment the model,
optimiser and batch exist. The growth holds the activations kept for the backward pass, the gradients
and the optimiser state; only the first differs between the two settings, so the difference is the
activation memory that checkpointing saves. ``--cuda`` reports ``torch.cuda.max_memory_allocated``.

    python benchmarks/grad_checkpointing.py --model hg2 --batch 8 --size 256
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one(model: str, batch: int, size: int, ckpt: bool, amp: str, cuda: bool) -> dict:
    import torch

    from hourglass import create_model
    from hourglass.losses import heatmap_loss

    device = torch.device("cuda" if cuda else "cpu")
    torch.manual_seed(0)
    net = create_model(model).to(device).set_grad_checkpointing(ckpt).train()
    opt = torch.optim.RMSprop(net.parameters(), lr=2.5e-4)
    x = torch.rand(batch, 3, size, size, device=device)
    target = torch.rand(batch, net.num_joints, size // 4, size // 4, device=device)
    weights = torch.ones(batch, net.num_joints, device=device)

    def step() -> float:
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            out = net(x)
        loss = heatmap_loss(out, target, weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t

    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    seconds = step()
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"checkpointing": ckpt, "peak_growth_mib": (peak - base) / 2**20, "step_s": seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="hg2")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--amp", choices=["none", "bf16"], default="none")
    p.add_argument("--cuda", action="store_true")
    p.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(one(a.model, a.batch, a.size, a.child == "on", a.amp, a.cuda)))
        return
    rows = []
    for flag in ("off", "on"):
        cmd = [sys.executable, __file__, "--model", a.model, "--batch", str(a.batch), "--size", str(a.size)]
        cmd += ["--amp", a.amp, "--child", flag] + (["--cuda"] if a.cuda else [])
        rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    print(f"{a.model}, batch {a.batch}, {a.size}x{a.size}, amp={a.amp}, {'CUDA' if a.cuda else 'CPU peak RSS'}")
    print("| gradient checkpointing | peak memory growth of the first step (MiB) | step time (s) |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {'on' if r['checkpointing'] else 'off'} | {r['peak_growth_mib']:.0f} | {r['step_s']:.2f} |")
    saved = rows[0]["peak_growth_mib"] - rows[1]["peak_growth_mib"]
    print(f"saved: {saved:.0f} MiB ({100 * saved / rows[0]['peak_growth_mib']:.0f}%)")


if __name__ == "__main__":
    main()
