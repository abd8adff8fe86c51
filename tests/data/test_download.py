"""The CIFAR-10-C fetcher, run against a small local archive through a file:// URL (no network)."""
import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pytest

from entrobench.data.corruptions import CORRUPTIONS
from entrobench.data.download import DownloadError, fetch_cifar10_c, main
from entrobench.data.sources import load_corrupted


def _fake_archive(tmp_path: Path) -> tuple[Path, str, int]:
    src = tmp_path / "src" / "CIFAR-10-C"
    src.mkdir(parents=True)
    for name in CORRUPTIONS:
        np.save(src / f"{name}.npy", np.full((5 * 2, 32, 32, 3), CORRUPTIONS.index(name), dtype=np.uint8))
    np.save(src / "labels.npy", np.tile(np.array([3, 7], dtype=np.uint8), 5))
    archive = tmp_path / "CIFAR-10-C.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(src, arcname="CIFAR-10-C")
    data = archive.read_bytes()
    return archive, hashlib.md5(data).hexdigest(), len(data)


def test_fetch_downloads_checks_and_unpacks(tmp_path):
    archive, md5, size = _fake_archive(tmp_path)
    root = tmp_path / "root"
    folder = fetch_cifar10_c(root, url=archive.as_uri(), md5=md5, size=size, log=lambda *_: None)
    assert folder == root / "CIFAR-10-C"
    assert not (root / "CIFAR-10-C.tar").exists()  # removed after unpacking unless keep_archive
    x, y = load_corrupted("cifar10_c", root, "fog", 2)
    assert x.shape == (2, 3, 32, 32) and y.tolist() == [3, 7]


def test_fetch_refuses_a_file_with_the_wrong_md5(tmp_path):
    archive, _, size = _fake_archive(tmp_path)
    root = tmp_path / "root"
    with pytest.raises(DownloadError, match="does not match the published"):
        fetch_cifar10_c(root, url=archive.as_uri(), md5="0" * 32, size=size, log=lambda *_: None)
    assert not list(root.glob("*.part"))


def test_fetch_when_offline_says_so(tmp_path):
    with pytest.raises(DownloadError, match=r"could not download .* Offline\?"):
        fetch_cifar10_c(tmp_path, url=(tmp_path / "nowhere.tar").as_uri(), log=lambda *_: None)


def test_fetch_and_cli_do_nothing_when_the_files_are_there(tmp_path, capsys):
    folder = tmp_path / "CIFAR-10-C"
    folder.mkdir()
    for name in (*CORRUPTIONS, "labels"):
        (folder / f"{name}.npy").touch()
    assert fetch_cifar10_c(tmp_path, url="http://invalid.invalid/x.tar", log=lambda *_: None) == folder
    assert main(["cifar10_c", "--data-root", str(tmp_path)]) == 0
    assert "already at" in capsys.readouterr().out
