"""Staging, on a login node: fetch what a card's scale needs, check it, convert it once, and lay
it out under the data root, so that compute nodes run offline.

    python -m entrobench.stage imagenet_c resnet50_gn_timm --data-root /shared/data
    python -m entrobench.stage --list                      # every known item: URL, checksum, target
    outcomes = stage(needs(["imagenet_c"], [("resnet50", "gn")]), data_root)

Each item of `CATALOG` is a data set or a set of source weights: its downloads (URL, the checksum
its publisher pins), where it lands, and what "staged" means (`ready`: paths that must all exist).
A download goes to a .part file first and resumes from it (HTTP Range) when run again; it is
checked before it is used, and a mismatch deletes it and says so in one line. Archives are
unpacked (tar, no paths outside the target); published weights, pickles as released, are
converted once to safetensors (entrobench.models.zoo.convert_checkpoint). What needs an account
(the ImageNet validation set) is reported with the exact folder to place it in.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from entrobench.data.corruption_types import CORRUPTIONS, SEVERITIES
from entrobench.data.download import CIFAR10_C_BYTES, CIFAR10_C_MD5, CIFAR10_C_URL
from entrobench.data.sources import CIFAR10_C_DIR, CIFAR10_DIR, CIFAR10_TRAIN_BATCHES, IMAGENET_C_DIR, IMAGENET_VAL_DIR, MNIST_DIR, MNIST_FILES
from entrobench.models import zoo

DOWNLOADS = "_downloads"  # under the data root: archives and pickles while they are checked and used
CHUNK = 1 << 20


class StageError(RuntimeError):
    """A download, check, unpacking or conversion failed; the message is one line that says what to do."""


@dataclass(frozen=True)
class Download:
    url: str
    save_as: str  # relative to the data root
    checksum: str = ""  # "sha256:<hex>", "sha256-prefix:<hex>", "md5:<hex>", or "" (none published)
    size: int | None = None  # bytes, where published


@dataclass(frozen=True)
class Item:
    name: str
    what: str  # one line: what it is and who publishes it
    ready: tuple[str, ...]  # paths under the data root that, all present, mean it is staged
    downloads: tuple[Download, ...] = ()
    unpack_to: str | None = None  # downloads are tar archives, unpacked into this folder ("" = the data root)
    lift: tuple[str, ...] = ()  # folders expected right under unpack_to: moved up if an archive nests them one level
    weights: str | None = None  # entrobench.models.zoo.PUBLISHED name: the one download is converted to safetensors
    manual: str = ""  # set when it cannot be downloaded (an account): how to get it

    @property
    def home(self) -> str:
        """Where it lives under the data root: the weights file, or the folder its paths share."""
        return self.ready[0] if self.weights or len(self.ready) == 1 else os.path.commonpath(self.ready)


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str  # "ready" (was there), "staged" (fetched now), "manual" (place it by hand), "failed"
    path: Path  # where it is, or must be placed
    message: str


def weights_item(weights: zoo.PublishedWeights) -> Item:
    return Item(
        name=weights.name,
        what=f"{weights.arch}/{weights.norm} source weights: {weights.source}",
        ready=(weights.path, str(Path(weights.path).with_suffix(".json"))),
        downloads=(Download(weights.url, f"{DOWNLOADS}/{weights.download}", weights.checksum),),
        weights=weights.name,
    )


IMAGENET_C_TARS = {  # Zenodo record 2235448; the MD5s torch-uncertainty pins for it (not checked here); extra.tar (4 extra corruptions) is unused
    "blur": "2d8e81fdd8e07fef67b9334fa635e45c",
    "digital": "89157860d7b10d5797849337ca2e5c03",
    "noise": "e80562d7f6c3f8834afb1ecf27252745",
    "weather": "33ffea4db4d93fe4a428c40a6ce0c25d",
}

CATALOG: dict[str, Item] = {
    item.name: item
    for item in (
        Item(
            "imagenet_c",
            "ImageNet-C (Hendrycks & Dietterich 2019): 15 corruptions x 5 severities of the 50,000 validation images, "
            "224 x 224 JPEGs, about 66 GB in 4 archives",
            tuple(f"{IMAGENET_C_DIR}/{c}/{s}" for c in CORRUPTIONS for s in SEVERITIES),
            tuple(Download(f"https://zenodo.org/record/2235448/files/{t}.tar", f"{DOWNLOADS}/ImageNet-C-{t}.tar", f"md5:{m}")
                  for t, m in IMAGENET_C_TARS.items()),
            unpack_to=IMAGENET_C_DIR,
            lift=tuple(CORRUPTIONS),
        ),
        Item(
            "imagenet_val",
            "ImageNet (ILSVRC2012) validation set, the clean images EATA's Fisher information is computed on",
            (str(IMAGENET_VAL_DIR),),
            manual=(
                "needs an ImageNet account: download ILSVRC2012_img_val.tar (6.3 GB, MD5 29b22e2961454d5413ddabcf34fc5622) "
                "from image-net.org and sort its 50,000 JPEGs into one folder per class (wnid, e.g. with the devkit's "
                "labels), so that {path}/<wnid>/ILSVRC2012_val_*.JPEG holds 1000 folders of 50"
            ),
        ),
        Item(
            "cifar10_c",
            "CIFAR-10-C (Hendrycks & Dietterich 2019), Zenodo record 2535967: 15 corruptions x 5 severities as .npy",
            tuple(f"{CIFAR10_C_DIR}/{c}.npy" for c in (*CORRUPTIONS, "labels")),
            (Download(CIFAR10_C_URL, f"{DOWNLOADS}/CIFAR-10-C.tar", f"md5:{CIFAR10_C_MD5}", CIFAR10_C_BYTES),),
            unpack_to="",
        ),
        Item(
            "cifar10",
            "CIFAR-10, python release (Krizhevsky 2009): the clean images (EATA's Fisher)",
            tuple(f"{CIFAR10_DIR}/{b}" for b in (*CIFAR10_TRAIN_BATCHES, "test_batch")),
            (Download("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", f"{DOWNLOADS}/cifar-10-python.tar.gz",
                      "md5:c58f30108f718f92721af3b95e74349a", 170_498_071),),
            unpack_to="",
        ),
        Item(
            "mnist_test",
            "MNIST test set (LeCun et al.), the smoke scale's images; MD5s as torchvision pins them",
            tuple(f"{MNIST_DIR}/{f}" for f in MNIST_FILES),
            tuple(Download(f"https://ossci-datasets.s3.amazonaws.com/mnist/{f}", f"{MNIST_DIR}/{f}", f"md5:{md5}")
                  for f, md5 in zip(MNIST_FILES, ("9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"))),
        ),
        *(weights_item(w) for w in zoo.PUBLISHED.values()),
    )
}

# What a TTA data set reads under the data root: its test stream and its clean images
DATASET_ITEMS = {
    "imagenet_c": ("imagenet_c", "imagenet_val"),
    "cifar10_c": ("cifar10_c", "cifar10"),
    "mnist_c": ("mnist_test",),
    "digits_c": (),
}


def needs(datasets: Iterable[str], models: Iterable[tuple[str, str]] = ()) -> list[str]:
    """Catalog names for some data sets and (architecture, norm) source models with published
    weights, in order, without repeats. A model trained here needs nothing: leave it out."""
    names = [n for d in datasets for n in DATASET_ITEMS[d]] + [zoo.published_weights(a, n).name for a, n in models]
    return list(dict.fromkeys(names))


def stage(
    items: Iterable[Item | str],
    data_root: Path,
    *,
    keep_downloads: bool = False,
    timeout_s: float = 60.0,
    log: Callable[[str], None] = print,
) -> list[Outcome]:
    """Stage each item under data_root; one failure does not stop the others. Returns what became of each."""
    data_root = Path(data_root)
    outcomes = []
    for item in items:
        item = item if isinstance(item, Item) else _lookup(item)
        where = data_root / item.home
        if all((data_root / p).exists() for p in item.ready):
            outcomes.append(Outcome(item.name, "ready", where, f"{item.name}: already at {where}"))
        elif item.manual:
            outcomes.append(Outcome(item.name, "manual", where, f"{item.name}: {item.manual.format(path=where)}"))
        else:
            try:
                _fetch_item(item, data_root, keep_downloads, timeout_s, log)
                outcomes.append(Outcome(item.name, "staged", where, f"{item.name}: staged at {where}"))
            except (StageError, zoo.WeightsError, OSError, tarfile.TarError) as err:
                outcomes.append(Outcome(item.name, "failed", where, f"{item.name}: {err}"))
        log(outcomes[-1].message)
    return outcomes


def _lookup(name: str) -> Item:
    if name not in CATALOG:
        raise StageError(f"unknown item {name!r} (expected one of: {', '.join(CATALOG)})")
    return CATALOG[name]


def _fetch_item(item: Item, data_root: Path, keep_downloads: bool, timeout_s: float, log) -> None:
    fetched = [(d, fetch(d, data_root / d.save_as, timeout_s=timeout_s, log=log)) for d in item.downloads]
    if item.weights is not None:
        (download, sha256), = fetched
        log(f"converting {download.save_as} to safetensors")
        zoo.convert_checkpoint(data_root / download.save_as, zoo.PUBLISHED[item.weights], data_root, sha256)
    elif item.unpack_to is not None:
        target = data_root / item.unpack_to
        for download, _ in fetched:
            log(f"unpacking {download.save_as} into {target}")
            unpack(data_root / download.save_as, target)
        _lift(target, item.lift)
    missing = [p for p in item.ready if not (data_root / p).exists()]
    if missing:
        raise StageError(f"fetched, but {len(missing)} expected paths are missing under {data_root}, e.g. {missing[0]}: not the published files?")
    if not keep_downloads and (item.weights is not None or item.unpack_to is not None):
        for download in item.downloads:
            (data_root / download.save_as).unlink(missing_ok=True)


def fetch(download: Download, dest: Path, *, timeout_s: float = 60.0, log: Callable[[str], None] = print) -> str:
    """Download to dest (through dest.part, resumed when it is there), check it, and return its
    sha256. A file already at dest is checked, not downloaded again."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.is_file():
        _download(download, dest, timeout_s, log)
    with open(dest, "rb") as f:
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    problem = checksum_problem(download.checksum, dest, sha256)
    if problem:
        dest.unlink()
        raise StageError(f"{download.url}: {problem}; the file was deleted, run again to download it anew")
    log(f"checked {dest} ({download.checksum or 'no published checksum'}; sha256 {sha256})")
    return sha256


def checksum_problem(checksum: str, path: Path, sha256: str) -> str:
    """'' when the file matches its pinned checksum (or none is pinned), else what differs."""
    if not checksum:
        return ""
    kind, _, want = checksum.partition(":")
    if kind == "sha256":
        got = sha256
        ok = got == want.lower()
    elif kind == "sha256-prefix":
        got = sha256
        ok = got.startswith(want.lower())
    elif kind == "md5":
        with open(path, "rb") as f:
            got = hashlib.file_digest(f, "md5").hexdigest()
        ok = got == want.lower()
    else:
        raise StageError(f"unknown checksum kind {kind!r} in {checksum!r} (expected sha256:, sha256-prefix: or md5:)")
    return "" if ok else f"{kind} {got} does not match the pinned {want}"


def _download(download: Download, dest: Path, timeout_s: float, log) -> None:
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(download.url, headers={"Range": f"bytes={have}-", "User-Agent": "entrobench-stage"} if have else {"User-Agent": "entrobench-stage"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except (urllib.error.URLError, OSError) as err:
        raise StageError(f"could not download {download.url} ({getattr(err, 'reason', err)}); fetch it by hand to {dest} and run again") from err
    with response:
        if (response.headers.get("Content-Type") or "").startswith("text/html"):
            raise StageError(f"{download.url} answered with a web page, not the file (a sign-in or confirmation page?); fetch it by hand to {dest} and run again")
        resumed = bool(have) and getattr(response, "status", None) == 206
        have = have if resumed else 0  # a server that ignores Range sends the whole file: start over
        log(f"downloading {download.url}" + (f" (resuming at {have / 1e6:.0f} MB)" if resumed else ""))
        done, last = have, time.monotonic()
        try:
            with open(part, "ab" if resumed else "wb") as out:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if time.monotonic() - last >= 5.0:
                        last = time.monotonic()
                        log(f"  {done / 1e6:,.0f} MB" + (f" of {download.size / 1e6:,.0f} MB" if download.size else ""))
        except (urllib.error.URLError, OSError) as err:
            raise StageError(f"download of {download.url} broke off at {done / 1e6:.0f} MB ({err}); run again to resume") from err
    if download.size is not None and done != download.size:
        if done > download.size:
            part.unlink()
        raise StageError(f"{download.url}: got {done} bytes, the publisher lists {download.size}; run again to " + ("download it anew" if done > download.size else "resume"))
    part.replace(dest)


def unpack(archive: Path, target: Path) -> None:
    """Unpack a tar archive into target; members that would land outside it, links out and devices are refused."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    except tarfile.TarError as err:
        raise StageError(f"{archive}: not an archive that unpacks safely ({err})") from err


def _lift(target: Path, names: tuple[str, ...]) -> None:
    """Move <target>/<top>/<name> up to <target>/<name> for the names an archive nested one level down."""
    for name in names:
        if (target / name).exists():
            continue
        nested = [p for p in target.glob(f"*/{name}") if p.is_dir()]
        if len(nested) == 1:
            shutil.move(str(nested[0]), str(target / name))
    for folder in [p for p in target.iterdir() if p.is_dir() and p.name not in names]:
        if not any(folder.iterdir()):
            folder.rmdir()


def main(argv: list[str] | None = None) -> int:
    from entrobench.data.sources import DATA_ROOT_ENV, default_data_root

    parser = argparse.ArgumentParser(prog="python -m entrobench.stage", description=__doc__.splitlines()[0])
    parser.add_argument("items", nargs="*", help=f"what to stage: {', '.join(CATALOG)}")
    parser.add_argument("--data-root", type=Path, default=None, help=f"default: ${DATA_ROOT_ENV}, else ../shared/data")
    parser.add_argument("--keep-downloads", action="store_true", help=f"keep archives and pickles in <data root>/{DOWNLOADS}")
    parser.add_argument("--list", action="store_true", help="print every known item: what, URL, checksum, target")
    args = parser.parse_args(argv)
    if args.list:
        for item in CATALOG.values():
            print(f"{item.name}: {item.what}\n  -> <data root>/{item.home}")
            for d in item.downloads:
                print(f"  {d.url}\n    {d.checksum or 'no published checksum'}")
            if item.manual:
                print(f"  {item.manual.format(path='<data root>/' + item.home)}")
        return 0
    root = args.data_root or default_data_root()
    if root is None:
        parser.error(f"no data root: pass --data-root DIR or set {DATA_ROOT_ENV}")
    try:
        outcomes = stage(args.items, root, keep_downloads=args.keep_downloads)
    except StageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0 if all(o.status in ("ready", "staged") for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
