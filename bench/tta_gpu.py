"""One ImageNet-C-shaped cell per TTA method on the GPU: images/s and peak GPU memory.

    python bench/tta_gpu.py                               # GPU: ResNet-50, 2000 images, batch 64 (< 3 min on an H100-class GPU)
    python bench/tta_gpu.py --images 64 --arch small      # CPU smoke run of the same code (small CNN, seconds)

A fake ImageNet-C tree of real JPEGs (bench/fake_imagenet_c.py) streams through the cell's data
path (entrobench.data.images: CenterCrop(224), decoded in DataLoader workers, one per CPU but
one), into each method's adapt() on ResNet-50 with random weights, its head scaled so that samples pass
the entropy filters (see _model) (BatchNorm; EATA's Fisher from
`--fisher` images of the same tree under the clean-ImageNet preprocessing), bf16 autocast on CUDA
as the full-scale cards run it. Per method: images/s over the whole stream (data included),
seconds inside adapt(), and the peak GPU memory torch allocated. Errors are meaningless here
(random weights) and not reported. Writes bench/results/tta_gpu.json (or --out).

Also checks, where torchvision is installed, that the streaming preprocessing equals
torchvision's transforms on the test fixtures (tests/data/fixtures) and that DeYO's shuffle
resize equals torchvision's tensor Resize.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]

METHODS = ("source", "tent", "eata", "sar", "deyo")


LOGIT_SCALE = {"resnet50": 10.0, "small": 30.0}  # random weights predict near-uniformly: see _model


def _model(arch: str, device, logit_scale: float):
    """ResNet-50 with random weights, or (the CPU smoke run) a small CNN behind an 8 x 8 average
    pool. The head is scaled so that the random model is confident (normalized entropy about
    0.1-0.4 on these images, below EATA's and SAR's 0.4 ln C): without it no sample passes the
    entropy filters and EATA, SAR and DeYO would never back-propagate, which would time the
    cheap path instead of the cells' real one."""
    import torch

    from entrobench.models.zoo import build_model

    torch.manual_seed(0)
    if arch == "small":
        net = build_model("small_cnn", "bn", 1000, 3)
        model = torch.nn.Sequential(torch.nn.AvgPool2d(8), net)
    else:
        net = model = build_model("resnet50", "bn", 1000, 3)
    with torch.no_grad():
        net.fc.weight.mul_(logit_scale)
    return model.to(device)


def run_method(name: str, args, folder: Path, device, workers: int, fisher_x) -> dict:
    import numpy as np
    import torch

    from entrobench.data import sources
    from entrobench.data.images import PREPROCESSING, EncodedImages, index_image_folder, stream_batches, stream_order
    from methods import registry

    cls = registry.get(f"tta/{name}")
    method = cls(_model(args.arch, device, args.logit_scale), cls.Params(), 1000)
    method.prepare(fisher_x)
    index = index_image_folder(folder)
    order = stream_order(len(index), seed=0, domain=0, n=args.images, subset_seed=sources.IMAGENET_C_ORDER_SEED)
    cuda = device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and not args.no_amp else contextlib.nullcontext()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    seen, adapt_s, used, backward, batches, t0 = 0, 0.0, 0.0, 0, 0, time.perf_counter()
    for x, y in stream_batches(EncodedImages(index, PREPROCESSING["imagenet_c"]), order, args.batch, workers, device):
        t1 = time.perf_counter()
        with autocast:
            logits = method.adapt(x)
        preds = logits.float().argmax(1).cpu().numpy()  # the cell's .cpu() syncs the GPU, as here
        adapt_s += time.perf_counter() - t1
        seen += int(np.size(preds))
        used += method.last_stats["used_frac"] * len(preds)
        backward += method.last_stats["backward_passes"]
        batches += 1
    wall = time.perf_counter() - t0
    return {
        "method": name,
        "images": seen,
        "images_per_s": round(seen / wall, 1),
        "adapt_images_per_s": round(seen / adapt_s, 1),
        "wall_s": round(wall, 2),
        "used_pct": round(100 * used / max(seen, 1), 1),  # samples that entered a loss: near 100 means the full cost was timed
        "backward_per_batch": round(backward / max(batches, 1), 2),
        "peak_gpu_mem_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
    }


def torchvision_checks() -> dict:
    """Our preprocessing and DeYO's resize against torchvision's own, where it is installed."""
    try:
        import torch
        import torch.nn.functional as F
        from PIL import Image
        from torchvision import transforms
    except ImportError as err:
        return {"skipped": f"torchvision not importable ({err})"}
    from entrobench.data.images import PREPROCESSING

    fixtures = sorted((REPO / "tests" / "data" / "fixtures").glob("torchvision_*.JPEG"))
    equal = {}
    for preset, steps in (("imagenet_c", [transforms.CenterCrop(224)]), ("imagenet_val", [transforms.Resize(256), transforms.CenterCrop(224)])):
        compose = transforms.Compose([*steps, transforms.ToTensor()])
        for path in fixtures:
            with open(path, "rb") as f:
                rgb = Image.open(f).convert("RGB")
            ours = torch.from_numpy(PREPROCESSING[preset](rgb).copy()).float().div(255)
            equal[f"{preset}/{path.name}"] = bool(torch.equal(ours, compose(rgb)))
    x = torch.rand(2, 3, 30, 30)
    resize = {aa: bool(torch.allclose(F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False, antialias=aa),
                                      transforms.Resize((28, 28), antialias=aa)(x), atol=1e-6)) for aa in (False, True)}
    import torchvision

    return {"torchvision": torchvision.__version__, "preprocessing_equal": equal, "all_equal": all(equal.values()),
            "deyo_resize_equal": resize}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="images streamed per method")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--arch", choices=["resnet50", "small"], default="resnet50")
    parser.add_argument("--fisher", type=int, default=None, help="clean images for EATA's Fisher information (default: 256, at most --images)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--workers", type=int, default=None, help="decoding workers (default: CPUs - 1)")
    parser.add_argument("--logit-scale", type=float, default=None, help="head weight factor (default: 10 for resnet50, 30 for small)")
    parser.add_argument("--no-amp", action="store_true", help="fp32 on CUDA (the cards' full scale uses bf16 autocast)")
    parser.add_argument("--tree-dir", type=Path, default=Path("/tmp/entrobench-fake-imagenet-c-gpu"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "tta_gpu.json")
    args = parser.parse_args()

    import torch

    from entrobench.data import sources
    from entrobench.data.images import PREPROCESSING, EncodedImages, index_image_folder, stream_batches, workers_for
    from fake_imagenet_c import write_fake_imagenet_c

    t_start = time.perf_counter()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = workers_for(cpus) if args.workers is None else args.workers
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    args.fisher = min(256, args.images) if args.fisher is None else args.fisher
    args.logit_scale = LOGIT_SCALE[args.arch] if args.logit_scale is None else args.logit_scale
    n_tree = max(args.images, args.fisher)
    classes = min(n_tree, sources.IMAGENET_CLASSES)  # a 1000-class head whatever the tree holds
    folder = write_fake_imagenet_c(args.tree_dir / str(n_tree), n_tree, processes=max(cpus, 1), classes=classes)
    tree_s = time.perf_counter() - t_start
    print(f"tree of {n_tree} JPEGs in {tree_s:.1f} s; device {device}; {workers} decoding workers", flush=True)

    clean = EncodedImages(index_image_folder(folder), PREPROCESSING["imagenet_val"])  # stands in for the clean val set
    fisher_x = torch.cat([x for x, _ in stream_batches(clean, list(range(args.fisher)), args.batch, workers, device)])

    rows = []
    for name in args.methods:
        row = run_method(name, args, folder, device, workers, fisher_x)
        rows.append(row)
        print(json.dumps(row), flush=True)

    figures = {
        "machine": {
            "host": platform.node(), "cpus": cpus, "python": platform.python_version(), "torch": torch.__version__,
            "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu", "date": time.strftime("%Y-%m-%d %H:%M"),
        },
        "what": f"one ImageNet-C-shaped cell per method: {args.arch} (random weights, BN, head x {args.logit_scale}), {args.images} fake 224 px JPEGs, "
                f"batch {args.batch}, {'bf16 autocast' if device.type == 'cuda' and not args.no_amp else 'fp32'}, "
                f"{workers} DataLoader decoding workers; images_per_s includes waiting for data, adapt_images_per_s does not",
        "command": "python bench/tta_gpu.py " + " ".join(sys.argv[1:]),
        "tree_s": round(tree_s, 1),
        "rows": rows,
        "torchvision_checks": torchvision_checks(),
        "total_s": round(time.perf_counter() - t_start, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps({k: figures[k] for k in ("torchvision_checks", "total_s")}), flush=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
