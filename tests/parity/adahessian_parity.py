#!/usr/bin/python3
"""PyTorch's side of soda's AdaHessian parity test: the official AdaHessian optimizer
(amirgholami/adahessian, image_classification/optim_adahessian.py) run on soda's small CNN, in
float64, with the Hutchinson probes soda drew.

Usage: adahessian_parity.py INPUT.safetensors OUTPUT.safetensors

INPUT (written by soda; float tensors float64, labels int64) holds:
  "model." + name      the state dict of models::small_cnn in PyTorch's names: nn.Sequential(
                       Conv2d(C, 32, 3, padding=1), ReLU, MaxPool2d(2), Conv2d(32, 64, 3,
                       padding=1), ReLU, MaxPool2d(2), Flatten, Linear(64·(H/4)·(W/4), 128), ReLU,
                       Linear(128, classes)), so names 0.weight, 0.bias, 3.*, 7.*, 9.*; C and
                       classes are read from 0.weight and 9.weight, H and W from the images
  "images.<step>"      [N, C, H, W] and "labels.<step>" [N], for step = 0 .. steps-1
  "probe.<step>.<sample>.<name>"
                       the ±1 probe z of each parameter, for every step that refreshes the
                       curvature (step % update_each == 0) and every sample 0 .. samples-1
  metadata (strings)   steps, lr, beta1, beta2, eps, weight_decay, hessian_power, samples,
                       update_each, average_conv_kernel ("true" or "false")
The model is loaded strictly in float64 and, at each step, takes the mean cross-entropy of its
logits on that step's batch, its gradient (with the graph, at refresh steps) and one Adahessian
step with that step's probes.

OUTPUT holds "param." + name (the parameters after the last step), "losses" [steps] (the loss of
each step, before its update), and the final optimizer state "exp_avg." + name and
"exp_hessian_diag_sq." + name. Exits non-zero with a message on any problem, naming the key.

The optimizer, per parameter at a refresh step (the official code with n_samples = 1):
  hv = autograd.grad(grads, params, grad_outputs=z, retain_graph=True) for each probe z
  D  = mean over the probes of z·hv; for 4-D convolution kernels (average_conv_kernel),
       D = mean(|D|, dims [2, 3], keepdim) broadcast over the kernel
  (the official code takes |hv|: only D² enters, so the sign does not matter)
and at every step, with the step's D (the last refresh's between refreshes, as davda54's
pytorch AdaHessian reuses it):
  step += 1
  exp_avg             = β1·exp_avg + (1 - β1)·grad
  exp_hessian_diag_sq = β2·exp_hessian_diag_sq + (1 - β2)·D²
  denom = sqrt(exp_hessian_diag_sq)^k / sqrt(1 - β2^step)^k + eps       (k = hessian_power)
  p     = p - lr·(exp_avg / (1 - β1^step) / denom + weight_decay·p)   (the official decay)
n_samples, update_each and average_conv_kernel = False are generalisations; their defaults
(1, 1, True) are the official optimizer.
"""

import json
import math
import os
import struct
import sys

# Imports a sibling script: leave no __pycache__ in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# resnet_parity.py exits with an install hint when torch or numpy is missing.
from resnet_parity import ParityError, read_safetensors, take, write_safetensors  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SCRIPT = "adahessian_parity.py"


# ---------------------------------------------------------------------------- the optimizer


class Adahessian(torch.optim.Optimizer):
    """The official AdaHessian (amirgholami/adahessian, image_classification/optim_adahessian.py)
    with the probes as an argument of step() and three documented generalisations:

      n_samples            probes averaged per curvature refresh: D = mean of z·(Hz)
      update_each          refresh the Hessian diagonal every update_each steps (steps 0,
                           update_each, 2·update_each, ...); the other steps feed the last
                           diagonal to the moving average again, as davda54's AdaHessian does
      average_conv_kernel  average |D| over each 4-D kernel's spatial dimensions (official: on)

    Usage per step: compute the loss; if refreshes_curvature(), its gradients with their graph
    (loss.backward(create_graph=True) or autograd.grad(..., create_graph=True)); then
    step(grads, probes) with grads in the order of the parameter groups' parameters."""

    def __init__(self, params, lr=0.15, betas=(0.9, 0.999), eps=1e-4, weight_decay=0,
                 hessian_power=1, n_samples=1, update_each=1, average_conv_kernel=True):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= hessian_power <= 1.0:
            raise ValueError(f"Invalid Hessian power value: {hessian_power}")
        if n_samples < 1 or update_each < 1:
            raise ValueError(f"n_samples ({n_samples}) and update_each ({update_each}) must be "
                             "at least 1")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        hessian_power=hessian_power)
        super().__init__(params, defaults)
        self.n_samples = n_samples
        self.update_each = update_each
        self.average_conv_kernel = average_conv_kernel
        self.steps_taken = 0

    def refreshes_curvature(self):
        """Whether the next step computes a new Hessian diagonal (and needs the gradients'
        graph and probes)."""
        return self.steps_taken % self.update_each == 0

    def hessian_diagonals(self, params, grads, probes):
        """D per parameter from Hutchinson's z·(Hz) (the official get_trace)."""
        for i, grad in enumerate(grads):
            if grad.grad_fn is None:
                raise RuntimeError(f"Gradient tensor {i} does not have grad_fn: compute the "
                                   "gradients with create_graph=True")
        if probes is None:  # the official draw: Rademacher ±1
            probes = [[2 * torch.randint_like(p, high=2) - 1 for p in params]
                      for _ in range(self.n_samples)]
        if len(probes) != self.n_samples:
            raise ValueError(f"{len(probes)} probes given, n_samples is {self.n_samples}")
        sums = [torch.zeros_like(p) for p in params]
        for z in probes:
            hvs = torch.autograd.grad(grads, params, grad_outputs=z, only_inputs=True,
                                      retain_graph=True)
            for total, zi, hv in zip(sums, z, hvs):
                total.add_(zi * hv)
        diagonals = []
        for total in sums:
            diagonal = total / self.n_samples
            if diagonal.dim() == 4 and self.average_conv_kernel:
                # one value per kernel slice: the mean over its spatial taps
                diagonal = torch.mean(diagonal.abs(), dim=[2, 3], keepdim=True)
            diagonals.append(diagonal)
        return diagonals

    def step(self, grads, probes=None):
        """One update from the gradients `grads` (one per parameter, in the groups' order).
        probes: at a refresh step, n_samples lists of one ±1 tensor per parameter, or None to
        draw them here; at the other steps None."""
        params = [p for group in self.param_groups for p in group["params"]]
        groups = [group for group in self.param_groups for _ in group["params"]]
        if len(grads) != len(params):
            raise ValueError(f"{len(grads)} gradients for {len(params)} parameters")
        if self.refreshes_curvature():
            diagonals = self.hessian_diagonals(params, grads, probes)
        elif probes is not None:
            raise ValueError(f"step {self.steps_taken} reuses the last Hessian diagonal "
                             f"(update_each {self.update_each}): it takes no probes")
        else:
            diagonals = [self.state[p]["hessian_diagonal"] for p in params]

        with torch.no_grad():
            for p, group, grad, diagonal in zip(params, groups, grads, diagonals):
                state = self.state[p]
                if "step" not in state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_hessian_diag_sq"] = torch.zeros_like(p)
                state["hessian_diagonal"] = diagonal
                exp_avg, exp_hessian_diag_sq = state["exp_avg"], state["exp_hessian_diag_sq"]
                beta1, beta2 = group["betas"]
                state["step"] += 1

                exp_avg.mul_(beta1).add_(grad.detach(), alpha=1 - beta1)
                exp_hessian_diag_sq.mul_(beta2).addcmul_(diagonal, diagonal, value=1 - beta2)

                bias_correction1 = 1 - beta1 ** state["step"]
                bias_correction2 = 1 - beta2 ** state["step"]

                k = group["hessian_power"]
                denom = ((exp_hessian_diag_sq.sqrt() ** k) /
                         math.sqrt(bias_correction2) ** k).add_(group["eps"])

                p.copy_(p - group["lr"] * (exp_avg / bias_correction1 / denom
                                           + group["weight_decay"] * p))
        self.steps_taken += 1


# ---------------------------------------------------------------------------- the input


def small_cnn(channels, height, width, classes):
    """soda's models::small_cnn in PyTorch modules, with the same state-dict layout."""
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * (height // 4) * (width // 4), 128), nn.ReLU(),
        nn.Linear(128, classes))


def read_metadata(path):
    """The safetensors header's "__metadata__" (read_safetensors has checked the header)."""
    with open(path, "rb") as f:
        (header_size,) = struct.unpack("<Q", f.read(8))
        metadata = json.loads(f.read(header_size).decode("utf-8")).get("__metadata__", {})
    if not isinstance(metadata, dict):
        raise ParityError(f"'{path}': __metadata__ is not a JSON object")
    return metadata


def parse_settings(metadata):
    """The run's settings from the metadata strings, each checked."""

    def value(key, parse, what):
        if key not in metadata:
            raise ParityError(f"the input's metadata lacks '{key}'")
        try:
            return parse(metadata[key])
        except (TypeError, ValueError):
            raise ParityError(f"metadata '{key}' is {metadata[key]!r}, not {what}")

    def positive_int(text):
        number = int(text)
        if number < 1:
            raise ValueError(text)
        return number

    def boolean(text):
        if text not in ("true", "false"):
            raise ValueError(text)
        return text == "true"

    settings = {key: value(key, float, "a number")
                for key in ("lr", "beta1", "beta2", "eps", "weight_decay", "hessian_power")}
    for key in ("steps", "samples", "update_each"):
        settings[key] = value(key, positive_int, "an integer >= 1")
    settings["average_conv_kernel"] = value("average_conv_kernel", boolean, "'true' or 'false'")
    return settings


def check_dtypes(tensors):
    for key, tensor in tensors.items():
        expected = torch.int64 if key.startswith("labels.") else torch.float64
        if tensor.dtype != expected:
            raise ParityError(f"'{key}' is {tensor.dtype}, expected {expected}")


def load_model(state, images):
    """small_cnn in float64 with the input's weights; its shape from 0.weight, 9.weight and the
    images."""
    for key, ndim in (("0.weight", 4), ("9.weight", 2)):
        if key not in state or state[key].dim() != ndim:
            raise ParityError(f"the input needs 'model.{key}' with {ndim} dimensions")
    channels, classes = state["0.weight"].shape[1], state["9.weight"].shape[0]
    height, width = images.shape[2], images.shape[3]
    if height % 4 or width % 4:
        raise ParityError(f"small_cnn needs H and W multiples of 4; the images are "
                          f"{height}x{width}")
    model = small_cnn(channels, height, width, classes).double()  # float64 before loading
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        reason = " ".join(str(e).split())  # PyTorch's message spans lines
        raise ParityError(f"the input's 'model.' state dict does not fit small_cnn({channels}, "
                          f"{height}, {width}, {classes}): {reason}")
    return model


def batches(tensors, steps):
    """[(images, labels)] per step, checked against the first step's shape."""
    out = []
    for step in range(steps):
        for key in (f"images.{step}", f"labels.{step}"):
            if key not in tensors:
                raise ParityError(f"the input holds no '{key}' (steps is {steps})")
        images, labels = tensors[f"images.{step}"], tensors[f"labels.{step}"]
        if images.dim() != 4 or labels.shape != (images.shape[0],):
            raise ParityError(f"'images.{step}' {list(images.shape)} and 'labels.{step}' "
                              f"{list(labels.shape)} are not [N, C, H, W] and [N]")
        if out and images.shape[1:] != out[0][0].shape[1:]:
            raise ParityError(f"'images.{step}' is {list(images.shape)}, 'images.0' "
                              f"{list(out[0][0].shape)}")
        out.append((images, labels))
    return out


def check_labels(batch_list, classes):
    for step, (_, labels) in enumerate(batch_list):
        if labels.numel() and (labels.min() < 0 or labels.max() >= classes):
            raise ParityError(f"'labels.{step}' has values outside [0, {classes})")


def gather_probes(tensors, model, settings):
    """{step: [[z per parameter] per sample]} for the refresh steps, every probe checked."""
    named = list(model.named_parameters())
    refresh_steps = range(0, settings["steps"], settings["update_each"])
    given = take(tensors, "probe.")
    probes = {}
    for step in refresh_steps:
        probes[step] = []
        for sample in range(settings["samples"]):
            z = []
            for name, p in named:
                suffix = f"{step}.{sample}.{name}"
                key = "probe." + suffix
                if suffix not in given:
                    raise ParityError(f"the input holds no '{key}' (step {step} refreshes the "
                                      f"curvature with {settings['samples']} samples)")
                probe = given.pop(suffix)
                if probe.shape != p.shape:
                    raise ParityError(f"'{key}' has shape {list(probe.shape)}, the parameter "
                                      f"{list(p.shape)}")
                if not torch.all((probe == 1) | (probe == -1)):
                    bad = probe[(probe != 1) & (probe != -1)][0].item()
                    raise ParityError(f"'{key}' holds {bad!r}: probes must be +1 or -1")
                z.append(probe)
            probes[step].append(z)
    if given:
        more = f" and {len(given) - 1} more" if len(given) > 1 else ""
        raise ParityError(f"unexpected 'probe.{sorted(given)[0]}'{more}: probes belong to steps "
                          f"{list(refresh_steps)} and samples 0..{settings['samples'] - 1} only")
    return probes


def check_no_other_keys(tensors, steps):
    known = {f"{kind}.{step}" for kind in ("images", "labels") for step in range(steps)}
    others = sorted(key for key in tensors
                    if key not in known and not key.startswith(("model.", "probe.")))
    if others:
        raise ParityError(f"unexpected tensor '{others[0]}' in the input (steps is {steps})")


# ---------------------------------------------------------------------------- the run


def main(argv):
    if len(argv) != 3:
        raise ParityError(f"usage: {SCRIPT} INPUT.safetensors OUTPUT.safetensors")
    tensors = read_safetensors(argv[1])
    settings = parse_settings(read_metadata(argv[1]))
    steps = settings["steps"]
    check_dtypes(tensors)
    check_no_other_keys(tensors, steps)
    batch_list = batches(tensors, steps)
    model = load_model(take(tensors, "model."), batch_list[0][0])
    if batch_list[0][0].shape[1] != model[0].in_channels:
        raise ParityError(f"'images.0' has {batch_list[0][0].shape[1]} channels, 'model.0.weight' "
                          f"{model[0].in_channels}")
    check_labels(batch_list, model[9].out_features)
    probes = gather_probes(tensors, model, settings)

    # One thread, as the other parity scripts: the model is small and the machine may be busy.
    torch.set_num_threads(1)
    names = [name for name, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    try:
        optimizer = Adahessian(
            params, lr=settings["lr"], betas=(settings["beta1"], settings["beta2"]),
            eps=settings["eps"], weight_decay=settings["weight_decay"],
            hessian_power=settings["hessian_power"], n_samples=settings["samples"],
            update_each=settings["update_each"],
            average_conv_kernel=settings["average_conv_kernel"])
    except ValueError as e:
        raise ParityError(f"the metadata's settings: {e}")

    losses = []
    for step, (images, labels) in enumerate(batch_list):
        loss = F.cross_entropy(model(images), labels)
        refresh = optimizer.refreshes_curvature()
        grads = torch.autograd.grad(loss, params, create_graph=refresh)
        optimizer.step(grads, probes[step] if refresh else None)
        losses.append(loss.item())

    out = {f"param.{n}": p.detach() for n, p in zip(names, params)}
    out["losses"] = torch.tensor(losses, dtype=torch.float64)
    for state_name in ("exp_avg", "exp_hessian_diag_sq"):
        out.update({f"{state_name}.{n}": optimizer.state[p][state_name]
                    for n, p in zip(names, params)})
    write_safetensors(argv[2], out)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except ParityError as e:
        sys.exit(f"{SCRIPT}: error: {e}")
