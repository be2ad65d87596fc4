#!/usr/bin/python3
"""soda beside PyTorch on the same machine and threads: optimizer steps on ResNet-20 (PyHessian's
CIFAR definition, bench/compare/resnet.py), one batch of 128 3x32x32 float32 images, 10 classes,
model in training mode (BatchNorm on batch statistics).

The script draws the model (PyHessian's initialisation, seeded) and the batch, writes them to a
safetensors file ("model." + PyTorch's state-dict names, "images" [128, 3, 32, 32] float32,
"labels" [128] int64) and times one full optimizer step on each side, every optimizer starting
from those same weights:

  sgd_step         forward, cross-entropy, backward, torch.optim.SGD(lr 0.1, momentum 0.9,
                   weight decay 5e-4) step
  adam_step        forward, cross-entropy, backward, torch.optim.Adam step (its defaults)
  adahessian_step  forward, cross-entropy, backward with the graph kept
                   (loss.backward(create_graph=True)), one H·z per step with a Rademacher z drawn
                   inside and the update: the official AdaHessian (lr 0.15, weight decay 5e-4,
                   Hessian power 1), tests/parity/adahessian_parity.py's port of it

PyTorch: median of --repeats steps after one warm-up step. soda: build-bench/bench/bench_optimizer
run as `bench_optimizer --benchmark_format=json --input=FILE --threads=N --repeats=N` with
OMP_NUM_THREADS=N; the script reads the median aggregates of its benchmarks sgd_step, adam_step
and adahessian_step (Google Benchmark names, "BM_" prefix and "/..." suffix dropped) and their
counter "loss", read as the loss of the first step from the file's weights (the figure PyTorch's
warm-up step gives here, so the two should agree to float32 rounding).

Prints a markdown table of the step times with PyTorch ÷ soda, then AdaHessian ÷ SGD step time
within each library (goal for soda: <= 2.5) and soda's AdaHessian ÷ PyTorch's (goal: <= 0.6).
--pytorch-only skips soda and prints PyTorch's figures alone.

Usage: bench/compare/adahessian.py [--soda-binary build-bench/bench/bench_optimizer]
       [--threads 2] [--repeats 5] [--seed 0] [--json FILE] [--pytorch-only]
(needs Debian's python3-torch; run with /usr/bin/python3). About a minute at the defaults on an
idle 2-core machine."""

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import warnings

# Imports sibling scripts: leave no __pycache__ in the source tree.
sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # resnet.py: PyHessian's ResNet; timing.py
from timing import median_seconds_and_result  # noqa: E402
# safetensors writer and the AdaHessian port
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "parity"))

BATCH, CLASSES = 128, 10
STEPS = ("sgd_step", "adam_step", "adahessian_step")
LABELS = {"sgd_step": "SGD step", "adam_step": "Adam step", "adahessian_step": "AdaHessian step"}
BUILD_HINT = ("cmake -S . -B build-bench -DSODA_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release && "
              "cmake --build build-bench --target bench_optimizer")


# ----------------------------------------------------------------------------------------------
# The problem, written for soda, and PyTorch's timings
# ----------------------------------------------------------------------------------------------

def make_problem(seed):
    from resnet import build_model

    torch.manual_seed(seed)
    model = build_model(20, CLASSES).train()
    images = torch.randn(BATCH, 3, 32, 32)
    labels = torch.randint(0, CLASSES, (BATCH,))
    return model, images, labels


def write_problem(path, model, images, labels):
    from resnet_parity import write_safetensors

    tensors = {f"model.{name}": t for name, t in model.state_dict().items()}
    tensors["images"], tensors["labels"] = images, labels
    write_safetensors(path, tensors)


def make_optimizer(kind, params):
    from adahessian_parity import Adahessian

    if kind == "sgd_step":
        return torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)
    if kind == "adam_step":
        return torch.optim.Adam(params)
    return Adahessian(params, lr=0.15, weight_decay=5e-4, hessian_power=1)


def torch_figures(model, images, labels, repeats):
    """Median seconds per step and the first step's loss, per optimizer; each optimizer starts
    from the model's weights as given."""
    shared_weights = copy.deepcopy(model.state_dict())
    params = list(model.parameters())
    seconds, first_losses = {}, {}
    for kind in STEPS:
        model.load_state_dict(shared_weights)  # in place: params still name the model's tensors
        optimizer = make_optimizer(kind, params)
        second_order = kind == "adahessian_step"

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(images), labels)
            loss.backward(create_graph=second_order)
            if second_order:
                optimizer.step([p.grad for p in params])
            else:
                optimizer.step()
            return loss.item()

        losses = []
        seconds[kind], _ = median_seconds_and_result(lambda: losses.append(step()), repeats,
                                                     warmup=1)
        first_losses[kind] = losses[0]
        optimizer.zero_grad(set_to_none=True)  # AdaHessian's grads hold their graph
    return seconds, first_losses


# ----------------------------------------------------------------------------------------------
# soda's figures, from bench_optimizer's JSON report
# ----------------------------------------------------------------------------------------------

def soda_figures(args, input_path):
    command = [args.soda_binary, "--benchmark_format=json", f"--input={input_path}",
               f"--threads={args.threads}", f"--repeats={args.repeats}"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"adahessian.py: '{' '.join(command)}' failed ({out.returncode}):\n{out.stderr}")
    report = json.loads(out.stdout)
    unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    seconds, first_losses = {}, {}
    for b in report["benchmarks"]:
        if b.get("error_occurred"):
            sys.exit(f"adahessian.py: {b['name']}: {b.get('error_message')}")
        if b.get("run_type", "iteration") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"]).split("/")[0].removeprefix("BM_")
        if name in STEPS:
            seconds[name] = b["real_time"] * unit[b["time_unit"]]
            first_losses[name] = b.get("loss")
    missing = [s for s in STEPS if s not in seconds]
    if missing:
        sys.exit(f"adahessian.py: bench_optimizer reported no {', '.join(missing)}")
    return seconds, first_losses


# ----------------------------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------------------------

def print_report(args, model, t_seconds, t_losses, s_seconds, s_losses):
    parameters = sum(p.numel() for p in model.parameters())
    print(f"ResNet-20 (PyHessian), batch {BATCH} x 3x32x32 float32, train mode, {args.threads} "
          f"threads; PyTorch {torch.__version__}; {parameters} parameters")
    print()
    if s_seconds is None:
        print("| step | PyTorch ms |")
        print("|---|---:|")
        for kind in STEPS:
            print(f"| {LABELS[kind]} | {t_seconds[kind] * 1e3:.1f} |")
    else:
        print("| step | soda ms | PyTorch ms | PyTorch ÷ soda |")
        print("|---|---:|---:|---:|")
        for kind in STEPS:
            s, t = s_seconds[kind], t_seconds[kind]
            print(f"| {LABELS[kind]} | {s * 1e3:.1f} | {t * 1e3:.1f} | {t / s:.2f} |")
    print()
    ratios = {"torch_adahessian_over_sgd": t_seconds["adahessian_step"] / t_seconds["sgd_step"]}
    if s_seconds is None:
        print(f"AdaHessian ÷ SGD step time: PyTorch {ratios['torch_adahessian_over_sgd']:.2f}")
    else:
        ratios["soda_adahessian_over_sgd"] = s_seconds["adahessian_step"] / s_seconds["sgd_step"]
        ratios["soda_over_torch_adahessian"] = (s_seconds["adahessian_step"]
                                                / t_seconds["adahessian_step"])
        print(f"AdaHessian ÷ SGD step time: soda {ratios['soda_adahessian_over_sgd']:.2f} "
              f"(goal <= 2.5), PyTorch {ratios['torch_adahessian_over_sgd']:.2f}")
        print(f"soda AdaHessian ÷ PyTorch AdaHessian: {ratios['soda_over_torch_adahessian']:.2f} "
              "(goal <= 0.6)")
    def listed(losses):
        return ", ".join("-" if losses[kind] is None else f"{losses[kind]:.6f}" for kind in STEPS)

    soda_text = "" if s_losses is None else f"soda {listed(s_losses)}; "
    print(f"loss of the first step from the shared weights (SGD, Adam, AdaHessian): {soda_text}"
          f"PyTorch {listed(t_losses)}")
    return ratios


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--soda-binary", default="build-bench/bench/bench_optimizer")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed steps per optimizer on each side (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--pytorch-only", action="store_true",
                        help="skip soda: time and print PyTorch's side alone")
    args = parser.parse_args()
    for name in ("threads", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if not args.pytorch_only and not os.path.exists(args.soda_binary):
        parser.error(f"{args.soda_binary} not found; build it with: {BUILD_HINT} "
                     "(or pass --pytorch-only)")

    torch.set_num_threads(args.threads)
    # The official AdaHessian recipe calls loss.backward(create_graph=True); each step's
    # zero_grad(set_to_none=True) breaks the gradient-graph cycle PyTorch warns about.
    warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
    model, images, labels = make_problem(args.seed)
    s_seconds = s_losses = None
    with tempfile.TemporaryDirectory(prefix="soda-adahessian-bench-") as folder:
        input_path = os.path.join(folder, "problem.safetensors")
        write_problem(input_path, model, images, labels)
        t_seconds, t_losses = torch_figures(model, images, labels, args.repeats)
        if not args.pytorch_only:
            s_seconds, s_losses = soda_figures(args, input_path)

    ratios = print_report(args, model, t_seconds, t_losses, s_seconds, s_losses)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "batch": BATCH, "torch": torch.__version__,
                       "settings": vars(args), "soda_seconds": s_seconds,
                       "torch_seconds": t_seconds,
                       "first_step_loss": {"soda": s_losses, "torch": t_losses},
                       "ratios": ratios}, f, indent=2)
    return 0


if __name__ == "__main__":
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as missing:
        sys.exit(f"adahessian.py: cannot import {missing.name}; install PyTorch with: "
                 "apt-get install python3-torch")
    sys.exit(main())
