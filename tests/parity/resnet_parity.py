#!/usr/bin/python3
"""PyTorch's side of soda's ResNet-20 parity test (tests/parity/test_resnet_parity.cpp).

Usage: resnet_parity.py INPUT.safetensors OUTPUT.safetensors

INPUT (written by soda) holds a model state dict under "model." + PyTorch names, a batch
"images" [N, 3, 32, 32] float32 with "labels" [N] int64, and a direction "v." + name for every
parameter. The script builds PyHessian's CIFAR ResNet-20 (models/resnet.py there), loads the
state dict strictly and, in training mode (batch statistics), computes the logits, the mean
cross-entropy, its gradient and the Hessian-vector product H·v by double backward (PyHessian's
way: autograd.grad with create_graph=True, then the gradient of <g, v>). After that one training
forward it also records the running statistics it left behind and the logits in eval mode.

All of it is computed twice: in float64 from the float32 inputs (the reference, under
"reference.") and in float32 as PyTorch users run it (under "float32."), so that the test can
show soda's float32 error beside PyTorch's own.

For the other direction, the script also writes a freshly initialised PyTorch ResNet-20 of its own
(PyHessian's initialisation, BatchNorm values then randomised, num_batches_tracked int64) under
"torch_model." with its float64 logits on the same images in eval and training mode, which soda
must reproduce after load_state_dict.

Only torch and numpy: safetensors is read and written here (8-byte little-endian header size,
a JSON header, raw little-endian data). Exits non-zero with a message on any problem.
"""

import json
import struct
import sys

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as missing:
    sys.exit(
        f"resnet_parity.py: cannot import {missing.name} ({missing}); "
        "install PyTorch with: apt-get install python3-torch"
    )

SCRIPT = "resnet_parity.py"

# safetensors dtype code <-> numpy dtype (little-endian) <-> torch dtype
DTYPES = {
    "F32": (np.dtype("<f4"), torch.float32),
    "F64": (np.dtype("<f8"), torch.float64),
    "I64": (np.dtype("<i8"), torch.int64),
}


class ParityError(Exception):
    """A problem with the input or the computation, reported as one line."""


# ---------------------------------------------------------------------------- safetensors


def read_safetensors(path):
    """Returns {name: torch tensor} from a safetensors file, checking every header field."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise ParityError(f"cannot read '{path}': {e.strerror}")
    if len(blob) < 8:
        raise ParityError(f"'{path}' is {len(blob)} bytes long: not a safetensors file")
    (header_size,) = struct.unpack("<Q", blob[:8])
    if header_size > len(blob) - 8:
        raise ParityError(f"'{path}': header size {header_size} runs past the end of the file")
    try:
        header = json.loads(blob[8 : 8 + header_size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ParityError(f"'{path}': the header is not valid JSON ({e})")
    if not isinstance(header, dict):
        raise ParityError(f"'{path}': the header is not a JSON object")
    data = blob[8 + header_size :]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            code, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise ParityError(f"'{path}': entry '{name}' lacks dtype, shape or data_offsets")
        if code not in DTYPES:
            raise ParityError(
                f"'{path}': tensor '{name}' has dtype {code}; this script reads "
                f"{', '.join(DTYPES)}"
            )
        np_dtype, _ = DTYPES[code]
        count = int(np.prod(shape, dtype=np.int64))
        if not (0 <= begin <= end <= len(data)) or end - begin != count * np_dtype.itemsize:
            raise ParityError(
                f"'{path}': tensor '{name}' of shape {shape} ({code}) has data_offsets "
                f"[{begin}, {end}] that do not fit it or the file's {len(data)} data bytes"
            )
        array = np.frombuffer(data, dtype=np_dtype, count=count, offset=begin).reshape(shape)
        tensors[name] = torch.from_numpy(array.copy())
    return tensors


def write_safetensors(path, tensors):
    """Writes {name: torch tensor} (float32, float64 or int64) as safetensors, in the given order."""
    codes = {torch_dtype: code for code, (_, torch_dtype) in DTYPES.items()}
    header, chunks, offset = {}, [], 0
    for name, tensor in tensors.items():
        tensor = tensor.detach().cpu().contiguous()
        if tensor.dtype not in codes:
            raise ParityError(f"cannot write tensor '{name}' of dtype {tensor.dtype}")
        np_dtype, _ = DTYPES[codes[tensor.dtype]]
        raw = tensor.numpy().astype(np_dtype, copy=False).tobytes()
        header[name] = {
            "dtype": codes[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # the data buffer starts 8-byte aligned
    try:
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for raw in chunks:
                f.write(raw)
    except OSError as e:
        raise ParityError(f"cannot write '{path}': {e.strerror}")


# ---------------------------------------------------------------------------- the model
# PyHessian's models/resnet.py (BasicBlock variant, batch norm and residuals on), with the same
# module names; non-inplace ReLU and addition, which give the same values and derivatives.


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + residual)


class ResNet(nn.Module):
    def __init__(self, depth=20, num_classes=10):
        super().__init__()
        assert (depth - 2) % 6 == 0, "depth must be 6n + 2"
        blocks = (depth - 2) // 6
        self.inplanes = 16
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(16, blocks)
        self.layer2 = self._make_layer(32, blocks, stride=2)
        self.layer3 = self._make_layer(64, blocks, stride=2)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, (2.0 / fan_out) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = x.mean(dim=(2, 3))  # global average pooling (PyHessian's AvgPool2d(8) on 32×32)
        return self.fc(x)


# ---------------------------------------------------------------------------- computations


def take(tensors, prefix):
    """The entries named prefix + name, as {name: tensor}."""
    return {k[len(prefix) :]: t for k, t in tensors.items() if k.startswith(prefix)}


def load_model(state, dtype):
    model = ResNet(20)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ParityError(f"the input's 'model.' state dict does not fit ResNet-20: {e}")
    return model.to(dtype)  # num_batches_tracked stays int64


def train_step_results(state, images, labels, directions, dtype):
    """Logits, loss, gradient and H·v in training mode, then the running statistics that one
    forward left and the eval-mode logits, all as {name: tensor}."""
    model = load_model(state, dtype)
    model.train()
    names = [name for name, _ in model.named_parameters()]
    missing = [name for name in names if name not in directions]
    if missing:
        raise ParityError(f"the input lacks directions for {len(missing)} parameters: {missing[:3]}")
    params = [p for _, p in model.named_parameters()]
    v = [directions[name].to(dtype) for name in names]
    for name, p, vi in zip(names, params, v):
        if vi.shape != p.shape:
            raise ParityError(f"direction 'v.{name}' has shape {list(vi.shape)}, not {list(p.shape)}")

    logits = model(images.to(dtype))
    loss = F.cross_entropy(logits, labels)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    inner = sum((g * vi).sum() for g, vi in zip(grads, v))
    hvs = torch.autograd.grad(inner, params)

    out = {"logits": logits, "loss": loss}
    out.update({f"grad.{n}": g for n, g in zip(names, grads)})
    out.update({f"hvp.{n}": h for n, h in zip(names, hvs)})
    out.update({f"buffer.{n}": b.clone() for n, b in model.named_buffers()})
    model.eval()
    with torch.no_grad():
        out["eval_logits"] = model(images.to(dtype))
    return out


def randomise_batch_norm(model, generator):
    """BatchNorm values away from γ = 1, β = 0, μ = 0, σ² = 1, so that loading them matters."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.empty(c).uniform_(0.5, 1.5, generator=generator))
                m.bias.copy_(0.1 * torch.randn(c, generator=generator))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=generator))
                m.running_var.copy_(torch.empty(c).uniform_(0.5, 1.5, generator=generator))
                m.num_batches_tracked.fill_(7)


def torch_model_results(images):
    """A PyTorch-initialised ResNet-20's state dict and its float64 logits (eval and train)."""
    torch.manual_seed(20)
    model = ResNet(20)
    randomise_batch_norm(model, torch.Generator().manual_seed(21))
    out = {f"torch_model.{n}": t.clone() for n, t in model.state_dict().items()}
    reference = load_model(model.state_dict(), torch.float64)
    with torch.no_grad():
        reference.eval()
        out["torch_model_logits.eval"] = reference(images.to(torch.float64))
        reference.train()
        out["torch_model_logits.train"] = reference(images.to(torch.float64))
    return out


def main(argv):
    if len(argv) != 3:
        raise ParityError(f"usage: {SCRIPT} INPUT.safetensors OUTPUT.safetensors")
    tensors = read_safetensors(argv[1])
    for name, dtype in (("images", torch.float32), ("labels", torch.int64)):
        if name not in tensors:
            raise ParityError(f"'{argv[1]}' holds no tensor '{name}'")
        if tensors[name].dtype != dtype:
            raise ParityError(f"'{name}' is {tensors[name].dtype}, expected {dtype}")
    images, labels = tensors["images"], tensors["labels"]
    if images.dim() != 4 or images.shape[1] != 3 or labels.shape != (images.shape[0],):
        raise ParityError(
            f"expected images [N, 3, H, W] and labels [N], got {list(images.shape)} and "
            f"{list(labels.shape)}"
        )
    state, directions = take(tensors, "model."), take(tensors, "v.")

    # One thread: the work is small, and on a busy machine PyTorch's spinning worker threads made
    # the script 6 times slower (35 s against 6 s on 2 shared cores).
    torch.set_num_threads(1)
    out = {}
    for prefix, dtype in (("reference.", torch.float64), ("float32.", torch.float32)):
        results = train_step_results(state, images, labels, directions, dtype)
        out.update({prefix + name: t for name, t in results.items()})
    out.update(torch_model_results(images))
    write_safetensors(argv[2], out)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except ParityError as e:
        sys.exit(f"{SCRIPT}: error: {e}")
