"""One ImageNet-C-shaped cell per TTA method on the GPU: images/s and peak GPU memory; and the
CIFAR-10-C-shaped cell of the Tent card (WRN-28-10).

    python bench/tta_gpu.py                               # GPU: ResNet-50, 2000 images, batch 64; WRN-28-10, 10,000 images, batch 200 (< 3 min on an H100-class GPU)
    python bench/tta_gpu.py --images 64 --arch small      # CPU smoke run of the same code (small CNNs, well under a minute)

A fake ImageNet-C tree of real JPEGs (bench/fake_imagenet_c.py, 1000 class folders) is a data
root: each method streams it through the cell's own data path (protocols/tta/run.py: open_domain,
then Domain.batches: the n_test-of-a-seed-0-permutation subset, CenterCrop(224) decoded in
DataLoader workers, one per CPU but one), into its adapt() on ResNet-50 with random weights, its
head scaled so that samples pass the entropy filters (see _model) (BatchNorm; EATA's Fisher from
`--fisher` images of the same tree under the clean-ImageNet preprocessing), bf16 autocast on CUDA
as the full-scale cards run it. The same for fake CIFAR-10-C arrays (uint8, memory-mapped, as
the release) through WRN-28-10 at batch 200 (Source, BN-adapt, Tent: the Tent card's rows). Per
method: images/s over the whole stream (data included), seconds inside adapt(), and the peak GPU
memory torch allocated. Errors are meaningless here (random weights) and not reported. Writes
bench/results/tta_gpu.json (or --out), with `card_cost`: the figures as entries for the TTA
cards' `cost.throughput` (configs/_defaults/tta_corruption.yaml), which `python -m entrobench plan`
turns into GPU-hour estimates.

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
CIFAR_METHODS = ("source", "bn_adapt", "tent")  # the Tent card's rows (CIFAR-10-C)


LOGIT_SCALE = {"resnet50": 10.0, "small": 30.0, "wrn28_10": 10.0}  # random weights predict near-uniformly: see _model


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
    elif arch == "small_cifar":
        net = model = build_model("small_cnn", "bn", 10, 3)
    elif arch == "wrn28_10":
        net = model = build_model("wrn28_10", "bn", 10, 3)
    else:
        net = model = build_model("resnet50", "bn", 1000, 3)
    with torch.no_grad():
        net.fc.weight.mul_(logit_scale)
    return model.to(device)


def run_method(name: str, arch: str, dataset: str, n: int, batch: int, args, root: Path, device, workers: int, fisher_x) -> dict:
    """One cell-shaped run: the domain as the cell opens it (open_domain), batches as the cell reads them."""
    import numpy as np
    import torch

    from entrobench.protocols.tta.family import DATASETS, Protocol, Setting
    from entrobench.protocols.tta.run import open_domain
    from methods import registry

    n_classes = 1000 if dataset == "imagenet_c" else 10
    cls = registry.get(f"tta/{name}")
    method = cls(_model(arch, device, args.logit_scale or LOGIT_SCALE[arch.removesuffix("_cifar")]), cls.Params(), n_classes)
    method.prepare(fisher_x if dataset == "imagenet_c" else fisher_x[:0])
    protocol, setting = Protocol(corruptions=["gaussian_noise"], severity=5, n_test=n), Setting("bench", batch_size=batch)
    domain = open_domain({"seed": 0}, protocol, setting, DATASETS[dataset], root, {}, 0, "gaussian_noise", n_classes)
    cuda = device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and not args.no_amp else contextlib.nullcontext()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    seen, adapt_s, used, backward, batches, t0 = 0, 0.0, 0.0, 0, 0, time.perf_counter()
    for x, y in domain.batches(batch, 0, workers, device):
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
        "dataset": dataset,
        "arch": arch,
        "batch": batch,
        "images": seen,
        "images_per_s": round(seen / wall, 1),
        "adapt_images_per_s": round(seen / adapt_s, 1),
        "wall_s": round(wall, 2),
        "used_pct": round(100 * used / max(seen, 1), 1),  # samples that entered a loss: near 100 means the full cost was timed
        "backward_per_batch": round(backward / max(batches, 1), 2),
        "peak_gpu_mem_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
    }


def fake_cifar10_c(root: Path, n: int) -> None:
    """CIFAR-10-C's layout with random pixels: <root>/CIFAR-10-C/gaussian_noise.npy (5 x n, 32, 32, 3) and labels.npy."""
    import numpy as np

    folder = root / "CIFAR-10-C"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.save(folder / "gaussian_noise.npy", rng.integers(0, 256, (5 * n, 32, 32, 3), dtype=np.uint8))
    np.save(folder / "labels.npy", np.tile(np.arange(n) % 10, 5).astype(np.uint8))


def card_cost(rows: list[dict], gpu: str, cpus: int) -> list[dict]:
    """The rows as `cost.throughput` entries of the TTA cards (one per architecture, method and batch)."""
    arch = {"resnet50": "resnet50", "wrn28_10": "wrn28_10"}
    return [{"arch": arch[r["arch"]], "method": f"tta/{r['method']}", "batch_size": r["batch"], "gpu_model": gpu, "per_s": r["images_per_s"],
             "source": f"bench/tta_gpu.py on {gpu} with {cpus} CPUs (bench/results/tta_gpu.json)"} for r in rows if r["arch"] in arch]


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
    parser.add_argument("--arch", choices=["resnet50", "small"], default="resnet50", help="small: a small CNN in place of ResNet-50 and WRN-28-10 (CPU smoke run)")
    parser.add_argument("--cifar-images", type=int, default=None, help="CIFAR-10-C-shaped images per method through WRN-28-10 at batch 200 (default 10,000; with --arch small 256; 0: none)")
    parser.add_argument("--fisher", type=int, default=None, help="clean images for EATA's Fisher information (default: 256, at most --images)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--workers", type=int, default=None, help="decoding workers (default: CPUs - 1)")
    parser.add_argument("--logit-scale", type=float, default=None, help="head weight factor (default: 10 for resnet50, 30 for small)")
    parser.add_argument("--no-amp", action="store_true", help="fp32 on CUDA (the cards' full scale uses bf16 autocast)")
    parser.add_argument("--tree-dir", type=Path, default=Path("/tmp/entrobench-fake-imagenet-c-gpu"), help="fake data roots are written under it")
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
    args.cifar_images = (256 if args.arch == "small" else 10_000) if args.cifar_images is None else args.cifar_images
    # the cell reads ImageNet-C trees of 1000 class folders (a partial copy would shift labels)
    n_tree = max(args.images, args.fisher, sources.IMAGENET_CLASSES)
    root = args.tree_dir / str(n_tree)
    folder = write_fake_imagenet_c(root, n_tree, processes=max(cpus, 1))
    if args.cifar_images:
        fake_cifar10_c(root, args.cifar_images)
    tree_s = time.perf_counter() - t_start
    print(f"fake data in {tree_s:.1f} s; device {device}; {workers} decoding workers", flush=True)

    clean = EncodedImages(index_image_folder(folder), PREPROCESSING["imagenet_val"])  # stands in for the clean val set
    fisher_x = torch.cat([x for x, _ in stream_batches(clean, list(range(args.fisher)), args.batch, workers, device)])

    small = args.arch == "small"
    runs = [(m, args.arch, "imagenet_c", args.images, args.batch) for m in args.methods]
    if args.cifar_images:
        runs += [(m, "small_cifar" if small else "wrn28_10", "cifar10_c", args.cifar_images, 200) for m in CIFAR_METHODS]
    rows = []
    for name, arch, dataset, n, batch in runs:
        row = run_method(name, arch, dataset, n, batch, args, root, device, workers, fisher_x)
        rows.append(row)
        print(json.dumps(row), flush=True)

    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    figures = {
        "machine": {
            "host": platform.node(), "cpus": cpus, "python": platform.python_version(), "torch": torch.__version__,
            "device": gpu, "date": time.strftime("%Y-%m-%d %H:%M"),
        },
        "what": f"one ImageNet-C-shaped cell per method: {args.arch} (random weights, BN, scaled head), {args.images} fake 224 px JPEGs, "
                f"batch {args.batch}; {args.cifar_images} CIFAR-10-C-shaped images through {'a small CNN' if small else 'WRN-28-10'} at batch 200; "
                f"{'bf16 autocast' if device.type == 'cuda' and not args.no_amp else 'fp32'}, "
                f"{workers} DataLoader decoding workers; images_per_s includes waiting for data, adapt_images_per_s does not",
        "command": "python bench/tta_gpu.py " + " ".join(sys.argv[1:]),
        "tree_s": round(tree_s, 1),
        "rows": rows,
        # paste into configs/_defaults/tta_corruption.yaml `cost.throughput` (GPU runs only)
        "card_cost": card_cost(rows, gpu, cpus) if device.type == "cuda" else [],
        "torchvision_checks": torchvision_checks(),
        "total_s": round(time.perf_counter() - t_start, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps({k: figures[k] for k in ("torchvision_checks", "total_s")}), flush=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
