#!/usr/bin/python3
"""soda beside PyTorch on the same machine and threads: ResNet-20 (PyHessian's CIFAR definition),
batch 128 of 3x32x32 float32 images, 10 classes, model in training mode (BatchNorm on batch
statistics).

Steps timed on each side (median of --repeats after warm-up):
  train    forward, cross-entropy, backward, SGD step (lr 0.1, momentum 0.9, weight decay 5e-4);
           soda: soda::train::train_step
  grad     loss and gradient (torch.autograd.grad; soda::value_and_grad)
  hvp      loss, gradient and Hessian-vector product. PyTorch: PyHessian's double backward,
           grads = autograd.grad(loss, params, create_graph=True), then
           Hv = autograd.grad(grads, params, grad_outputs=v) (the gradient of <g, v>);
           soda: soda::value_grad_hvp, one forward-over-reverse pass
  forward  logits only, under torch.no_grad() / soda::NoGradGuard

Peak memory of a step: in a fresh process (this script, or bench_resnet, run again), the step runs
once as warm-up, freed memory goes back to the system (gc, malloc_trim; soda also empties its
storage cache), VmRSS is read, the kernel's peak-RSS mark is reset (/proc/self/clear_refs), the
step runs again and VmHWM - VmRSS is the step's peak resident growth.

Runs PyTorch here, then the soda binary (--benchmark_format=json) and prints soda / PyTorch ratios
against the issue's goals.
Usage: bench/compare/resnet.py [--soda-binary build/bench/bench_resnet] [--threads 2]
       [--repeats 10] [--json FILE]
(needs Debian's python3-torch; run with /usr/bin/python3)."""

import argparse
import ctypes
import gc
import json
import math
import os
import subprocess
import sys
import threading
import time

# timing.py beside this script; leave no __pycache__ in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import median_seconds  # noqa: E402

BATCH, CLASSES = 128, 10
STEPS = ("train", "grad", "hvp", "forward")


# ----------------------------------------------------------------------------------------------
# PyHessian's CIFAR ResNet (models/resnet.py there), BasicBlocks only, with BatchNorm and residuals
# ----------------------------------------------------------------------------------------------

def build_model(depth=20, num_classes=CLASSES):
    import torch.nn as nn

    def conv3x3(in_planes, out_planes, stride=1):
        return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = conv3x3(inplanes, planes, stride)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = conv3x3(planes, planes)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample
            self.stride = stride

        def forward(self, x):
            residual = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            if self.downsample is not None:
                residual = self.downsample(x)
            out += residual
            return self.relu(out)

    class ResNet(nn.Module):
        def __init__(self, depth, num_classes, base_channel=16):
            super().__init__()
            assert (depth - 2) % 6 == 0, "depth should be 6n+2"
            n = (depth - 2) // 6
            block = BasicBlock
            self.inplanes = base_channel
            self.conv1 = nn.Conv2d(3, base_channel, kernel_size=3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(base_channel)
            self.relu = nn.ReLU(inplace=True)
            self.layer1 = self._make_layer(block, base_channel, n)
            self.layer2 = self._make_layer(block, base_channel * 2, n, stride=2)
            self.layer3 = self._make_layer(block, base_channel * 4, n, stride=2)
            self.avgpool = nn.AvgPool2d(8)
            self.fc = nn.Linear(base_channel * 4 * block.expansion, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    fan = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                    m.weight.data.normal_(0, math.sqrt(2.0 / fan))
                elif isinstance(m, nn.BatchNorm2d):
                    m.weight.data.fill_(1)
                    m.bias.data.zero_()

        def _make_layer(self, block, planes, blocks, stride=1):
            downsample = None
            if stride != 1 or self.inplanes != planes * block.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride,
                              bias=False),
                    nn.BatchNorm2d(planes * block.expansion))
            layers = nn.ModuleList([block(self.inplanes, planes, stride, downsample)])
            self.inplanes = planes * block.expansion
            for _ in range(1, blocks):
                layers.append(block(self.inplanes, planes))
            return layers

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))  # 32x32
            for layer in self.layer1:
                x = layer(x)  # 32x32
            for layer in self.layer2:
                x = layer(x)  # 16x16
            for layer in self.layer3:
                x = layer(x)  # 8x8
            x = self.avgpool(x)
            x = x.view(x.size(0), -1)
            return self.fc(x)

    return ResNet(depth, num_classes)


class Problem:
    """Model (train mode), batch, HVP direction and optimizer, seeded."""

    def __init__(self, seed=0):
        import torch

        torch.manual_seed(seed)
        self.model = build_model().train()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.images = torch.randn(BATCH, 3, 32, 32)
        self.labels = torch.randint(0, CLASSES, (BATCH,))
        self.v = [torch.randn_like(p) for p in self.params]
        self.optimizer = None

    def loss(self):
        import torch.nn.functional as F

        return F.cross_entropy(self.model(self.images), self.labels)

    def step(self, kind):
        import torch

        if kind == "train":
            if self.optimizer is None:  # PyHessian's CIFAR recipe
                self.optimizer = torch.optim.SGD(self.params, lr=0.1, momentum=0.9, weight_decay=5e-4)

            def train():
                self.optimizer.zero_grad(set_to_none=True)
                logits = self.model(self.images)
                loss = torch.nn.functional.cross_entropy(logits, self.labels)
                loss.backward()
                self.optimizer.step()
                # soda's train_step also reports the loss and the count of correct predictions
                return loss.item(), (logits.detach().argmax(1) == self.labels).sum().item()
            return train
        if kind == "grad":
            def grad():
                loss = self.loss()
                return loss.detach(), torch.autograd.grad(loss, self.params)
            return grad
        if kind == "hvp":
            def hvp():
                loss = self.loss()
                grads = torch.autograd.grad(loss, self.params, create_graph=True)
                hv = torch.autograd.grad(grads, self.params, grad_outputs=self.v)
                return loss.detach(), [g.detach() for g in grads], hv
            return hvp
        if kind == "forward":
            def forward():
                with torch.no_grad():
                    return self.model(self.images)
            return forward
        raise ValueError(f"unknown step {kind!r}")


def torch_times(threads, repeats):
    import torch

    torch.set_num_threads(threads)
    trained = Problem()  # its own model: the updates must not move the others' parameters
    problem = Problem()
    times = {"train": median_seconds(trained.step("train"), repeats, warmup=2)}
    for kind in ("grad", "hvp", "forward"):
        times[kind] = median_seconds(problem.step(kind), repeats, warmup=2)
    with torch.no_grad():
        loss = problem.loss().item()
    return times, loss, torch.__version__


# ----------------------------------------------------------------------------------------------
# Peak memory in a fresh process
# ----------------------------------------------------------------------------------------------

def proc_status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return -1


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


class AllocationSampler:
    """Peak of malloc's bytes in use (mallinfo2 uordblks + hblkhd, all arenas and mmapped blocks),
    sampled every 0.5 ms on a thread of its own (torch's kernels release the GIL). PyTorch's CPU
    tensors come from posix_memalign, so this is the peak of tensor bytes plus malloc's small
    blocks; Python objects live in pymalloc's own mmapped arenas and are not counted."""

    def __init__(self, libc):
        libc.mallinfo2.restype = _MallInfo2
        self._libc = libc
        self.peak = self.live()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def live(self):
        info = self._libc.mallinfo2()
        return info.uordblks + info.hblkhd

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.live())
            time.sleep(0.0005)

    def finish(self):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.live())
        return self.peak


def memory_child(kind, threads):
    import torch

    torch.set_num_threads(threads)
    problem = Problem()
    step = problem.step(kind)
    step()
    gc.collect()
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc_trim(0)
    sampler = AllocationSampler(libc)
    live_before = sampler.peak
    baseline = proc_status_bytes("VmRSS")
    reset = reset_peak_rss()
    result = step()
    peak = proc_status_bytes("VmHWM")
    peak_live = sampler.finish()
    del result
    print(json.dumps({"rss": peak - baseline, "alloc": peak_live - live_before,
                      "baseline": baseline, "reset": reset}))
    return 0


def torch_memory(threads):
    figures = {}
    for kind in ("train", "grad", "hvp", "forward"):
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child", kind,
                              "--threads", str(threads)],
                             check=True, capture_output=True, text=True)
        figures[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


# ----------------------------------------------------------------------------------------------
# soda's figures, from bench_resnet's JSON report
# ----------------------------------------------------------------------------------------------

def soda_figures(binary, threads, min_time):
    command = [binary, "--benchmark_format=json", f"--threads={threads}"]
    if min_time is not None:
        command.append(f"--benchmark_min_time={min_time}")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    report = json.loads(out.stdout)
    unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    names = {"BM_train_step": "train", "BM_value_and_grad": "grad", "BM_value_grad_hvp": "hvp",
             "BM_forward": "forward"}
    times, memory, loss = {}, {}, None
    for b in report["benchmarks"]:
        if b.get("error_occurred"):
            raise RuntimeError(f"{b['name']}: {b.get('error_message')}")
        if b.get("run_type", "iteration") != "iteration" and b.get("aggregate_name") != "median":
            continue
        parts = b["name"].split("/")
        if parts[0] in names:
            times[names[parts[0]]] = b["real_time"] * unit[b["time_unit"]]
            if "loss" in b:
                loss = b["loss"]
        elif parts[0] == "BM_peak_memory":
            memory[parts[1]] = {"rss": b["peak_rss"], "rss_no_cache": b["peak_rss_no_cache"],
                                "alloc": b["peak_alloc"],
                                "alloc_no_cache": b["peak_alloc_no_cache"],
                                "baseline": b["baseline_rss"], "reset": b["hwm_reset"] == 1}
    return times, memory, loss


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--soda-binary", default="build/bench/bench_resnet")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10, help="PyTorch timings per step")
    parser.add_argument("--soda-min-time", type=float, default=None,
                        help="bench_resnet's --benchmark_min_time (default: its own, 3 s)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--memory-child", choices=STEPS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.memory_child:
        return memory_child(args.memory_child, args.threads)

    t_times, t_loss, t_version = torch_times(args.threads, args.repeats)
    t_memory = torch_memory(args.threads)
    s_times, s_memory, s_loss = soda_figures(args.soda_binary, args.threads, args.soda_min_time)

    mib = 1 << 20
    print(f"ResNet-20 (PyHessian), batch {BATCH} x 3x32x32 float32, train mode, {args.threads} threads; "
          f"PyTorch {t_version}; loss at init soda {s_loss:.4f}, PyTorch {t_loss:.4f}")
    print(f"{'':32s} {'soda ms':>9s} {'PyTorch ms':>11s} {'soda/PyTorch':>13s} {'goal':>7s}")
    rows = [("train step (SGD momentum)", "train", 1.0), ("value + gradient", "grad", None),
            ("value + gradient + HVP", "hvp", 0.7), ("forward (no grad)", "forward", None)]
    ratios = {}
    for label, key, goal in rows:
        s, t = s_times[key], t_times[key]
        ratios[f"{key}_time_soda_over_torch"] = s / t
        goal_text = f"<= {goal:.1f}" if goal else ""
        print(f"{label:32s} {s * 1e3:9.1f} {t * 1e3:11.1f} {s / t:13.3f} {goal_text:>7s}")
    print()
    print("peak memory of a step above the model, data and optimizer state, MiB")
    print(f"{'':32s} {'soda':>9s} {'PyTorch':>11s} {'soda/PyTorch':>13s}")
    measures = [("resident (VmHWM - VmRSS)", "rss", "rss"),
                ("allocated (malloc, sampled)", "alloc_no_cache", "alloc")]
    for label, key, _ in rows:
        print(f"{label}")
        for measure, s_key, t_key in measures:
            s, t = s_memory[key][s_key], t_memory[key][t_key]
            ratios[f"{key}_{t_key}_soda_over_torch"] = s / t
            print(f"  {measure:30s} {s / mib:9.1f} {t / mib:11.1f} {s / t:13.3f}")
    print("(soda's allocated figure is from a run with SODA_STORAGE_CACHE_MB=0; its resident figure"
          " with the cache off: " + ", ".join(f"{k} {s_memory[k]['rss_no_cache'] / mib:.1f}"
                                              for _, k, _ in rows) + ")")
    print()
    print(f"{'within each library':32s} {'soda':>9s} {'PyTorch':>11s} {'':>13s} {'goal':>7s}")
    s_ratio, t_ratio = s_times["hvp"] / s_times["grad"], t_times["hvp"] / t_times["grad"]
    ratios["hvp_over_grad_time_soda"], ratios["hvp_over_grad_time_torch"] = s_ratio, t_ratio
    print(f"{'HVP / gradient time':32s} {s_ratio:9.2f} {t_ratio:11.2f} {'':13s} {'<= 3':>7s}")
    for measure, s_key, t_key in measures:
        s_ratio = s_memory["hvp"][s_key] / s_memory["grad"][s_key]
        t_ratio = t_memory["hvp"][t_key] / t_memory["grad"][t_key]
        ratios[f"hvp_over_grad_{t_key}_soda"] = s_ratio
        ratios[f"hvp_over_grad_{t_key}_torch"] = t_ratio
        label = f"HVP / gradient memory, {measure.split(' ')[0]}"
        print(f"{label:32s} {s_ratio:9.2f} {t_ratio:11.2f} {'':13s} {'<= 2.5':>7s}")
    if not all(m["reset"] for m in list(s_memory.values()) + list(t_memory.values())):
        print("warning: /proc/self/clear_refs was not writable: peak memory includes set-up")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "batch": BATCH, "torch": t_version,
                       "soda_seconds": s_times, "torch_seconds": t_times,
                       "soda_peak_bytes": s_memory, "torch_peak_bytes": t_memory,
                       "loss_at_init": {"soda": s_loss, "torch": t_loss}, "ratios": ratios},
                      f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
