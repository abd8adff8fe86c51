"""Peak memory of a TTA cell's data path at 1k and 10k images: streaming vs all in memory.

    python bench/tta_memory.py                       # writes bench/results/tta_memory.json
    python bench/tta_memory.py --sizes 1000 10000 --workers 1 --batch 64

A fake ImageNet-C tree of real JPEGs (bench/fake_imagenet_c.py, 1000 class folders) is read as a
cell reads one domain, each configuration in a fresh process:
- "streaming": the cell's own path (protocols/tta/run.py: open_domain over entrobench.data.images):
  index, stream order, CenterCrop(224) decoded in `workers` DataLoader processes, uint8 until the model;
- "in_memory": the cell's path before streaming, sources.load_corrupted("imagenet_c", ...) (every
  image decoded to float32 at once) and the permuted copy run.py then made of it.
Both feed the same cell-like loop: Tent adapting a small CNN (behind an 8 x 8 average pool, so the
model costs little beside the data) batch by batch. Peak memory is the largest sum of RSS over
the process and its DataLoader workers, sampled every 10 ms (SLURM's default accounting sums
RSS the same way; shared pages of forked workers count once per process, so it is an upper
bound). The figure to read: streaming's peak at 10k over its peak at 1k (target: within 1.2x).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]


class PeakRSS:
    """Largest RSS sum over this process and its children, sampled on a thread."""

    def __init__(self, every_s: float = 0.01):
        import psutil

        self.me, self.every_s, self.peak, self.peak_main = psutil.Process(), every_s, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        while not self._stop.is_set():
            try:
                main = self.me.memory_info().rss
                children = 0
                for child in self.me.children(recursive=True):
                    try:
                        children += child.memory_info().rss
                    except psutil.Error:  # a worker that just ended
                        pass
                self.peak, self.peak_main = max(self.peak, main + children), max(self.peak_main, main)
            except psutil.Error:
                pass
            self._stop.wait(self.every_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _cell_loop(batches) -> tuple[int, int]:
    """Tent on a small CNN behind an 8 x 8 average pool: (images, errors). The cell's shape at little compute."""
    import torch

    from entrobench.models.zoo import build_model
    from methods.tta.tent import Tent

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.AvgPool2d(8), build_model("small_cnn", "bn", 1000, 3))
    method = Tent(model, Tent.Params(), 1000)
    seen = errors = 0
    for x, y in batches:
        preds = method.adapt(x).argmax(1).numpy()
        seen += len(y)
        errors += int((preds != y).sum())
    return seen, errors


def run_one(loader: str, folder: Path, workers: int, batch: int) -> dict:
    """One configuration, in this (fresh) process."""
    import numpy as np
    import torch

    from entrobench.data import sources
    from entrobench.protocols.tta.family import DATASETS, Protocol, Setting
    from entrobench.protocols.tta.run import open_domain

    torch.set_num_threads(1)
    root, corruption, severity = folder.parents[2], folder.parent.name, int(folder.name)
    t0 = time.perf_counter()
    with PeakRSS() as peak:
        if loader == "streaming":
            protocol, setting = Protocol(corruptions=[corruption], severity=severity), Setting("bench", batch_size=batch)
            domain = open_domain({"seed": 0}, protocol, setting, DATASETS["imagenet_c"], root, {}, 0, corruption, sources.IMAGENET_CLASSES)
            seen, _ = _cell_loop(domain.batches(batch, 0, workers, "cpu"))
        else:  # the path before streaming: the whole domain as float32, then the stream's permuted copy
            x, y = sources.load_corrupted("imagenet_c", root, corruption, severity, n=None)
            order = np.random.default_rng([0, 0, 1]).permutation(len(y))
            x, y = np.ascontiguousarray(x[order], dtype=np.float32), y[order]
            seen, _ = _cell_loop((torch.from_numpy(x[i : i + batch]), y[i : i + batch]) for i in range(0, len(y), batch))
    wall = time.perf_counter() - t0
    return {"loader": loader, "images": seen, "workers": workers if loader == "streaming" else None, "batch": batch,
            "peak_rss_mb": round(peak.peak / 2**20, 1), "peak_main_rss_mb": round(peak.peak_main / 2**20, 1),
            "wall_s": round(wall, 2), "images_per_s": round(seen / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--workers", type=int, default=1, help="decoding workers (a 2-CPU job: 1, entrobench.data.images.workers_for)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--tree-dir", type=Path, default=Path("/tmp/entrobench-fake-imagenet-c"))
    parser.add_argument("--in-memory-sizes", type=int, nargs="*", default=None, help="sizes for the loader before streaming (default: --sizes)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "tta_memory.json")
    parser.add_argument("--run", choices=["streaming", "in_memory"], help=argparse.SUPPRESS)  # a child process
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_one(args.run, args.folder, args.workers, args.batch)))
        return

    from fake_imagenet_c import write_fake_imagenet_c

    rows = []
    in_memory = args.sizes if args.in_memory_sizes is None else args.in_memory_sizes
    for n in args.sizes:
        t0 = time.perf_counter()
        folder = write_fake_imagenet_c(args.tree_dir / str(n), n, processes=os.cpu_count() or 1)
        print(f"tree of {n} JPEGs at {folder} ({time.perf_counter() - t0:.0f} s)", flush=True)
        for loader in ["streaming"] + (["in_memory"] if n in in_memory else []):
            cmd = [sys.executable, __file__, "--run", loader, "--folder", str(folder), "--workers", str(args.workers), "--batch", str(args.batch)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            row = {**json.loads(out.stdout.strip().splitlines()[-1]), "jpeg_mb": round(sum(p.stat().st_size for p in folder.rglob("*.JPEG")) / 2**20, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)

    def ratio(loader: str) -> float | None:
        peaks = {r["images"]: r["peak_rss_mb"] for r in rows if r["loader"] == loader}
        lo, hi = min(args.sizes), max(args.sizes)
        return round(peaks[hi] / peaks[lo], 3) if lo in peaks and hi in peaks and lo != hi else None

    import platform

    import torch

    figures = {
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                    "date": time.strftime("%Y-%m-%d %H:%M")},
        "what": "peak RSS (MB, process + DataLoader workers) of one ImageNet-C-shaped domain through Tent on a small CNN, "
                "streaming (the cell's open_domain over entrobench.data.images) vs all in memory (sources.load_corrupted + the permuted copy run.py made before streaming)",
        "command": "python bench/tta_memory.py " + " ".join(sys.argv[1:]),
        "rows": rows,
        "streaming_peak_ratio_largest_over_smallest": ratio("streaming"),
        "in_memory_peak_ratio_largest_over_smallest": ratio("in_memory"),
        "target": "streaming ratio <= 1.2",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
