"""GPU training check: DenseNet-121 images/s with in-device input beside a real-style pipeline.

Self-contained: needs PyTorch only (torchvision and numpy are used when present; without
torchvision an identical DenseNet-121 is built here). It does not import cxr. It trains the model
the way cxr does: torchvision's DenseNet-121 (random weights), a 14-output head, the first conv
folded to 1 input channel (RGB weights summed), channels_last, bf16 autocast, Adam, a masked
BCE loss, and measures images/s in these phases:

- ``synthetic``: one fixed, normalised batch already on the device (the upper bound);
- ``real``: a uint8 (N, S, S) memory-mapped file on local disk; a background thread gathers each
  shuffled batch (indices sorted) straight into reused pinned buffers, with its targets and
  per-image affine matrices; non_blocking copies; on the GPU: to float, per-image flip +
  rotation + shift + zoom + shear (``affine_grid`` + ``grid_sample``), normalisation,
  channels_last. A buffer is refilled only after the CUDA event of its copy has completed;
- ``real_engine``: the same, but host-side as cxr's engine does it (``Prefetcher``): a fresh
  gathered batch copied into pinned memory with ``pin_memory()``, targets and matrices copied
  from pageable memory.

Goal: real >= 0.9 x synthetic. Also reported: the host loader alone (images/s it can produce),
the data wait share (seconds the step loop waited for a batch / phase seconds), peak GPU memory,
torch / CUDA / cuDNN versions, and checks that bf16 autocast and channels_last are really in use
(a conv's output dtype and a mid-network activation's memory format, seen by forward hooks).

Every phase stops at its share of ``--minutes`` (default 4), so the whole call ends in time.
Prints one JSON summary to stdout (progress goes to stderr) and writes it to
``$OUT/gpu_check.json`` when ``$OUT`` is set. Exit status 1 if anything failed (the JSON still
comes out, with "error").

GPU:  python benchmarks/gpu_check.py                  (batch 128, 224 px, about 4 minutes)
CPU smoke test:  python benchmarks/gpu_check.py --device cpu --size 64 --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

try:
    import numpy as np
except ImportError:  # numpy is optional: torch.from_file then maps the file
    np = None
try:
    import torchvision
except ImportError:  # torchvision is optional: the same DenseNet-121 is built below
    torchvision = None

OUTPUTS = 14
GOAL = 0.9
#: ImageNet's RGB mean and std as one grey channel (ITU-R 601 luma weights), as cxr normalises.
_LUMA = (0.299, 0.587, 0.114)
MEAN = sum(w * m for w, m in zip(_LUMA, (0.485, 0.456, 0.406), strict=True))
STD = sum(w * s for w, s in zip(_LUMA, (0.229, 0.224, 0.225), strict=True))
#: flip probability; rotation and shear in degrees; shift and zoom as fractions
AUGMENT = {"hflip": 0.5, "rotation": 10.0, "shift": 0.1, "zoom": 0.1, "shear": 5.0}
PHASES = ("synthetic", "real", "real_engine")


def log(message: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the model -------------------------------------------------------------------------------


class _DenseLayer(nn.Module):
    def __init__(self, channels: int, growth: int = 32, bn_size: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(channels, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))
        return self.conv2(self.relu2(self.norm2(x)))


class _DenseBlock(nn.ModuleDict):
    def __init__(self, layers: int, channels: int, growth: int = 32) -> None:
        super().__init__()
        for i in range(layers):
            self[f"denselayer{i + 1}"] = _DenseLayer(channels + i * growth, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class _DenseNet121(nn.Module):
    """torchvision's DenseNet-121, layer for layer (used only when torchvision is absent)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv0=nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
            norm0=nn.BatchNorm2d(64),
            relu0=nn.ReLU(inplace=True),
            pool0=nn.MaxPool2d(3, stride=2, padding=1),
        )
        channels = 64
        for i, n in enumerate((6, 12, 24, 16)):
            layers[f"denseblock{i + 1}"] = _DenseBlock(n, channels)
            channels += 32 * n
            if i < 3:
                layers[f"transition{i + 1}"] = nn.Sequential(
                    OrderedDict(
                        norm=nn.BatchNorm2d(channels),
                        relu=nn.ReLU(inplace=True),
                        conv=nn.Conv2d(channels, channels // 2, 1, bias=False),
                        pool=nn.AvgPool2d(2, stride=2),
                    )
                )
                channels //= 2
        layers["norm5"] = nn.BatchNorm2d(channels)
        self.features = nn.Sequential(layers)
        self.classifier = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.features(x), inplace=True)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build_model(device: torch.device) -> tuple[nn.Module, str]:
    """DenseNet-121 with a 14-output head and its first conv folded to 1 channel, as cxr does."""
    torch.manual_seed(0)
    if torchvision is not None:
        model, source = torchvision.models.densenet121(weights=None), "torchvision"
    else:
        model, source = _DenseNet121(), "built-in (torchvision absent)"
    model.classifier = nn.Linear(model.classifier.in_features, OUTPUTS)
    conv = model.features.conv0
    with torch.no_grad():  # what the 3-channel model computes on the grey image repeated
        conv.weight = nn.Parameter(conv.weight.sum(1, keepdim=True))
    conv.in_channels = 1
    return model.to(device, memory_format=torch.channels_last), source


def masked_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean BCE over the known labels (NaN: unknown), as cxr's ``bce`` loss."""
    known = ~torch.isnan(targets)
    y = torch.where(known, targets, torch.zeros_like(targets))
    loss = F.binary_cross_entropy_with_logits(logits.float(), y, reduction="none")
    return torch.where(known, loss, torch.zeros_like(loss)).sum() / known.sum().clamp_min(1)


# -- augmentation and input preparation --------------------------------------------------------


def draw(n: int, generator: torch.Generator) -> torch.Tensor:
    """Per-image affine matrices (n, 2, 3) for ``affine_grid``, composed as cxr's augment."""

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * limit

    def flip(p: float) -> torch.Tensor:
        return 1 - 2 * (torch.rand(n, generator=generator, dtype=torch.float64) < p).double()

    fx, fy = flip(AUGMENT["hflip"]), flip(0.0)
    angle = torch.deg2rad(uniform(AUGMENT["rotation"]))
    shear = torch.deg2rad(uniform(AUGMENT["shear"]))
    scale = 1 + uniform(AUGMENT["zoom"])
    tx, ty = uniform(2 * AUGMENT["shift"]), uniform(2 * AUGMENT["shift"])
    cos, sin = torch.cos(angle), torch.sin(angle)
    a = torch.stack([cos, -sin + torch.tan(shear) * cos], -1)
    b = torch.stack([sin, cos + torch.tan(shear) * sin], -1)
    linear = torch.stack([a, b], -2) / scale[:, None, None]
    linear = linear * torch.stack([fx, fy], -1)[:, None, :]
    return torch.cat([linear, torch.stack([tx, ty], -1)[:, :, None]], -1).float()


def prepare(pixels: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 1, S, S) on the device -> warped, normalised float in channels_last."""
    x = pixels.float()
    grid = F.affine_grid(matrices, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    x = (x - 255.0 * MEAN) / (255.0 * STD)
    return x.contiguous(memory_format=torch.channels_last)


# -- the data file and the loaders -------------------------------------------------------------


class ImageFile:
    """A uint8 (n, size, size) file on local disk, memory-mapped (numpy if present, else torch)."""

    def __init__(self, path: Path, n: int, size: int, seed: int = 0) -> None:
        self.path, self.n, self.size = path, n, size
        generator = torch.Generator().manual_seed(seed)
        yy, xx = torch.meshgrid(torch.arange(size) / size, torch.arange(size) / size, indexing="ij")
        base = (96 + 80 * torch.sin(6 * xx) * torch.cos(4 * yy)).to(torch.int16)
        if np is not None:
            self.backend = "numpy.memmap"
            written = np.memmap(path, np.uint8, mode="w+", shape=(n, size, size))
            target = torch.from_numpy(written)
        else:
            self.backend = "torch.from_file"
            target = torch.from_file(
                str(path), shared=True, size=n * size * size, dtype=torch.uint8
            )
            target = target.view(n, size, size)
        for start in range(0, n, 512):
            k = min(512, n - start)
            noise = torch.randint(-40, 40, (k, size, size), generator=generator, dtype=torch.int16)
            target[start : start + k] = (base + noise).clamp_(0, 255).to(torch.uint8)
        if np is not None:
            written.flush()
            del written, target
            self.array = np.memmap(path, np.uint8, mode="r", shape=(n, size, size))
            self.images = None
        else:
            del target
            mapped = torch.from_file(
                str(path), shared=False, size=n * size * size, dtype=torch.uint8
            )
            self.images, self.array = mapped.view(n, size, size), None

    def gather_into(self, rows: torch.Tensor, out: torch.Tensor) -> None:
        """The images of ``rows`` copied into ``out`` (B, size, size), one copy."""
        if self.array is not None:
            np.take(self.array, rows.numpy(), axis=0, out=out.numpy())
        else:
            torch.index_select(self.images, 0, rows, out=out)

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """The images of ``rows`` as a new (pageable) tensor, as cxr's TensorBatches reads them."""
        if self.array is not None:
            return torch.from_numpy(self.array[rows.numpy()])
        return self.images[rows]


class Loader:
    """Shuffled batches (pixels, targets, matrices) read by a background thread.

    ``engine_style=False``: gathered straight into ``depth + 2`` reused (pinned) buffers; a buffer
    is refilled only after the copy that read it has finished (its CUDA event). ``True``: as cxr's
    Prefetcher, a new batch per step, copied into pinned memory with ``pin_memory()``; targets
    and matrices (drawn per epoch for every image, indexed per batch) stay pageable.
    """

    def __init__(
        self,
        data: ImageFile,
        targets: torch.Tensor,
        batch: int,
        device: torch.device,
        engine_style: bool,
        depth: int = 4,
        seed: int = 0,
    ) -> None:
        self.data, self.targets, self.batch, self.device = data, targets, batch, device
        self.engine_style, self.depth, self.seed = engine_style, depth, seed
        self.pin = device.type == "cuda"
        self.waited = 0.0
        self.ready: queue.Queue = queue.Queue()
        self.free: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        size = data.size
        if not engine_style:
            for _ in range(depth + 2):
                slot = (
                    torch.empty((batch, size, size), dtype=torch.uint8, pin_memory=self.pin),
                    torch.empty((batch, OUTPUTS), dtype=torch.float32, pin_memory=self.pin),
                    torch.empty((batch, 2, 3), dtype=torch.float32, pin_memory=self.pin),
                )
                self.free.put((slot, None))
        else:
            self.slots_out = threading.Semaphore(depth)
        self.thread = threading.Thread(target=self._run, name="gpu-check-loader", daemon=True)
        self.thread.start()

    def _batches(self):
        generator = torch.Generator().manual_seed(self.seed)
        while True:
            order = torch.randperm(self.data.n, generator=generator)
            matrices = draw(self.data.n, generator) if self.engine_style else None
            for start in range(0, self.data.n - self.batch + 1, self.batch):
                rows = order[start : start + self.batch].sort().values
                yield rows, (matrices[rows] if matrices is not None else draw(len(rows), generator))

    def _run(self) -> None:
        try:
            for rows, matrices in self._batches():
                if self.stop.is_set():
                    return
                if self.engine_style:
                    while not self.slots_out.acquire(timeout=0.1):
                        if self.stop.is_set():
                            return
                    pixels = self.data.gather(rows)
                    self.ready.put(
                        (pixels.pin_memory() if self.pin else pixels, self.targets[rows], matrices)
                    )
                    continue
                while True:
                    try:
                        slot, event = self.free.get(timeout=0.1)
                        break
                    except queue.Empty:
                        if self.stop.is_set():
                            return
                if event is not None:
                    event.synchronize()  # the last copy out of this buffer has finished
                pixels, targets, mats = slot
                self.data.gather_into(rows, pixels)
                torch.index_select(self.targets, 0, rows, out=targets)
                mats.copy_(matrices)
                self.ready.put(slot)
        except BaseException as err:  # handed to the consumer
            self.error = err
            self.ready.put(err)

    def next(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The next batch on the device: uint8 pixels (B, 1, S, S), targets, matrices."""
        start = time.perf_counter()
        item = self.ready.get()
        self.waited += time.perf_counter() - start
        if isinstance(item, BaseException):
            raise item
        copy = [t.to(self.device, non_blocking=True) for t in item]
        if self.device.type != "cuda":
            copy = [t.clone() for t in copy]  # .to(cpu) returns the buffer itself
        if self.engine_style:
            self.slots_out.release()
        else:
            event = None
            if self.device.type == "cuda":
                event = torch.cuda.Event()
                event.record()
            self.free.put((item, event))
        pixels, targets, matrices = copy
        return pixels.unsqueeze(1), targets, matrices

    def close(self) -> None:
        self.stop.set()
        if self.engine_style:
            self.slots_out.release()
        self.thread.join(timeout=10)


# -- measurement -------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_phase(
    name: str,
    next_batch,
    step,
    device: torch.device,
    batch: int,
    warmup: int,
    steps: int,
    budget_s: float,
    on_timing=None,
) -> dict:
    """Warm-up steps, then timed steps until ``steps`` or the phase's time budget is spent.

    ``on_timing()`` is called when the timed steps begin (e.g. to reset a wait counter).
    """
    phase_start = time.perf_counter()
    warm_until = phase_start + 0.4 * budget_s
    end_by = phase_start + budget_s
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    done_warm = 0
    for _ in range(warmup):
        step(*next_batch())
        done_warm += 1
        if time.perf_counter() > warm_until:
            break
    sync(device)
    if on_timing is not None:
        on_timing()
    started = time.perf_counter()
    timed, total = 0, torch.zeros((), device=device)
    budget_hit = False
    while timed < steps:
        total += step(*next_batch())
        timed += 1
        if time.perf_counter() > end_by:
            budget_hit = timed < steps
            break
    sync(device)
    seconds = time.perf_counter() - started
    result = {
        "images_per_s": timed * batch / seconds if timed else 0.0,
        "timed_steps": timed,
        "warmup_steps": done_warm,
        "seconds": seconds,
        "mean_loss": float(total / max(timed, 1)),
        "stopped_by_time_budget": budget_hit,
    }
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        result["peak_reserved_gib"] = torch.cuda.max_memory_reserved(device) / 2**30
    log(
        f"{name}: {result['images_per_s']:.1f} img/s over {timed} steps ({seconds:.1f} s)"
        + (" [time budget]" if budget_hit else "")
    )
    return result


def host_rate(loader: Loader, batch: int, seconds: float) -> float:
    """Images/s the loader delivers with nothing else to do (copies only, no training)."""
    start = time.perf_counter()
    count = 0
    while time.perf_counter() - start < seconds:
        loader.next()
        count += batch
    return count / (time.perf_counter() - start)


def checks(model: nn.Module, x: torch.Tensor, autocast) -> dict:
    """What the forward pass really runs in: dtypes and memory formats seen by hooks."""
    seen: dict[str, object] = {}
    mid = model.features.denseblock4.denselayer1.conv1

    def first(_m, args, out) -> None:
        seen["first_conv_input_dtype"] = str(args[0].dtype)
        seen["first_conv_output_dtype"] = str(out.dtype)

    def middle(_m, args, out) -> None:
        seen["mid_conv_input_shape"] = list(args[0].shape)
        seen["mid_conv_input_channels_last"] = args[0].is_contiguous(
            memory_format=torch.channels_last
        )
        seen["mid_conv_input_contiguous_nchw"] = args[0].is_contiguous()
        seen["mid_conv_output_dtype"] = str(out.dtype)
        seen["mid_conv_output_channels_last"] = out.is_contiguous(memory_format=torch.channels_last)

    handles = [
        model.features.conv0.register_forward_hook(first),
        mid.register_forward_hook(middle),
    ]
    try:
        with torch.no_grad(), autocast():
            logits = model(x)
    finally:
        for h in handles:
            h.remove()
    seen["logits_dtype"] = str(logits.dtype)
    seen["mid_conv_weight_channels_last"] = mid.weight.is_contiguous(
        memory_format=torch.channels_last
    )
    seen["bf16_autocast_used"] = seen["mid_conv_output_dtype"] == "torch.bfloat16"
    seen["channels_last_used"] = bool(
        seen["mid_conv_input_channels_last"]
        and seen["mid_conv_output_channels_last"]
        and seen["mid_conv_weight_channels_last"]
        and not seen["mid_conv_input_contiguous_nchw"]
    )
    return seen


def versions(device: torch.device) -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": getattr(torchvision, "__version__", None),
        "numpy": getattr(np, "__version__", None),
        "cuda_runtime": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=props.name,
            gpu_memory_gib=props.total_memory / 2**30,
            compute_capability=f"{props.major}.{props.minor}",
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    return info


def check(args: argparse.Namespace, summary: dict, deadline: float) -> None:
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    summary["versions"] = versions(device)
    torch.backends.cudnn.benchmark = not args.deterministic
    if args.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=not args.no_bf16)

    work = Path(tempfile.mkdtemp(prefix="gpu_check_", dir=args.workdir))
    try:
        started = time.perf_counter()
        data = ImageFile(work / "images.u8", args.images, args.size)
        generator = torch.Generator().manual_seed(1)
        targets = (torch.rand(args.images, OUTPUTS, generator=generator) < 0.1).float()
        targets[torch.rand(args.images, OUTPUTS, generator=generator) < 0.02] = float("nan")
        summary["data"] = {
            "file": str(data.path),
            "backend": data.backend,
            "images": args.images,
            "bytes": args.images * args.size**2,
            "write_s": time.perf_counter() - started,
            "note": "written just before; reads come from the page cache, not the disk",
        }
        log(f"data: {args.images} x {args.size}^2 uint8 via {data.backend}")

        model, source = build_model(device)
        summary["model"] = {
            "architecture": "densenet121",
            "source": source,
            "parameters": sum(p.numel() for p in model.parameters()),
            "outputs": OUTPUTS,
            "first_conv_in_channels": model.features.conv0.in_channels,
        }
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()

        def step(inputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            with autocast():
                logits = model(inputs)
            loss = masked_bce(logits, y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return loss.detach()

        rows = torch.arange(args.batch)
        fixed_x = prepare(
            data.gather(rows).unsqueeze(1).to(device),
            draw(args.batch, torch.Generator().manual_seed(2)).to(device),
        )
        fixed_y = targets[rows].to(device)
        summary["checks"] = checks(model, fixed_x, autocast)
        summary["checks"]["input_channels_last"] = fixed_x.is_contiguous(
            memory_format=torch.channels_last
        )
        log(f"checks: {summary['checks']}")

        def real_batch(loader: Loader):
            def next_batch():
                pixels, y, matrices = loader.next()
                return prepare(pixels, matrices), y

            return next_batch

        phases = [p for p in PHASES if p in args.phases]
        summary["phases"] = {}
        host: dict[str, float] = {}
        summary["host_loader_images_per_s"] = host
        for i, name in enumerate(phases):
            left = deadline - time.perf_counter() - args.reserve_s
            budget = left / (len(phases) - i)
            if budget < 5:
                summary["phases"][name] = {"skipped": "no time left in --minutes"}
                log(f"{name}: skipped, no time left")
                continue
            if name == "synthetic":
                result = run_phase(
                    name,
                    lambda: (fixed_x, fixed_y),
                    step,
                    device,
                    args.batch,
                    args.warmup,
                    args.steps,
                    budget,
                )
            else:
                loader = Loader(
                    data,
                    targets,
                    args.batch,
                    device,
                    engine_style=name == "real_engine",
                    depth=2 if name == "real_engine" else 4,  # cxr's Prefetcher: depth 2
                )
                try:
                    begun = time.perf_counter()
                    host[name] = host_rate(loader, args.batch, min(3.0, 0.1 * budget))
                    result = run_phase(
                        name,
                        real_batch(loader),
                        step,
                        device,
                        args.batch,
                        args.warmup,
                        args.steps,
                        budget - (time.perf_counter() - begun),
                        on_timing=lambda loader=loader: setattr(loader, "waited", 0.0),
                    )
                    result["data_wait_share"] = loader.waited / max(result["seconds"], 1e-9)
                finally:
                    loader.close()
            summary["phases"][name] = result
        synth = summary["phases"].get("synthetic", {}).get("images_per_s")
        ratios = {}
        for name in ("real", "real_engine"):
            got = summary["phases"].get(name, {}).get("images_per_s")
            if synth and got:
                ratios[name] = got / synth
        summary["ratio_to_synthetic"] = ratios
        summary["goal_ratio"] = GOAL
        summary["meets_goal"] = {k: v >= GOAL for k, v in ratios.items()}
        if cuda:
            summary["peak_memory_gib"] = max(
                (p.get("peak_memory_gib", 0.0) for p in summary["phases"].values()), default=0.0
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=0, help="default: 128 on a GPU, 8 on a CPU")
    parser.add_argument("--steps", type=int, default=200, help="most timed steps per phase")
    parser.add_argument("--warmup", type=int, default=0, help="default: 15 on a GPU, 1 on a CPU")
    parser.add_argument(
        "--images", type=int, default=0, help="images in the file (default: 20000 GPU, 256 CPU)"
    )
    parser.add_argument("--minutes", type=float, default=4.0, help="the whole call's time budget")
    parser.add_argument(
        "--reserve-s", type=float, default=15.0, help="seconds kept back for cleanup and output"
    )
    parser.add_argument("--phases", nargs="+", default=list(PHASES), choices=PHASES)
    parser.add_argument("--deterministic", action="store_true", help="as cxr's default recipe")
    parser.add_argument("--no-bf16", action="store_true", help="float32, no autocast")
    parser.add_argument("--workdir", default=None, help="where the data file goes (local disk)")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (default: torch's)"
    )
    args = parser.parse_args(argv)
    gpu = args.device.startswith("cuda")
    args.batch = args.batch or (128 if gpu else 8)
    args.warmup = args.warmup or (15 if gpu else 1)
    args.images = args.images or (20000 if gpu else 256)
    if args.images < 2 * args.batch:
        parser.error("--images must hold at least two batches")
    return args


def main(argv: list[str] | None = None) -> int:
    start = time.perf_counter()
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    deadline = start + 60 * args.minutes
    summary: dict = {
        "check": "gpu_check: DenseNet-121 training throughput, synthetic vs real-style input",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {
            "device": args.device,
            "size": args.size,
            "batch": args.batch,
            "steps": args.steps,
            "warmup": args.warmup,
            "minutes": args.minutes,
            "bf16_autocast": not args.no_bf16,
            "channels_last": True,
            "deterministic": args.deterministic,
            "cudnn_benchmark": not args.deterministic and args.device.startswith("cuda"),
            "augment": AUGMENT,
            "optimizer": "Adam (default foreach), lr 1e-3",
        },
    }
    failed = False
    try:
        check(args, summary, deadline)
    except BaseException as err:  # the summary still comes out
        failed = True
        summary["error"] = f"{type(err).__name__}: {err}"
        summary["traceback"] = traceback.format_exc()
        log(summary["error"])
    summary["total_s"] = time.perf_counter() - start
    text = json.dumps(summary, indent=2, default=str)
    print(text, flush=True)
    out = os.environ.get("OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "gpu_check.json").write_text(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
