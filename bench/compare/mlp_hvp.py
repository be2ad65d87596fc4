#!/usr/bin/python3
"""soda beside PyTorch on the same machine and threads: gradient and Hessian-vector product of
the tanh MLP 784-1024-1024-10 (batch 256, float32, softmax cross-entropy).

PyTorch's HVP is the double backward PyHessian uses: grads = autograd.grad(loss, params,
create_graph=True), then Hv = autograd.grad(grads, params, grad_outputs=v). "apply on a kept
graph" reuses the first backward's graph (retain_graph=True), PyHessian's way of applying H to
many vectors, and is the peer of soda's H.apply(v) on a hessian_at linearization.

Runs PyTorch here, then soda's bench/hvp_mlp binary, and prints soda / PyTorch time ratios.
Usage: bench/compare/mlp_hvp.py [--soda-bench build/bench/bench_hvp_mlp] [--threads 2]
(needs Debian's python3-torch; run with /usr/bin/python3)."""

import argparse
import json
import os
import subprocess
import sys
import tempfile

# timing.py beside this script; leave no __pycache__ in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import median_seconds  # noqa: E402


def torch_figures(threads, repeats):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    widths, batch = [784, 1024, 1024, 10], 256
    params = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        bound = fan_in ** -0.5
        params.append((torch.rand(fan_in, fan_out) * 2 - 1).mul_(bound).requires_grad_())
        params.append((torch.rand(fan_out) * 2 - 1).mul_(bound).requires_grad_())
    x = torch.randn(batch, widths[0])
    labels = torch.randint(0, widths[-1], (batch,))
    v = [torch.randn_like(p) for p in params]

    def loss_fn():
        h = torch.tanh(x @ params[0] + params[1])
        h = torch.tanh(h @ params[2] + params[3])
        logits = h @ params[4] + params[5]
        return torch.nn.functional.cross_entropy(logits, labels)

    def value_and_grad():
        loss = loss_fn()
        return loss, torch.autograd.grad(loss, params)

    def value_grad_hvp():
        loss = loss_fn()
        grads = torch.autograd.grad(loss, params, create_graph=True)
        hv = torch.autograd.grad(grads, params, grad_outputs=v)
        return loss, grads, hv

    kept_grads = torch.autograd.grad(loss_fn(), params, create_graph=True)

    def apply_kept():
        return torch.autograd.grad(kept_grads, params, grad_outputs=v, retain_graph=True)

    return {
        "value_and_grad": median_seconds(value_and_grad, repeats, warmup=3),
        "value_grad_hvp": median_seconds(value_grad_hvp, repeats, warmup=3),
        "apply": median_seconds(apply_kept, repeats, warmup=3),
        "torch": torch.__version__,
    }


def soda_figures(binary, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([binary, f"--benchmark_out={out.name}", "--benchmark_out_format=json",
                        "--benchmark_filter=BM_value_and_grad|BM_value_grad_hvp|BM_apply/"],
                       check=True, capture_output=True, text=True, env=env)
        report = json.load(open(out.name))
    unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    figures = {}
    for b in report["benchmarks"]:
        name = b["name"].split("/")[0].removeprefix("BM_")
        figures[name] = b["real_time"] * unit[b["time_unit"]]
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--soda-bench", default="build/bench/bench_hvp_mlp")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    torch_times = torch_figures(args.threads, args.repeats)
    soda_times = soda_figures(args.soda_bench, args.threads)
    rows = [("value + gradient", "value_and_grad"),
            ("value + gradient + HVP", "value_grad_hvp"),
            ("H·v on a kept linearization / graph", "apply")]
    print(f"tanh MLP 784-1024-1024-10, batch 256, float32, {args.threads} threads; PyTorch {torch_times['torch']}")
    print(f"{'':40s} {'soda ms':>9s} {'PyTorch ms':>11s} {'soda/PyTorch':>13s}")
    for label, key in rows:
        s, t = soda_times[key], torch_times[key]
        print(f"{label:40s} {s * 1e3:9.2f} {t * 1e3:11.2f} {s / t:13.3f}")
    print(f"{'HVP / gradient time':40s} {soda_times['value_grad_hvp'] / soda_times['value_and_grad']:9.2f} "
          f"{torch_times['value_grad_hvp'] / torch_times['value_and_grad']:11.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"soda_seconds": soda_times, "torch_seconds": torch_times, "threads": args.threads}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
