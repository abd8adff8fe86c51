"""Test-time adaptation protocol: prepare the clean data, obtain the source model, run one cell.

The protocol measures; the method (methods/tta/*) adapts. A cell streams the corrupted test
set through `method.adapt` batch by batch (online: each batch is predicted once, before the
next arrives), resetting the model at every corruption unless the setting is continual.

Released benchmarks stay on disk until a batch needs them (entrobench.data.images): ImageNet-C's
JPEGs are decoded and centre-cropped in DataLoader workers, one per CPU of the job but one, and
CIFAR-10-C's arrays are read row by row from a memory map; memory is bounded by the batch and the
workers, not by the 50,000 images of a corruption. Sets corrupted here are small arrays, kept in
memory as before. The published source weights are read as staged (entrobench.models.zoo).
"""
from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset as ImageDataset

from entrobench import checkpoint
from entrobench.checkpoint import Checkpoint
from entrobench.data import sources
from entrobench.data.declared import load_declared
from entrobench.data.images import PREPROCESSING, ArrayImages, EncodedImages, stream_batches, stream_order, workers_for
from entrobench.data.label_shift import label_shift_indices
from entrobench.data.sources import DataUnavailable, load_clean
from entrobench.family import BuildRun, CellRun
from entrobench.models import zoo
from entrobench.models.zoo import build_model
from entrobench.progress import Progress
from entrobench.protocols.tta.family import DATASETS, Dataset, Protocol, Setting
from entrobench.record import Skip

MAJORITY_WINDOW = 64  # predictions in the trailing window of the per-batch collapse curve
# Steps between checkpoints (a save costs one torch.save of the state; SIGTERM saves at once)
TRAIN_CHECKPOINT_EVERY = 200
ADAPT_CHECKPOINT_EVERY = 100
# the files in each cached build's folder
DATA_FILE, STREAM_FILE, SOURCE_FILE = "data.npz", "stream.npz", "model.pt"
# Online label shift: the class order's seed is this plus the cell's seed, so that seed 0 draws
# SAR's released stream (seed2022_total_100000_ir_500000) and seed 2 DeYO's (seed2024_...)
LABEL_SHIFT_SEED = 2022


# --- prepare data ------------------------------------------------------------------------------


def prepare_data(run: BuildRun) -> dict:
    """Write the clean split to data.npz. A missing data root or file is a skip (its reason)."""
    config = run.config
    dataset = Dataset(**config["declared"]) if "declared" in config else DATASETS[config["dataset"]]
    try:
        if dataset.corrupted_on_disk:  # fail early, here, if the benchmark itself is missing
            sources.check_released(dataset.corrupted_on_disk, run.data_root)
        if dataset.format:
            split = load_declared(dataset, run.data_root, config["n_train"], config["n_test"])
        else:
            split = load_clean(dataset.loader, run.data_root, config["n_train"], config["n_test"])
    except DataUnavailable as err:
        raise Skip(str(err)) from None
    meta = {"dataset": config["dataset"], "n_classes": split.n_classes, "fingerprint": split.fingerprint}
    _save_npz(run.out / DATA_FILE, {"x_train": split.x_train, "y_train": split.y_train, "x_test": split.x_test, "y_test": split.y_test}, meta)
    return meta


def load_prepared(path: Path) -> tuple[dict, dict]:
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        arrays = {k: npz[k] for k in npz.files if k != "meta"}
    return arrays, meta


# --- corrupted streams -------------------------------------------------------------------------


def corrupt_stream(run: BuildRun) -> dict:
    """Corrupt the clean test images once per seed, for every method: one array per corruption."""
    from entrobench.data.corruptions import corrupt  # scipy: paid by this job only, not by every cell

    config = run.config
    arrays, data_meta = load_prepared(run.inputs["data"] / DATA_FILE)
    streams = {}
    for d, corruption in enumerate(config["corruptions"]):
        rng = np.random.default_rng([config["seed"], d])
        streams[corruption] = corrupt(arrays["x_test"], corruption, config["severity"], rng, table=config["corruption_table"])
    meta = {"seed": config["seed"], "fingerprint": data_meta.get("fingerprint", "")}
    _save_npz(run.out / STREAM_FILE, {**streams, "y": arrays["y_test"]}, meta)
    return meta


# --- source model ------------------------------------------------------------------------------


def train_source(run: BuildRun) -> dict:
    """Train (or load) the source model once per dataset, architecture and norm; cached by the DAG."""
    config = run.config
    if config["source_weights"] != "train":
        meta = _load_published_weights(config, run.data_root)
    else:
        arrays, data_meta = load_prepared(run.inputs["data"] / DATA_FILE)
        ckpt = Checkpoint(run.checkpoint_path, TRAIN_CHECKPOINT_EVERY, checkpoint.fingerprint(config, __file__))
        meta = _train(config, arrays, data_meta["n_classes"], run.progress, ckpt)
    torch.save(meta, run.out / SOURCE_FILE)
    return {k: v for k, v in meta.items() if k not in ("state_dict", "train_loss_curve")}


def _train(config: dict, arrays: dict, n_classes: int, progress: Progress, ckpt: Checkpoint) -> dict:
    torch.manual_seed(0)  # one source model shared by all seeds: seeds vary the stream, not the model
    x, y = torch.from_numpy(arrays["x_train"]), torch.from_numpy(arrays["y_train"])
    model = build_model(config["architecture"], config["norm"], n_classes, x.shape[1])
    batch, epochs = config["train_batch_size"], config["train_epochs"]
    steps_per_epoch = -(-len(x) // batch)
    opt = torch.optim.Adam(model.parameters(), lr=config["train_peak_lr"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config["train_peak_lr"], total_steps=epochs * steps_per_epoch)
    losses, order = [], None
    model.train()
    with ckpt:
        saved = ckpt.load()
        if saved is not None:
            model.load_state_dict(saved["model"])
            opt.load_state_dict(saved["optimizer"])
            sched.load_state_dict(saved["scheduler"])
            losses, order = saved["losses"], saved["order"]
        for step in range(ckpt.start, epochs * steps_per_epoch):
            epoch, start = divmod(step, steps_per_epoch)
            if start == 0:
                order = torch.randperm(len(x))
            idx = order[start * batch : (start + 1) * batch]
            loss = F.cross_entropy(model(_random_shift(x[idx], 2)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            ckpt.step(step, lambda: {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "losses": losses, "order": order})
            if start == steps_per_epoch - 1:
                progress.update(epoch + 1, epochs, f"loss {np.mean(losses[-steps_per_epoch:]):.3f}")
    model.eval()
    with torch.no_grad():
        x_test, y_test = torch.from_numpy(arrays["x_test"]), torch.from_numpy(arrays["y_test"])
        preds = torch.cat([model(x_test[i : i + 512]).argmax(1) for i in range(0, len(x_test), 512)])
    clean_error = 100.0 * (preds != y_test).float().mean().item()
    progress.done(f"clean error {clean_error:.2f}%")
    return {
        "state_dict": model.state_dict(),
        "n_classes": n_classes,
        "in_channels": int(x.shape[1]),
        "clean_error_pct": clean_error,
        "train_loss_curve": losses[::10],
    }


def _random_shift(x: torch.Tensor, max_px: int) -> torch.Tensor:
    """Shift each image by up to +-max_px pixels (zero fill): cheap augmentation for digits."""
    padded = F.pad(x, (max_px,) * 4)
    h, w = x.shape[-2:]
    dy, dx = torch.randint(0, 2 * max_px + 1, (2,)).tolist()
    return padded[..., dy : dy + h, dx : dx + w]


def _load_published_weights(config: dict, data_root: Path | None) -> dict:
    """The staged weights, checked against their recorded sha256 and loaded strictly into the
    model the cells build. Not staged here is a skip (the reason says how to stage them); a file
    that fails its check is an error."""
    name = config["source_weights"]
    path = Path(data_root or "") / zoo.PUBLISHED[name].path
    if data_root is None or not path.is_file():
        raise Skip(f"source weights {name} not staged at {path} (run `python -m entrobench stage <card> --scale full` on a node with internet)")
    weights = zoo.PUBLISHED[name]
    if (config["architecture"], config["norm"]) != (weights.arch, weights.norm):
        raise ValueError(f"{name} are {weights.arch}/{weights.norm} weights, the cells build {config['architecture']}/{config['norm']}")
    model = zoo.load_source_model(data_root, name)
    return {"state_dict": model.state_dict(), "n_classes": weights.n_classes, "in_channels": 3, "clean_error_pct": None, "weights": name}


# --- one cell ----------------------------------------------------------------------------------


def run_cell(run: CellRun) -> dict:
    """Stream every corruption through the method. Returns metrics, curves and a data fingerprint.
    With `run.checkpoint_path`, the stream position and everything the method holds are saved
    every ADAPT_CHECKPOINT_EVERY batches and on SIGTERM, and a rerun resumes there."""
    config, inputs, data_root, method_cls, progress = run.config, run.inputs, run.data_root, run.method_cls, run.progress
    protocol, setting = Protocol(**config["protocol"]), Setting(**config["setting"])
    arrays, data_meta = load_prepared(inputs["data"] / DATA_FILE)
    streams, _ = load_prepared(inputs["stream"] / STREAM_FILE) if "stream" in inputs else ({}, {})
    source = torch.load(inputs["source"] / SOURCE_FILE, map_location="cpu", weights_only=True)

    device, workers = _device(), workers_for(run.threads)
    torch.manual_seed(config["seed"])
    model = build_model(protocol.architecture, setting.norm, source["n_classes"], source["in_channels"])
    model.load_state_dict(source["state_dict"])
    model.to(device)
    method = method_cls(model, method_cls.Params(**config["params"]), source["n_classes"])
    method.prepare(torch.from_numpy(arrays["x_train"][: protocol.fisher_samples]).to(device))

    # bf16 needs no loss scaling, unlike fp16: the methods' backward passes run unchanged
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if protocol.amp and device.type == "cuda" else contextlib.nullcontext()
    per_domain, stream, tally = {}, StreamCurves(protocol.curve_every), None
    adapt_s, resets, done = 0.0, 0, (-1, -1)  # done: (domain, batch) of the last batch already streamed
    code = [__file__, *checkpoint.method_code(method_cls)]
    with Checkpoint(run.checkpoint_path, ADAPT_CHECKPOINT_EVERY, checkpoint.fingerprint(config, *code)) as ckpt:
        saved = ckpt.load()
        if saved is not None:  # the method, built afresh above, takes back its model, optimizer and running state
            method.load_state_dict(saved["method"])
            stream.load_state_dict(saved["stream"])
            tally = DomainTally()
            tally.load_state_dict(saved["tally"])
            per_domain, adapt_s, resets, done = saved["per_domain"], saved["adapt_s"], saved["resets"], saved["done"]
        step = ckpt.start
        for d, corruption in enumerate(protocol.corruptions):
            if d < done[0]:
                continue
            domain = open_domain(config, protocol, setting, run.dataset, data_root, streams, d, corruption, source["n_classes"])
            if d > done[0]:
                if not setting.continual:
                    method.reset()
                tally = DomainTally()
            first = done[1] + 1 if d == done[0] else 0  # a resumed domain skips the batches already streamed
            n_batches = -(-len(domain.order) // setting.batch_size)
            for b, (xb, yb) in enumerate(domain.batches(setting.batch_size, first, workers, device), start=first):
                t0 = time.perf_counter()
                with autocast:
                    logits = method.adapt(xb)
                adapt_s += time.perf_counter() - t0
                preds = logits.float().argmax(1).cpu().numpy()
                tally.add(preds, yb, method.last_stats)
                stream.add(preds, yb, method.last_stats)
                resets += int(method.last_stats.get("reset", 0))
                progress.update(b + 1, n_batches, f"{corruption} ({d + 1}/{len(protocol.corruptions)}) err {tally.error_pct():.1f}%")
                ckpt.step(step, lambda: {"method": method.state_dict(), "per_domain": per_domain, "stream": stream.state_dict(), "tally": tally.state_dict(),
                                         "adapt_s": adapt_s, "resets": resets, "done": (d, b)})
                step += 1
            per_domain[corruption] = tally.metrics()
    metrics = {}
    for name in per_domain[protocol.corruptions[0]]:
        values = [per_domain[c][name] for c in protocol.corruptions]
        metrics[name] = float(np.mean(values))
        metrics.update({f"{name}/{c}": float(v) for c, v in zip(protocol.corruptions, values)})
    metrics.update(resets=float(resets), adapt_s=adapt_s)
    progress.done(f"mean error {metrics['error_pct']:.2f}%")
    return {
        "metrics": metrics,
        "curves": stream.curves,
        "data_fingerprint": data_meta.get("fingerprint", ""),
        "device": str(device),
        "source_clean_error_pct": source.get("clean_error_pct"),
    }


class DomainTally:
    """Running sums over one domain's stream, weighted by batch size."""

    def __init__(self):
        self.n, self.errors, self.used, self.backward, self.entropy = 0, 0, 0.0, 0.0, 0.0
        self.preds: list[np.ndarray] = []

    def add(self, preds: np.ndarray, y: np.ndarray, stats: dict) -> None:
        self.n += len(y)
        self.errors += int((preds != y).sum())
        self.used += stats["used_frac"] * len(y)
        # EATA's "#backwards": samples back-propagated, counted once per backward pass
        self.backward += stats["backward_passes"] * stats["used_frac"] * len(y)
        self.entropy += stats["entropy_mean"] * len(y)
        self.preds.append(preds)

    def error_pct(self) -> float:
        return 100.0 * self.errors / max(self.n, 1)

    def state_dict(self) -> dict:  # numbers and tensors: a checkpoint holds no other objects
        return {**vars(self), "preds": [torch.from_numpy(p) for p in self.preds]}

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state, preds=[p.numpy() for p in state["preds"]])

    def metrics(self) -> dict[str, float]:
        preds = np.concatenate(self.preds)
        return {
            "error_pct": self.error_pct(),
            "used_pct": 100.0 * self.used / self.n,
            "backward_per_1k": 1000.0 * self.backward / self.n,
            "majority_frac": float(np.bincount(preds).max() / len(preds)),
            "entropy_mean": self.entropy / self.n,
        }


class StreamCurves:
    """Per-batch curves over the whole stream; the majority-class share over a trailing window
    (a batch of 1 has a majority of 1 by itself)."""

    def __init__(self, every: int):
        self.every, self.batches = every, 0
        self.window: list[int] = []
        self.curves = {k: [] for k in ("entropy_mean", "used_frac", "majority_frac", "error_pct", "backward_passes")}

    def state_dict(self) -> dict:  # numbers and lists of them
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)

    def add(self, preds: np.ndarray, y: np.ndarray, stats: dict) -> None:
        self.window = (self.window + preds.tolist())[-MAJORITY_WINDOW:]
        self.batches += 1
        if (self.batches - 1) % self.every:
            return
        self.curves["entropy_mean"].append(stats["entropy_mean"])
        self.curves["used_frac"].append(stats["used_frac"])
        self.curves["majority_frac"].append(float(np.bincount(self.window).max() / len(self.window)))
        self.curves["error_pct"].append(100.0 * float((preds != y).mean()))
        self.curves["backward_passes"].append(stats["backward_passes"])


@dataclass
class Domain:
    """One corruption's test stream: `order` indexes `images` (a torch Dataset of uint8 images read
    from disk as batches need them, or a float32 (N, C, H, W) array in [0, 1] made here)."""

    images: ImageDataset | np.ndarray
    labels: np.ndarray
    order: np.ndarray

    def batches(self, batch_size: int, first: int, workers: int, device: torch.device) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        """(x float32 on `device`, y int64) in stream order, from batch `first` on."""
        order = self.order[first * batch_size :]
        if isinstance(self.images, ImageDataset):
            yield from stream_batches(self.images, order, batch_size, workers, device)
            return
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            yield torch.from_numpy(np.ascontiguousarray(self.images[idx])).to(device), self.labels[idx]


def open_domain(config: dict, protocol: Protocol, setting: Setting, dataset: Dataset, data_root: Path | None, streams: dict,
                d: int, corruption: str, n_classes: int) -> Domain:
    """The test stream of corruption `corruption` (the d-th). Its images: the first n_test of a
    fixed seed-0 permutation (ImageNet-C: a subset spanning many classes), the first n_test
    (CIFAR-10-C), or all those the seed's corrupted build holds. Its order: a permutation seeded
    by (seed, d), or under `label_shift` the authors' label-shift stream over those images, the
    same for every corruption; cut at `max_samples`."""
    if dataset.corrupted_on_disk:
        try:
            images, labels, subset_seed = _released_domain(dataset.corrupted_on_disk, data_root, corruption, protocol.severity)
        except DataUnavailable as err:
            raise Skip(str(err)) from None
    else:
        images, labels, subset_seed = streams[corruption], streams["y"], None
    n = min(protocol.n_test or len(labels), len(labels))
    if setting.label_shift is None:
        order = stream_order(len(labels), config["seed"], d, n=n, max_samples=setting.max_samples, subset_seed=subset_seed,
                             labels=labels, label_order=setting.label_order)
    else:
        # over the n images in the dataset's own order (the authors' indices are into ImageFolder's)
        subset = np.arange(n) if subset_seed is None or n == len(labels) else np.sort(np.random.default_rng(subset_seed).permutation(len(labels))[:n])
        drawn = label_shift_indices(labels[subset], setting.label_shift, seed=LABEL_SHIFT_SEED + config["seed"], n_classes=n_classes)
        order = subset[drawn][: setting.max_samples or None]
    return Domain(images, np.asarray(labels), order)


def _released_domain(name: str, data_root: Path | None, corruption: str, severity: int) -> tuple[ImageDataset, np.ndarray, int | None]:
    """A released benchmark's images of one corruption and severity, still on disk, their labels,
    and the seed of the permutation whose first n_test a stream takes (None: the first n_test)."""
    if name == "imagenet_c":
        index = sources.imagenet_c_folder(data_root, corruption, severity)
        return EncodedImages(index, PREPROCESSING["imagenet_c"]), index.labels, sources.IMAGENET_C_ORDER_SEED
    images, labels = sources.cifar10_c_block(data_root, corruption, severity)
    return ArrayImages(images, labels), np.asarray(labels, dtype=np.int64), None


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _save_npz(out: Path, arrays: dict, meta: dict) -> None:
    """The build's folder is made in a temporary place and renamed whole (cli.cmd_build)."""
    np.savez(out, meta=np.array(json.dumps(meta)), **arrays)
