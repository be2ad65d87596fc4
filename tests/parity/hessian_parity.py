#!/usr/bin/python3
"""PyTorch's side of soda's Hessian-spectrum parity test (tests/parity/test_hessian_parity.cpp):
PyHessian's algorithms (hessian.py there) written with torch.autograd, in float64.

Usage: hessian_parity.py INPUT.safetensors OUTPUT.safetensors OUTPUT.json [--depth 8]
       [--max-iterations 100] [--tolerance 1e-3] [--lanczos-steps 60] [--trace-samples 100]
       [--trace-tolerance 1e-3] [--seed 0] [--threads 1]

INPUT (written by soda) holds a ResNet state dict under "model." + PyTorch names (PyHessian's CIFAR
ResNet of the given depth, tests/parity/resnet_parity.py), a batch "images" [N, 3, H, W] with
"labels" [N] int64, a direction "v." + name for every parameter and optionally probes
"probe.<key>." + name (soda's first Hutchinson probes). The model is loaded strictly,
converted to float64 and put in eval mode (BatchNorm on its running statistics: PyHessian's
default, model.eval()). Then, as PyHessian does:

  grads = autograd.grad(loss, params, create_graph=True)        # the kept first-order graph
  H·v   = autograd.grad(grads, params, grad_outputs=v, retain_graph=True)

and on that operator:
  - H·v for the input's direction (written to OUTPUT.safetensors as "hv." + name, with the loss
    and the gradient as "loss" and "grad." + name): the test's strongest check;
  - the top eigenvalue by PyHessian's power iteration: v ~ N(0, I) normalised; repeat
    λ = vᵀHv, v = Hv / ‖Hv‖ until |λ_prev − λ| / (|λ_prev| + 1e-6) < tolerance or max-iterations,
    returning λ_prev when the test passes, as PyHessian does (the last λ when it never does);
  - a tight reference for the top eigenvalue (not PyHessian's): Lanczos with full
    reorthogonalisation until the top Ritz pair's residual is below 1e-10 of it;
  - zᵀHz for each probe given ("probe_quadratic_forms" in the JSON);
  - Hutchinson's trace: Rademacher z, samples zᵀHz, stop once the running mean moves less than
    tolerance relative to the previous mean (|m − m_prev| / (|m_prev| + 1e-6)), from the second
    sample on (PyHessian compares its first sample with 0, which in practice never stops the run;
    soda's hutchinson_trace starts the test at the second sample, and so does this script), or at
    trace-samples.
OUTPUT.json holds the figures: loss, top eigenvalue with its iterations, HVP count and last
relative change, the Lanczos reference with its residual, the probes' zᵀHz, the trace with its
standard error (sample standard deviation / √n), sample count and HVP count, and the seconds each
part took. Exits non-zero with a message on any problem.
"""

import argparse
import json
import math
import os
import sys
import time

# Imports a sibling script: leave no __pycache__ in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# resnet_parity.py exits with an install hint when torch or numpy is missing.
from resnet_parity import ParityError, ResNet, read_safetensors, take, write_safetensors  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SCRIPT = "hessian_parity.py"


# ---------------------------------------------------------------------------- PyHessian's algebra
# (pyhessian/utils.py: group_product, group_add, normalization, orthnormal)


def group_product(xs, ys):
    return sum(torch.sum(x * y) for x, y in zip(xs, ys))


def normalization(v):
    norm = torch.sqrt(group_product(v, v))
    return [vi / (norm + 1e-6) for vi in v]


class KeptGraphHessian:
    """H·v of the batch's loss on the kept first-order graph (PyHessian's hessian class with
    full_dataset=False): one forward and one create_graph backward, then each product is one
    backward through that graph."""

    def __init__(self, model, images, labels):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.loss = F.cross_entropy(model(images), labels)
        self.grads = torch.autograd.grad(self.loss, self.params, create_graph=True)
        self.products = 0

    def apply(self, v):
        self.products += 1
        return torch.autograd.grad(self.grads, self.params, grad_outputs=v, only_inputs=True,
                                   retain_graph=True)


def top_eigenvalue(hessian, max_iterations, tolerance, generator):
    """PyHessian's hessian.eigenvalues(maxIter, tol, top_n=1)."""
    v = normalization([torch.randn(p.size(), generator=generator, dtype=p.dtype)
                       for p in hessian.params])
    eigenvalue, change, iterations = None, math.nan, 0
    for _ in range(max_iterations):
        iterations += 1
        hv = hessian.apply(v)
        estimate = group_product(hv, v).item()
        v = normalization(hv)
        if eigenvalue is not None:
            change = abs(eigenvalue - estimate) / (abs(eigenvalue) + 1e-6)
            if change < tolerance:
                break  # PyHessian keeps the previous estimate
        eigenvalue = estimate
    return {"eigenvalue": eigenvalue, "iterations": iterations, "last_relative_change": change}


def lanczos_top_eigenvalue(hessian, max_steps, generator):
    """A tight reference for the top eigenvalue, not PyHessian's: Lanczos with full
    reorthogonalisation (two Gram-Schmidt passes) from v ~ N(0, I), stopped once the top Ritz
    pair's residual ‖Hy − θy‖ = β_m·|s_m| falls below 1e-10·|θ| or after max_steps products."""
    q = normalization([torch.randn(p.size(), generator=generator, dtype=p.dtype)
                       for p in hessian.params])
    basis, alphas, betas = [q], [], []
    theta, residual = math.nan, math.inf
    for _ in range(max_steps):
        w = list(hessian.apply(basis[-1]))
        alphas.append(group_product(w, basis[-1]).item())
        for _ in range(2):
            for b in basis:
                c = group_product(w, b)
                w = [wi - c * bi for wi, bi in zip(w, b)]
        beta = math.sqrt(group_product(w, w).item())
        m = len(alphas)
        t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        for i, b in enumerate(betas):
            t[i, i + 1] = t[i + 1, i] = b
        values, vectors = torch.linalg.eigh(t)
        theta, residual = values[-1].item(), beta * abs(vectors[m - 1, -1].item())
        if residual < 1e-10 * abs(theta) or beta == 0:
            break
        betas.append(beta)
        basis.append([wi / beta for wi in w])
    return {"eigenvalue": theta, "residual_norm": residual, "steps": len(alphas)}


def hutchinson_trace(hessian, max_samples, tolerance, generator):
    """PyHessian's hessian.trace(maxIter, tol), with the stopping test from the second sample."""
    samples, previous_mean = [], 0.0
    for _ in range(max_samples):
        # PyHessian: randint_like(p, high=2), then 0 -> -1
        z = [torch.randint(0, 2, p.size(), generator=generator).to(p.dtype) * 2 - 1
             for p in hessian.params]
        samples.append(group_product(hessian.apply(z), z).item())
        mean = sum(samples) / len(samples)
        if len(samples) >= 2 and abs(mean - previous_mean) / (abs(previous_mean) + 1e-6) < tolerance:
            break
        previous_mean = mean
    n = len(samples)
    mean = sum(samples) / n
    error = (math.sqrt(sum((x - mean) ** 2 for x in samples) / (n - 1) / n) if n > 1 else math.nan)
    return {"trace": mean, "standard_error": error, "samples": samples, "samples_used": n}


# ---------------------------------------------------------------------------- the run


def load_model(state, depth):
    model = ResNet(depth).double()  # before loading: float64 weights must not pass through float32
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ParityError(f"the input's 'model.' state dict does not fit ResNet-{depth}: {e}")
    return model.eval()


def run(args):
    tensors = read_safetensors(args.input)
    for name in ("images", "labels"):
        if name not in tensors:
            raise ParityError(f"'{args.input}' holds no tensor '{name}'")
    images, labels = tensors["images"].double(), tensors["labels"]
    if labels.dtype != torch.int64:
        raise ParityError(f"'labels' is {labels.dtype}, expected torch.int64")
    if images.dim() != 4 or images.shape[1] != 3 or labels.shape != (images.shape[0],):
        raise ParityError(f"expected images [N, 3, H, W] and labels [N], got "
                          f"{list(images.shape)} and {list(labels.shape)}")
    model = load_model(take(tensors, "model."), args.depth)
    directions = take(tensors, "v.")
    names = [name for name, _ in model.named_parameters()]
    missing = [name for name in names if name not in directions]
    if missing:
        raise ParityError(f"the input lacks directions for {len(missing)} parameters: {missing[:3]}")
    v = [directions[name].double() for name in names]
    for name, p, vi in zip(names, model.parameters(), v):
        if vi.shape != p.shape:
            raise ParityError(f"direction 'v.{name}' has shape {list(vi.shape)}, not {list(p.shape)}")

    seconds = {}
    start = time.perf_counter()
    hessian = KeptGraphHessian(model, images, labels)
    seconds["linearize"] = time.perf_counter() - start

    start = time.perf_counter()
    hv = hessian.apply(v)
    seconds["hvp"] = time.perf_counter() - start

    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    products_before = hessian.products
    eigen = top_eigenvalue(hessian, args.max_iterations, args.tolerance, generator)
    eigen["hvp_count"] = hessian.products - products_before
    seconds["top_eigenvalue"] = time.perf_counter() - start

    start = time.perf_counter()
    products_before = hessian.products
    lanczos = lanczos_top_eigenvalue(hessian, args.lanczos_steps, generator)
    lanczos["hvp_count"] = hessian.products - products_before
    seconds["lanczos_top_eigenvalue"] = time.perf_counter() - start

    start = time.perf_counter()
    probes, probe_values = take(tensors, "probe."), {}
    for key in sorted({name.split(".", 1)[0] for name in probes}):
        z = take(probes, key + ".")
        if sorted(z) != sorted(names):
            raise ParityError(f"probe '{key}' does not hold one tensor per parameter")
        z = [z[name].double() for name in names]
        probe_values[key] = group_product(hessian.apply(z), z).item()
    seconds["probes"] = time.perf_counter() - start

    start = time.perf_counter()
    products_before = hessian.products
    trace = hutchinson_trace(hessian, args.trace_samples, args.trace_tolerance, generator)
    trace["hvp_count"] = hessian.products - products_before
    seconds["trace"] = time.perf_counter() - start

    out = {"loss": hessian.loss.detach()}
    out.update({f"grad.{n}": g.detach() for n, g in zip(names, hessian.grads)})
    out.update({f"hv.{n}": h for n, h in zip(names, hv)})
    write_safetensors(args.output, out)
    figures = {"torch": torch.__version__, "threads": torch.get_num_threads(),
               "parameters": sum(p.numel() for p in hessian.params), "loss": hessian.loss.item(),
               "top_eigenvalue": eigen, "lanczos_top_eigenvalue": lanczos, "trace": trace,
               "probe_quadratic_forms": probe_values, "seconds": seconds}
    try:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    except OSError as e:
        raise ParityError(f"cannot write '{args.json}': {e.strerror}")


def main(argv):
    parser = argparse.ArgumentParser(prog=SCRIPT, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("json")
    parser.add_argument("--depth", type=int, default=8, help="ResNet depth, 6n + 2")
    parser.add_argument("--max-iterations", type=int, default=100)
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--lanczos-steps", type=int, default=60)
    parser.add_argument("--trace-samples", type=int, default=100)
    parser.add_argument("--trace-tolerance", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    # One thread by default, as resnet_parity.py: on a busy machine PyTorch's spinning workers
    # cost more than they give on a model this small.
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv[1:])
    if args.max_iterations < 1 or args.trace_samples < 2:
        raise ParityError("--max-iterations must be at least 1 and --trace-samples at least 2")
    torch.set_num_threads(args.threads)
    run(args)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except ParityError as e:
        sys.exit(f"{SCRIPT}: error: {e}")
