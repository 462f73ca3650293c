"""Experiment: BatchNorm + ReLU of the pre-activation blocks as one C++ kernel, forward and backward.

Issue 9 lists fusing the pre-activation pair as a route to a faster CPU training step. ATen runs it as
``native_batch_norm`` + ``relu_`` forward and ``threshold_backward`` + ``native_batch_norm_backward``
backward: five passes over the activation forward and eight backward. This kernel, for bf16 channels_last
tensors in training mode, does three forward (statistics; normalise + ReLU) and five backward (the ReLU
mask is recomputed from the input, so the output is not read back), in loops
over the channel-contiguous rows that the compiler vectorises (``-O3 -march=native``), parallel over rows
with ``at::parallel_for``. It is compiled on first use with ``torch.utils.cpp_extension.load_inline``
(g++ and ninja needed), which is why it lives here and not in the package.

    python benchmarks/fused_bn_relu.py            # gradients against eager, then kernel and step timings

It checks forward, input/weight/bias gradients and running statistics against eager within bf16
tolerance, times the pair on the demo model's activation shapes, and times the demo training step
(hg1, 128 channels, 128x128, batch 16, bf16 autocast, channels_last, fused Adam) with the blocks' pairs
replaced, interleaved with the unchanged step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch.utils.cpp_extension import load_inline

CPP = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cstring>
#include <vector>

static inline float bf2f(uint16_t u) { uint32_t b = (uint32_t)u << 16; float f; std::memcpy(&f, &b, 4); return f; }
static inline uint16_t f2bf(float f) {
  uint32_t b; std::memcpy(&b, &f, 4);
  return (uint16_t)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);  // round to nearest even (no NaN inputs here)
}

// x: (N, C, H, W) bf16 channels_last, i.e. M = N*H*W rows of C contiguous values.
std::vector<torch::Tensor> forward(torch::Tensor x, torch::Tensor weight, torch::Tensor bias,
                                   torch::Tensor running_mean, torch::Tensor running_var,
                                   double momentum, double eps) {
  const int64_t C = x.size(1), M = x.numel() / C;
  const uint16_t* xp = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
  auto y = torch::empty_like(x, x.options(), at::MemoryFormat::ChannelsLast);
  uint16_t* yp = reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>());
  const int nt = at::get_num_threads();
  std::vector<float> shift0(C);
  for (int64_t c = 0; c < C; ++c) shift0[c] = bf2f(xp[c]);  // shifted sums: no cancellation for large means
  std::vector<double> s1((size_t)nt * C, 0.0), s2((size_t)nt * C, 0.0);
  at::parallel_for(0, M, 256, [&](int64_t b, int64_t e) {
    const int t = at::get_thread_num();
    std::vector<float> a1(C, 0.f), a2(C, 0.f);
    for (int64_t m = b; m < e; ++m) {
      const uint16_t* row = xp + m * C;
      for (int64_t c = 0; c < C; ++c) { float v = bf2f(row[c]) - shift0[c]; a1[c] += v; a2[c] += v * v; }
      if (((m - b) & 1023) == 1023) {
        for (int64_t c = 0; c < C; ++c) { s1[t * C + c] += a1[c]; s2[t * C + c] += a2[c]; a1[c] = 0.f; a2[c] = 0.f; }
      }
    }
    for (int64_t c = 0; c < C; ++c) { s1[t * C + c] += a1[c]; s2[t * C + c] += a2[c]; }
  });
  auto mean = torch::empty({C}, weight.options());
  auto invstd = torch::empty({C}, weight.options());
  float* mp = mean.data_ptr<float>(); float* ip = invstd.data_ptr<float>();
  float* rm = running_mean.data_ptr<float>(); float* rv = running_var.data_ptr<float>();
  const float* w = weight.data_ptr<float>(); const float* bb = bias.data_ptr<float>();
  std::vector<float> scale(C), shift(C);
  for (int64_t c = 0; c < C; ++c) {
    double t1 = 0, t2 = 0;
    for (int t = 0; t < nt; ++t) { t1 += s1[t * C + c]; t2 += s2[t * C + c]; }
    double mu = t1 / M, var = std::max(t2 / M - mu * mu, 0.0);
    mp[c] = (float)(mu + shift0[c]);
    ip[c] = (float)(1.0 / std::sqrt(var + eps));
    rm[c] = (float)((1 - momentum) * rm[c] + momentum * mp[c]);
    rv[c] = (float)((1 - momentum) * rv[c] + momentum * var * M / std::max<int64_t>(M - 1, 1));
    scale[c] = w[c] * ip[c];
    shift[c] = bb[c] - mp[c] * scale[c];
  }
  at::parallel_for(0, M, 256, [&](int64_t b, int64_t e) {
    for (int64_t m = b; m < e; ++m) {
      const uint16_t* row = xp + m * C; uint16_t* out = yp + m * C;
      for (int64_t c = 0; c < C; ++c) {
        float v = bf2f(row[c]) * scale[c] + shift[c];
        out[c] = f2bf(v > 0.f ? v : 0.f);
      }
    }
  });
  return {y, mean, invstd};
}

// dy: gradient of the ReLU output; the ReLU mask is recomputed from x exactly as the forward computed it
// (same float operations), so neither y nor a mask is read; returns dx, dweight, dbias.
std::vector<torch::Tensor> backward(torch::Tensor dy, torch::Tensor x, torch::Tensor weight, torch::Tensor bias,
                                    torch::Tensor mean, torch::Tensor invstd) {
  const int64_t C = x.size(1), M = x.numel() / C;
  auto dyc = dy.contiguous(at::MemoryFormat::ChannelsLast);
  const uint16_t* gp = reinterpret_cast<const uint16_t*>(dyc.data_ptr<at::BFloat16>());
  const uint16_t* xp = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
  const float* mp = mean.data_ptr<float>(); const float* ip = invstd.data_ptr<float>();
  const float* w = weight.data_ptr<float>(); const float* bb = bias.data_ptr<float>();
  std::vector<float> scale(C), shift(C);
  for (int64_t c = 0; c < C; ++c) { scale[c] = w[c] * ip[c]; shift[c] = bb[c] - mp[c] * scale[c]; }
  const int nt = at::get_num_threads();
  std::vector<double> sg((size_t)nt * C, 0.0), sgx((size_t)nt * C, 0.0);
  at::parallel_for(0, M, 256, [&](int64_t b, int64_t e) {
    const int t = at::get_thread_num();
    std::vector<float> a1(C, 0.f), a2(C, 0.f);
    for (int64_t m = b; m < e; ++m) {
      const uint16_t* g = gp + m * C; const uint16_t* xr = xp + m * C;
      for (int64_t c = 0; c < C; ++c) {
        float xv = bf2f(xr[c]);
        float gv = xv * scale[c] + shift[c] > 0.f ? bf2f(g[c]) : 0.f;
        a1[c] += gv; a2[c] += gv * (xv - mp[c]);
      }
      if (((m - b) & 1023) == 1023) {
        for (int64_t c = 0; c < C; ++c) { sg[t * C + c] += a1[c]; sgx[t * C + c] += a2[c]; a1[c] = 0.f; a2[c] = 0.f; }
      }
    }
    for (int64_t c = 0; c < C; ++c) { sg[t * C + c] += a1[c]; sgx[t * C + c] += a2[c]; }
  });
  auto dw = torch::empty({C}, weight.options()), db = torch::empty({C}, weight.options());
  float* dwp = dw.data_ptr<float>(); float* dbp = db.data_ptr<float>();
  std::vector<float> k1(C), k2(C), mg(C);
  for (int64_t c = 0; c < C; ++c) {
    double t1 = 0, t2 = 0;
    for (int t = 0; t < nt; ++t) { t1 += sg[t * C + c]; t2 += sgx[t * C + c]; }
    dbp[c] = (float)t1; dwp[c] = (float)(t2 * ip[c]);
    k1[c] = w[c] * ip[c];                                  // dx = k1 * (g - mean_g - (x - mean) * k2)
    mg[c] = (float)(t1 / M);
    k2[c] = (float)(t2 / M * ip[c] * ip[c]);
  }
  auto dx = torch::empty_like(x, x.options(), at::MemoryFormat::ChannelsLast);
  uint16_t* dxp = reinterpret_cast<uint16_t*>(dx.data_ptr<at::BFloat16>());
  at::parallel_for(0, M, 256, [&](int64_t b, int64_t e) {
    for (int64_t m = b; m < e; ++m) {
      const uint16_t* g = gp + m * C; const uint16_t* xr = xp + m * C;
      uint16_t* out = dxp + m * C;
      for (int64_t c = 0; c < C; ++c) {
        float xv = bf2f(xr[c]);
        float gv = xv * scale[c] + shift[c] > 0.f ? bf2f(g[c]) : 0.f;
        out[c] = f2bf(k1[c] * (gv - mg[c] - (xv - mp[c]) * k2[c]));
      }
    }
  });
  return {dx, dw, db};
}
"""

_ext = None


def ext():
    """The compiled kernels (built once per machine into torch's extension cache)."""
    global _ext
    if _ext is None:
        _ext = load_inline(
            "hg_fused_bn_relu",
            CPP,
            functions=["forward", "backward"],
            extra_cflags=["-O3", "-march=native", "-fopenmp"],
            extra_ldflags=["-fopenmp"],
        )
    return _ext


class BnReluFn(torch.autograd.Function):
    """``relu(batch_norm(x))`` in training mode for bf16 channels_last ``x`` (N, C, H, W), fp32 BN parameters."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps):
        y, mean, invstd = ext().forward(x, weight, bias, running_mean, running_var, momentum, eps)
        ctx.save_for_backward(x, weight, bias, mean, invstd)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, bias, mean, invstd = ctx.saved_tensors
        dx, dw, db = ext().backward(dy, x, weight, bias, mean, invstd)
        return dx, dw, db, None, None, None, None


def bn_relu(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """The fused pair where it applies (training, bf16, channels_last), eager otherwise."""
    if bn.training and x.dtype == torch.bfloat16 and x.is_contiguous(memory_format=torch.channels_last):
        bn.num_batches_tracked += 1
        return BnReluFn.apply(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.momentum, bn.eps)
    return torch.relu(bn(x))


def check(shape: tuple[int, ...]) -> None:
    """Forward, gradients and running statistics against eager (in fp32 from the same bf16 input)."""
    torch.manual_seed(0)
    c = shape[1]
    x = (torch.randn(shape) * 2 + 0.5).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    dy = torch.randn(shape).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    ref_bn, bn = nn.BatchNorm2d(c), nn.BatchNorm2d(c)
    with torch.no_grad():
        ref_bn.weight.uniform_(0.5, 1.5)
        ref_bn.bias.uniform_(-0.5, 0.5)
    bn.load_state_dict(ref_bn.state_dict())
    xr = x.float().requires_grad_()
    yr = torch.relu(ref_bn(xr))
    yr.backward(dy.float())
    xf = x.clone().requires_grad_()
    yf = bn_relu(bn, xf)
    yf.backward(dy)
    close = {"atol": 2e-2, "rtol": 2e-2}
    torch.testing.assert_close(yf.float(), yr, **close)
    torch.testing.assert_close(xf.grad.float(), xr.grad, atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(bn.weight.grad, ref_bn.weight.grad, atol=0.5, rtol=1e-2)
    torch.testing.assert_close(bn.bias.grad, ref_bn.bias.grad, atol=0.5, rtol=1e-2)
    torch.testing.assert_close(bn.running_mean, ref_bn.running_mean, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(bn.running_var, ref_bn.running_var, atol=1e-3, rtol=1e-3)


def median_ms(fn, n: int = 30) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def time_pair(shape: tuple[int, ...]) -> tuple[float, float]:
    """Forward + backward of the pair: eager (ATen) and fused, ms."""
    x = torch.randn(shape).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    dy = torch.randn(shape).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    bn = nn.BatchNorm2d(shape[1])

    def eager() -> None:
        xi = x.detach().requires_grad_()
        torch.relu(bn(xi)).backward(dy)

    def fused() -> None:
        xi = x.detach().requires_grad_()
        bn_relu(bn, xi).backward(dy)

    return median_ms(eager), median_ms(fused)


def time_step(rounds: int) -> tuple[float, float]:
    """The demo training step, unchanged and with the blocks' pairs fused, interleaved; median ms."""
    from hourglass.config import load_config
    from hourglass.models.blocks import ResidualBlock
    from hourglass.training.train_bench import build_train_step, random_batch

    sets = ["model.name=hg1", "model.kwargs.num_channels=128", "optim.name=adam", "train.step=autocast"]
    cfg = load_config(None, sets)
    dev = torch.device("cpu")
    data = random_batch(16, (128, 128), 16)
    eager_step = build_train_step(cfg, dev)
    original = ResidualBlock.forward

    def fused_forward(self: ResidualBlock, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.skip is None else self.skip(x)
        out = self.conv1(bn_relu(self.bn1, x))
        out = self.conv2(bn_relu(self.bn2, out))
        out = self.conv3(bn_relu(self.bn3, out))
        return out + residual

    fused_step = build_train_step(cfg, dev)
    times: dict[str, list[float]] = {"eager": [], "fused": []}
    for r in range(rounds + 3):
        for name, step in (("eager", eager_step), ("fused", fused_step)):
            ResidualBlock.forward = fused_forward if name == "fused" else original
            t0 = time.perf_counter()
            step(data)
            if r >= 3:
                times[name].append(time.perf_counter() - t0)
    ResidualBlock.forward = original
    return 1e3 * statistics.median(times["eager"]), 1e3 * statistics.median(times["fused"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    t0 = time.perf_counter()
    ext()
    print(f"compiled in {time.perf_counter() - t0:.1f} s; {torch.get_num_threads()} threads")
    for shape in [(16, 128, 32, 32), (16, 64, 32, 32), (4, 37, 9, 7)]:
        check(shape)
    print("forward, gradients and running statistics match eager within bf16 tolerance")
    for shape in [(16, 128, 32, 32), (16, 64, 32, 32), (16, 128, 16, 16), (16, 64, 8, 8)]:
        e, f = time_pair(shape)
        print(f"pair {tuple(shape)}: eager {e:.3f} ms, fused {f:.3f} ms, {e / f:.2f}x")
    e, f = time_step(args.rounds)
    print(f"demo training step: eager {e:.1f} ms, fused pairs {f:.1f} ms, {e / f:.3f}x")


if __name__ == "__main__":
    main()
