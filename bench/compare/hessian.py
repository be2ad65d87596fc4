#!/usr/bin/python3
"""soda beside PyTorch on the same machine and threads: Hessian spectra of ResNet-20 (PyHessian's
CIFAR definition) on one batch of 128 3x32x32 float32 images, 10 classes, BatchNorm on running
statistics (eval mode, PyHessian's default; the statistics are the batch's own, set by one
training-mode forward, so that eval mode normalises as a trained model would).

The script draws the model (PyHessian's initialisation, seeded), the batch and a direction v, writes
them to a safetensors file and runs PyTorch here and soda's bench_hessian on that file, so both
work on identical weights and data. Stages, each on both sides (median of --repeats for the cheap
ones, of --stage-repeats for the estimators):

  gradient        loss and gradient (torch.autograd.grad; soda::value_and_grad)
  linearize       PyTorch: the gradient with create_graph=True, the graph PyHessian keeps;
                  soda: HessianOperator's construction (hessian_at's recorded forward and backward)
  hvp             one H·v on what the previous stage kept. PyTorch: PyHessian's
                  autograd.grad(grads, params, grad_outputs=v, retain_graph=True);
                  soda: HessianOperator::apply, a replay of the linearization (no primal pass)
  top eigenvalue  PyHessian's power iteration, --power-iterations products exactly (tolerance 0),
                  both sides starting from v, so the two eigenvalue sequences are the same in
                  exact arithmetic and the final values agree to float32 rounding
  trace           Hutchinson with Rademacher probes, --trace-samples products exactly
  density         stochastic Lanczos quadrature, --density-runs x --lanczos-steps products
                  (PyHessian's density(): Lanczos with full reorthogonalisation)
The estimator stages run on a linearization made beforehand (PyHessian's hessian() object; soda's
HessianOperator) and do not include it. Per stage: soda time, PyTorch time, PyTorch / soda (the
issue's goal: >= 2 for the estimators), HVPs per second on each side and the HVP counts; the H·v /
gradient time within each library; and the two sides' estimates.

Usage: bench/compare/hessian.py [--soda-binary build-bench/bench/bench_hessian] [--threads 2]
       [--repeats 5] [--stage-repeats 1] [--power-iterations 20] [--trace-samples 20]
       [--lanczos-steps 30] [--density-runs 1] [--json FILE]
(needs Debian's python3-torch; run with /usr/bin/python3). About 4 minutes at the defaults on an
idle 2-core machine."""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

# Imports a sibling script: leave no __pycache__ in the source tree.
sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # resnet.py: PyHessian's ResNet; timing.py
from timing import median_seconds_and_result  # noqa: E402
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "parity"))  # safetensors writer

BATCH, CLASSES = 128, 10
STAGES = ("gradient", "linearize", "hvp", "top_eigenvalue", "trace", "density")
LABELS = {"gradient": "gradient", "linearize": "linearize (kept graph)", "hvp": "one H·v",
          "top_eigenvalue": "top eigenvalue (power)", "trace": "trace (Hutchinson)",
          "density": "density (SLQ)"}


# ----------------------------------------------------------------------------------------------
# PyHessian's algorithms (pyhessian/hessian.py and utils.py), on a kept double-backward graph
# ----------------------------------------------------------------------------------------------

def group_product(xs, ys):
    return sum(torch.sum(x * y) for x, y in zip(xs, ys))


def group_add(params, update, alpha=1):
    for p, u in zip(params, update):
        p.data.add_(u * alpha)
    return params


def normalization(v):
    s = math.sqrt(group_product(v, v).item())
    return [vi / (s + 1e-6) for vi in v]


def orthnormal(w, v_list):
    for v in v_list:
        w = group_add(w, v, alpha=-group_product(w, v))
    return normalization(w)


class PyHessian:
    """PyHessian's hessian object with full_dataset=False: the loss and its gradient with
    create_graph=True, kept; each H·v is one backward through that graph."""

    def __init__(self, model, images, labels):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.loss = F.cross_entropy(model(images), labels)
        self.grads = torch.autograd.grad(self.loss, self.params, create_graph=True)
        self.products = 0

    def hvp(self, v):
        self.products += 1
        return torch.autograd.grad(self.grads, self.params, grad_outputs=v, only_inputs=True,
                                   retain_graph=True)

    def eigenvalue(self, iterations, start):
        """eigenvalues(maxIter=iterations, tol=0, top_n=1) from `start` instead of a fresh draw."""
        v = normalization([s.clone() for s in start])
        eigenvalue = None
        for _ in range(iterations):
            v = orthnormal(v, [])
            hv = self.hvp(v)
            eigenvalue = group_product(hv, v).item()
            v = normalization(hv)
        return eigenvalue

    def trace(self, samples, generator):
        """trace(maxIter=samples, tol=0): the mean of zᵀHz and its standard error."""
        values = []
        for _ in range(samples):
            v = [torch.randint(0, 2, p.size(), generator=generator).to(p.dtype) for p in self.params]
            for vi in v:
                vi[vi == 0] = -1
            values.append(group_product(self.hvp(v), v).item())
        mean = statistics.fmean(values)
        error = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan
        return mean, error

    def density(self, steps, runs, generator):
        """density(iter=steps, n_v=runs): per run, Lanczos from a Rademacher start and the Ritz
        values of its tridiagonal matrix; returns the largest Ritz value over the runs."""
        top = -math.inf
        for _ in range(runs):
            v = [torch.randint(0, 2, p.size(), generator=generator).to(p.dtype) for p in self.params]
            for vi in v:
                vi[vi == 0] = -1
            v = normalization(v)
            v_list, alphas, betas = [v], [], []
            for i in range(steps):
                if i == 0:
                    w_prime = self.hvp(v)
                    alpha = group_product(w_prime, v)
                    alphas.append(alpha.item())
                    w = group_add(list(w_prime), v, alpha=-alpha)
                else:
                    beta = torch.sqrt(group_product(w, w))
                    betas.append(beta.item())
                    if betas[-1] != 0.0:
                        v = orthnormal(w, v_list)
                    else:
                        v = orthnormal([torch.randn(p.size(), generator=generator)
                                        for p in self.params], v_list)
                    v_list.append(v)
                    w_prime = self.hvp(v)
                    alpha = group_product(w_prime, v)
                    alphas.append(alpha.item())
                    w_tmp = group_add(list(w_prime), v, alpha=-alpha)
                    w = group_add(w_tmp, v_list[-2], alpha=-beta)
            t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
            for i, b in enumerate(betas):
                t[i, i + 1] = t[i + 1, i] = b
            # PyHessian also keeps the weights (first row of the eigenvectors, squared); the
            # values suffice here
            top = max(top, torch.linalg.eigvalsh(t)[-1].item())
        return top


# ----------------------------------------------------------------------------------------------
# The problem, written for soda, and PyTorch's timings
# ----------------------------------------------------------------------------------------------

def make_problem(seed):
    from resnet import build_model

    torch.manual_seed(seed)
    model = build_model(20, CLASSES)
    images = torch.randn(BATCH, 3, 32, 32)
    labels = torch.randint(0, CLASSES, (BATCH,))
    # Running statistics from the batch itself (momentum None: a cumulative average, here of one
    # forward), so eval-mode BatchNorm normalises as it would in a trained model.
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        model(images)
    model.eval()
    v = [torch.randn_like(p) for p in model.parameters()]
    return model, images, labels, v


def write_problem(path, model, images, labels, v):
    from resnet_parity import write_safetensors

    tensors = {f"model.{name}": t for name, t in model.state_dict().items()}
    tensors["images"], tensors["labels"] = images, labels
    for (name, _), vi in zip(model.named_parameters(), v):
        tensors[f"v.{name}"] = vi
    write_safetensors(path, tensors)


def torch_figures(model, images, labels, v, args):
    params = [p for p in model.parameters() if p.requires_grad]
    seconds, estimates, counts = {}, {}, {}

    def gradient():
        loss = F.cross_entropy(model(images), labels)
        return loss.detach(), torch.autograd.grad(loss, params)

    seconds["gradient"], (loss, _) = median_seconds_and_result(gradient, args.repeats, warmup=1)
    estimates["loss"] = loss.item()
    seconds["linearize"], _ = median_seconds_and_result(lambda: PyHessian(model, images, labels), args.repeats,
                                                     warmup=1)

    hessian = PyHessian(model, images, labels)
    seconds["hvp"], hv = median_seconds_and_result(lambda: hessian.hvp(v), args.repeats, warmup=1)
    estimates["hvp"] = group_product(hv, v).item()
    counts["hvp"] = 1

    def stage(name, run):
        times = []
        for _ in range(args.stage_repeats):
            before = hessian.products
            start = time.perf_counter()
            estimates[name] = run()
            times.append(time.perf_counter() - start)
            counts[name] = hessian.products - before
        seconds[name] = statistics.median(times)

    generator = torch.Generator().manual_seed(args.seed + 1)
    stage("top_eigenvalue", lambda: hessian.eigenvalue(args.power_iterations, v))
    stage("trace", lambda: hessian.trace(args.trace_samples, generator))
    estimates["trace"], estimates["trace_standard_error"] = estimates["trace"]
    stage("density", lambda: hessian.density(args.lanczos_steps, args.density_runs, generator))
    return seconds, estimates, counts


# ----------------------------------------------------------------------------------------------
# soda's figures, from bench_hessian's JSON report
# ----------------------------------------------------------------------------------------------

def soda_figures(args, input_path):
    command = [args.soda_binary, "--benchmark_format=json", f"--input={input_path}",
               f"--threads={args.threads}", f"--repeats={args.repeats}",
               f"--stage_repeats={args.stage_repeats}",
               f"--power_iterations={args.power_iterations}",
               f"--trace_samples={args.trace_samples}", f"--lanczos_steps={args.lanczos_steps}",
               f"--density_runs={args.density_runs}"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"hessian.py: '{' '.join(command)}' failed ({out.returncode}):\n{out.stderr}")
    report = json.loads(out.stdout)
    unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    seconds, estimates, counts = {}, {}, {}
    for b in report["benchmarks"]:
        if b.get("error_occurred"):
            sys.exit(f"hessian.py: {b['name']}: {b.get('error_message')}")
        if b.get("run_type", "iteration") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"]).split("/")[0].removeprefix("BM_")
        seconds[name] = b["real_time"] * unit[b["time_unit"]]
        if "hvp_count" in b:
            counts[name] = int(round(b["hvp_count"]))
            estimates[name] = b["estimate"]
        if name == "gradient":
            estimates["loss"] = b["loss"]
        if name == "trace":
            estimates["trace_standard_error"] = b["standard_error"]
    missing = [s for s in STAGES if s not in seconds]
    if missing:
        sys.exit(f"hessian.py: bench_hessian reported no {', '.join(missing)}")
    return seconds, estimates, counts


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--soda-binary", default="build-bench/bench/bench_hessian")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs of gradient, linearize and H·v on each side (median)")
    parser.add_argument("--stage-repeats", type=int, default=1,
                        help="runs of each estimator on each side (median)")
    parser.add_argument("--power-iterations", type=int, default=20)
    parser.add_argument("--trace-samples", type=int, default=20)
    parser.add_argument("--lanczos-steps", type=int, default=30)
    parser.add_argument("--density-runs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    for name in ("threads", "repeats", "stage_repeats", "power_iterations", "trace_samples",
                 "lanczos_steps", "density_runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.trace_samples < 2:
        parser.error("--trace-samples must be at least 2 (a standard error needs two samples)")
    if not os.path.exists(args.soda_binary):
        parser.error(f"{args.soda_binary} not found; build it with: cmake -S . -B build-bench "
                     "-DSODA_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release && cmake --build "
                     "build-bench --target bench_hessian")

    torch.set_num_threads(args.threads)
    model, images, labels, v = make_problem(args.seed)
    with tempfile.TemporaryDirectory(prefix="soda-hessian-bench-") as folder:
        input_path = os.path.join(folder, "problem.safetensors")
        write_problem(input_path, model, images, labels, v)
        t_seconds, t_estimates, t_counts = torch_figures(model, images, labels, v, args)
        s_seconds, s_estimates, s_counts = soda_figures(args, input_path)

    print(f"ResNet-20 (PyHessian), batch {BATCH} x 3x32x32 float32, eval mode, {args.threads} "
          f"threads; PyTorch {torch.__version__}; {sum(p.numel() for p in model.parameters())} "
          f"parameters; loss soda {s_estimates['loss']:.6f}, PyTorch {t_estimates['loss']:.6f}")
    header = (f"{'stage':24s} {'HVPs':>5s} {'soda ms':>10s} {'PyTorch ms':>11s} "
              f"{'PyTorch/soda':>13s} {'soda HVP/s':>11s} {'PyTorch HVP/s':>14s}")
    print(header)
    ratios, rates = {}, {}
    for stage in STAGES:
        s, t = s_seconds[stage], t_seconds[stage]
        ratios[stage] = t / s
        count = s_counts.get(stage)
        if count is not None and count != t_counts.get(stage):
            print(f"warning: {stage}: soda ran {count} products, PyTorch {t_counts.get(stage)}")
        count_text = str(count) if count is not None else ""
        rate_text = ["", ""]
        if count:
            rates[stage] = {"soda": count / s, "torch": t_counts[stage] / t}
            rate_text = [f"{rates[stage]['soda']:.2f}", f"{rates[stage]['torch']:.2f}"]
        print(f"{LABELS[stage]:24s} {count_text:>5s} {s * 1e3:10.1f} {t * 1e3:11.1f} "
              f"{t / s:13.2f} {rate_text[0]:>11s} {rate_text[1]:>14s}")
    print()
    hvp_over_gradient = {"soda": s_seconds["hvp"] / s_seconds["gradient"],
                         "torch": t_seconds["hvp"] / t_seconds["gradient"]}
    print(f"{'within each library':40s} {'soda':>9s} {'PyTorch':>9s}")
    print(f"{'one H·v / gradient time':40s} {hvp_over_gradient['soda']:9.2f} "
          f"{hvp_over_gradient['torch']:9.2f}")
    for stage in ("top_eigenvalue", "trace", "density"):
        per_product = {"soda": s_seconds[stage] / s_counts[stage] / s_seconds["gradient"],
                       "torch": t_seconds[stage] / t_counts[stage] / t_seconds["gradient"]}
        label = f"{LABELS[stage]} per H·v / gradient"
        print(f"{label:40s} {per_product['soda']:9.2f} {per_product['torch']:9.2f}")
    print()
    top = {"soda": s_estimates["top_eigenvalue"], "torch": t_estimates["top_eigenvalue"]}
    top_difference = abs(top["soda"] - top["torch"]) / abs(top["torch"])
    print(f"top eigenvalue after {args.power_iterations} power iterations from the same start: "
          f"soda {top['soda']:.6g}, PyTorch {top['torch']:.6g} (relative difference "
          f"{top_difference:.2e})")
    print(f"vᵀHv for the shared v: soda {s_estimates['hvp']:.6g}, PyTorch {t_estimates['hvp']:.6g}")
    combined = math.hypot(s_estimates["trace_standard_error"], t_estimates["trace_standard_error"])
    print(f"trace ({args.trace_samples} probes each, different draws): soda "
          f"{s_estimates['trace']:.6g} ± {s_estimates['trace_standard_error']:.3g}, PyTorch "
          f"{t_estimates['trace']:.6g} ± {t_estimates['trace_standard_error']:.3g} (difference "
          f"{abs(s_estimates['trace'] - t_estimates['trace']) / combined:.2f} combined standard "
          "errors)")
    print(f"largest Ritz value of the density ({args.lanczos_steps} Lanczos steps, different "
          f"starts): soda {s_estimates['density']:.6g}, PyTorch {t_estimates['density']:.6g}")
    print("goal: PyTorch / soda >= 2 for the top eigenvalue, the trace and the density")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "batch": BATCH, "torch": torch.__version__,
                       "settings": vars(args), "soda_seconds": s_seconds,
                       "torch_seconds": t_seconds, "hvp_counts": {"soda": s_counts,
                                                                  "torch": t_counts},
                       "hvps_per_second": rates, "torch_over_soda_time": ratios,
                       "hvp_over_gradient_time": hvp_over_gradient,
                       "estimates": {"soda": s_estimates, "torch": t_estimates},
                       "top_eigenvalue_relative_difference": top_difference}, f, indent=2)
    return 0


if __name__ == "__main__":
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as missing:
        sys.exit(f"hessian.py: cannot import {missing.name}; install PyTorch with: "
                 "apt-get install python3-torch")
    sys.exit(main())
