"""Staging: downloads from local URLs (file://, and a loopback HTTP server for resuming), checked
against pinned checksums, unpacked or kept, and reported; what needs an account is reported
with the exact path to place it at."""
from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import pytest

from entrobench.stage import CATALOG, DOWNLOADS, Download, Item, StageError, fetch, main, needs, stage

PAYLOAD = bytes(range(256)) * 40  # 10,240 bytes


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_url(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / "published" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.as_uri()


def _plain_item(url: str, checksum: str) -> Item:
    return Item("blob", "a test file", ("blobs/blob.bin",), (Download(url, "blobs/blob.bin", checksum),))


@pytest.mark.parametrize("checksum", [
    f"sha256:{_sha256(PAYLOAD)}",
    f"sha256-prefix:{_sha256(PAYLOAD)[:8]}",
    f"md5:{hashlib.md5(PAYLOAD).hexdigest()}",
    "",
])
def test_a_file_url_is_downloaded_checked_and_then_ready(tmp_path, checksum):
    item = _plain_item(_file_url(tmp_path, "blob.bin", PAYLOAD), checksum)
    root = tmp_path / "data"
    (outcome,) = stage([item], root, log=lambda m: None)
    assert outcome.status == "staged" and outcome.path == root / "blobs" / "blob.bin"
    assert outcome.path.read_bytes() == PAYLOAD and not (root / "blobs" / "blob.bin.part").exists()
    (again,) = stage([item], root, log=lambda m: None)
    assert again.status == "ready" and again.message == f"blob: already at {root / 'blobs' / 'blob.bin'}"


def test_a_checksum_mismatch_is_one_line_and_deletes_the_download(tmp_path):
    url = _file_url(tmp_path, "blob.bin", PAYLOAD)
    wrong = "0" * 64
    (outcome,) = stage([_plain_item(url, f"sha256:{wrong}")], tmp_path / "data", log=lambda m: None)
    assert outcome.status == "failed"
    assert outcome.message == (
        f"blob: {url}: sha256 {_sha256(PAYLOAD)} does not match the pinned {wrong}; "
        f"the file was deleted, run again to download it anew"
    )
    assert "\n" not in outcome.message and not (tmp_path / "data" / "blobs" / "blob.bin").exists()


def test_one_failure_does_not_stop_the_other_items(tmp_path):
    good = _plain_item(_file_url(tmp_path, "blob.bin", PAYLOAD), "")
    missing = Item("gone", "a file that is not there", ("gone.bin",), (Download((tmp_path / "nope.bin").as_uri(), "gone.bin"),))
    outcomes = stage([missing, good], tmp_path / "data", log=lambda m: None)
    assert [o.status for o in outcomes] == ["failed", "staged"]
    assert outcomes[0].message.startswith("gone: could not download file://") and "fetch it by hand to" in outcomes[0].message


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_archives_are_unpacked_nested_folders_lifted_and_the_archive_removed(tmp_path):
    # two archives, as ImageNet-C comes in four; the second nests its folder one level down
    a = _tar({"fog/5/n0/a.JPEG": b"a"})
    b = _tar({"noise/gaussian_noise/5/n0/b.JPEG": b"b"})
    item = Item(
        "set", "two archives", ("Set/fog/5/n0/a.JPEG", "Set/gaussian_noise/5/n0/b.JPEG"),
        (Download(_file_url(tmp_path, "a.tar", a), f"{DOWNLOADS}/a.tar", f"sha256:{_sha256(a)}"),
         Download(_file_url(tmp_path, "b.tar", b), f"{DOWNLOADS}/b.tar", f"md5:{hashlib.md5(b).hexdigest()}")),
        unpack_to="Set", lift=("fog", "gaussian_noise"),
    )
    root = tmp_path / "data"
    (outcome,) = stage([item], root, log=lambda m: None)
    assert outcome.status == "staged", outcome.message
    assert outcome.path == root / "Set"
    assert (root / "Set" / "gaussian_noise" / "5" / "n0" / "b.JPEG").read_bytes() == b"b"
    assert not (root / "Set" / "noise").exists() and not list((root / DOWNLOADS).iterdir())


def test_an_archive_member_outside_the_target_is_refused(tmp_path):
    evil = _tar({"../escape.txt": b"x"})
    item = Item("evil", "a bad archive", ("Set/x",), (Download(_file_url(tmp_path, "e.tar", evil), f"{DOWNLOADS}/e.tar"),), unpack_to="Set")
    (outcome,) = stage([item], tmp_path / "data", log=lambda m: None)
    assert outcome.status == "failed" and "not an archive that unpacks safely" in outcome.message
    assert not (tmp_path / "data" / "escape.txt").exists()


def test_what_needs_an_account_is_reported_with_the_exact_path(tmp_path):
    (outcome,) = stage(["imagenet_val"], tmp_path, log=lambda m: None)
    assert outcome.status == "manual" and outcome.path == tmp_path / "imagenet" / "val"
    assert "needs an ImageNet account" in outcome.message
    assert f"so that {tmp_path / 'imagenet' / 'val'}/<wnid>/ILSVRC2012_val_*.JPEG holds 1000 folders of 50" in outcome.message
    (tmp_path / "imagenet" / "val").mkdir(parents=True)
    assert stage(["imagenet_val"], tmp_path, log=lambda m: None)[0].status == "ready"


class _RangeServer(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at any path, honouring "Range: bytes=N-"; records the ranges asked for."""

    ranges: list[str] = []
    html = False

    def do_GET(self):  # http.server calls it by this name
        asked = self.headers.get("Range")
        type(self).ranges.append(asked)
        start = int(asked.removeprefix("bytes=").rstrip("-")) if asked else 0
        self.send_response(206 if asked else 200)
        self.send_header("Content-Type", "text/html" if self.html else "application/octet-stream")
        self.send_header("Content-Length", str(len(PAYLOAD) - start))
        self.end_headers()
        self.wfile.write(PAYLOAD[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _RangeServer.ranges, _RangeServer.html = [], False
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeServer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/blob.bin"
    httpd.shutdown()
    httpd.server_close()


def test_an_interrupted_download_resumes_from_its_part_file(tmp_path, server):
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(PAYLOAD[:4000])  # what a broken-off run left
    sha = fetch(Download(server, "blob.bin", f"sha256:{_sha256(PAYLOAD)}", size=len(PAYLOAD)), dest, log=lambda m: None)
    assert _RangeServer.ranges == ["bytes=4000-"]
    assert dest.read_bytes() == PAYLOAD and sha == _sha256(PAYLOAD)


def test_a_stale_part_file_is_restarted_when_the_server_ignores_the_range(tmp_path):
    url = _file_url(tmp_path, "blob.bin", PAYLOAD)  # file:// answers with the whole file
    dest = tmp_path / "data" / "blob.bin"
    dest.parent.mkdir()
    dest.with_name("blob.bin.part").write_bytes(b"garbage")
    fetch(Download(url, "blob.bin", f"sha256:{_sha256(PAYLOAD)}"), dest, log=lambda m: None)
    assert dest.read_bytes() == PAYLOAD


def test_a_web_page_instead_of_the_file_is_one_clear_line(tmp_path, server):
    _RangeServer.html = True
    with pytest.raises(StageError, match=r"answered with a web page, not the file \(a sign-in or confirmation page\?\); fetch it by hand to"):
        fetch(Download(server, "blob.bin"), tmp_path / "blob.bin", log=lambda m: None)


def test_a_short_download_keeps_its_part_to_resume(tmp_path):
    url = _file_url(tmp_path, "blob.bin", PAYLOAD)
    dest = tmp_path / "data" / "blob.bin"
    dest.parent.mkdir()
    with pytest.raises(StageError, match=rf"got {len(PAYLOAD)} bytes, the publisher lists 99999; run again to resume"):
        fetch(Download(url, "blob.bin", size=99_999), dest, log=lambda m: None)
    assert dest.with_name("blob.bin.part").stat().st_size == len(PAYLOAD)


def test_needs_maps_data_sets_and_norms_to_catalog_items():
    assert needs(["imagenet_c"], [("resnet50", "gn")]) == ["imagenet_c", "imagenet_val", "resnet50_gn_timm"]
    assert needs(["cifar10_c", "cifar10_c"], [("wrn28_10", "bn")]) == ["cifar10_c", "cifar10", "wrn28_10_robustbench_standard"]
    assert needs(["digits_c"]) == []
    assert all(name in CATALOG for name in needs(["imagenet_c", "cifar10_c", "mnist_c"], [("resnet50", "bn")]))


def test_every_catalog_download_is_pinned_or_says_why_not():
    for item in CATALOG.values():
        assert item.downloads or item.manual, item.name
        for d in item.downloads:
            assert d.url.startswith("https://"), d.url
            assert d.checksum.partition(":")[0] in ("sha256", "sha256-prefix", "md5") or "no checksum" in item.what, item.name


def test_the_command_line_lists_the_catalog_and_exits_non_zero_on_what_is_not_staged(tmp_path, capsys):
    assert main(["--list"]) == 0
    assert "https://download.pytorch.org/models/resnet50-0676ba61.pth" in capsys.readouterr().out
    assert main(["imagenet_val", "--data-root", str(tmp_path)]) == 1
    assert main(["nonsense", "--data-root", str(tmp_path)]) == 2
    assert "unknown item 'nonsense' (expected one of: imagenet_c" in capsys.readouterr().err
