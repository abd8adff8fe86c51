"""Fetch the full-scale benchmarks that are too big to ship: `python -m entrobench.data.download cifar10_c --data-root DIR`.

CIFAR-10-C (Hendrycks & Dietterich, ICLR 2019): Zenodo record 2535967, CIFAR-10-C.tar,
2,918,471,680 bytes, MD5 56bf5dcef84df0e2308c6dcbcbbd8499 (as listed on Zenodo). Unpacks to
<data_root>/CIFAR-10-C/<corruption>.npy + labels.npy, which `sources.load_corrupted` reads.
Never called by the tests' default path (no network here); an interrupted download resumes.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from entrobench.data.corruption_types import CORRUPTIONS
from entrobench.data.sources import CIFAR10_C_DIR, DATA_ROOT_ENV, default_data_root

CIFAR10_C_URL = "https://zenodo.org/record/2535967/files/CIFAR-10-C.tar"
CIFAR10_C_MD5 = "56bf5dcef84df0e2308c6dcbcbbd8499"
CIFAR10_C_BYTES = 2_918_471_680
_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download or its check failed; the message says what to do."""


def fetch_cifar10_c(
    data_root: Path,
    *,
    url: str = CIFAR10_C_URL,
    md5: str = CIFAR10_C_MD5,
    size: int | None = CIFAR10_C_BYTES,
    keep_archive: bool = False,
    timeout_s: float = 60.0,
    log=print,
) -> Path:
    """Download, check and unpack CIFAR-10-C under data_root. Returns <data_root>/CIFAR-10-C.
    Does nothing when all 15 corruption files and labels.npy are already there."""
    data_root = Path(data_root)
    folder = data_root / CIFAR10_C_DIR
    wanted = [folder / f"{c}.npy" for c in CORRUPTIONS] + [folder / "labels.npy"]
    if all(p.is_file() for p in wanted):
        log(f"CIFAR-10-C already at {folder}")
        return folder
    data_root.mkdir(parents=True, exist_ok=True)
    archive = data_root / "CIFAR-10-C.tar"
    if not (archive.is_file() and _md5(archive) == md5):
        _download(url, archive, md5, size, timeout_s, log)
    log(f"unpacking {archive} into {data_root}")
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse absolute paths, links out, devices
            tar.extractall(data_root, filter="data")
        else:
            tar.extractall(data_root)
    missing = [p.name for p in wanted if not p.is_file()]
    if missing:
        raise DownloadError(f"{archive} unpacked, but {folder} lacks {', '.join(missing)}: not the CIFAR-10-C archive?")
    if not keep_archive:
        archive.unlink()
    log(f"CIFAR-10-C ready at {folder}")
    return folder


def _download(url: str, archive: Path, md5: str, size: int | None, timeout_s: float, log) -> None:
    part = archive.with_name(archive.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    digest = hashlib.md5()
    if have:
        digest = _md5_update(digest, part)
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(
            f"could not download {url} ({reason}). Offline? Fetch it by hand into {archive} and run this again."
        ) from err
    with response:
        resumed = have and getattr(response, "status", None) == 206
        if have and not resumed:  # the server ignored the range: start over
            have, digest = 0, hashlib.md5()
        total = _total_bytes(response, have) or size
        log(f"downloading {url}" + (f" (resuming at {have / 1e6:.0f} MB)" if resumed else ""))
        done, t0, last = have, time.monotonic(), 0.0
        try:
            with open(part, "ab" if resumed else "wb") as out:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    now = time.monotonic()
                    if now - last >= 2.0:
                        last = now
                        rate = (done - have) / max(now - t0, 1e-9) / 1e6
                        pct = f"{100 * done / total:5.1f}% " if total else ""
                        log(f"  {pct}{done / 1e6:,.0f} MB at {rate:.1f} MB/s")
        except (urllib.error.URLError, OSError) as err:
            raise DownloadError(f"download of {url} broke off at {done / 1e6:.0f} MB ({err}); run again to resume") from err
    if size is not None and done < size:
        raise DownloadError(f"{part}: got {done} of {size} bytes; run again to resume")
    if size is not None and done > size:
        part.unlink()
        raise DownloadError(f"{url}: got {done} bytes, more than the published {size}; the file was deleted")
    if digest.hexdigest() != md5:
        part.unlink()
        raise DownloadError(f"{url}: MD5 {digest.hexdigest()} does not match the published {md5}; the file was deleted")
    part.replace(archive)
    log(f"checked {archive} (MD5 {md5})")


def _total_bytes(response, have: int) -> int | None:
    length = response.headers.get("Content-Length")
    return have + int(length) if length and length.isdigit() else None


def _md5(path: Path) -> str:
    return _md5_update(hashlib.md5(), path).hexdigest()


def _md5_update(digest, path: Path):
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest


FETCHERS = {"cifar10_c": fetch_cifar10_c}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m entrobench.data.download", description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=sorted(FETCHERS))
    parser.add_argument(
        "--data-root", type=Path, default=None, help=f"where data lives (default: ${DATA_ROOT_ENV}, else ../shared/data)"
    )
    parser.add_argument("--keep-archive", action="store_true", help="keep the downloaded .tar after unpacking")
    args = parser.parse_args(argv)
    root = args.data_root or default_data_root()
    if root is None:
        parser.error(f"no data root: pass --data-root DIR or set {DATA_ROOT_ENV}")
    try:
        FETCHERS[args.dataset](root, keep_archive=args.keep_archive)
    except (DownloadError, OSError) as err:  # OSError: e.g. a read-only data root
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
