"""The cost plan and staging of the real cards, through the command line: `plan` prints figures for
every full card; cells skipped by design (RLVR's math setting on our own trainer) request nothing
and write their reason without a build; `stage` names a checksum mismatch in one line."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import yaml

from entrobench import plan, stage
from entrobench.card import load_card, load_cards
from entrobench.cli import main

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
FULL = sorted(c.id for c in load_cards(CONFIGS).values() if "full" in c.spec.scales)


def _row(text: str, card: str) -> list[str]:
    return next(line for line in text.splitlines() if line.startswith(card + " ")).split()


def _one_rate(tmp_path, per_s: float) -> Path:
    """The cards with one ResNet-50 rate for every method, so the estimate can be worked by hand."""
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    defaults = configs / "_defaults" / "tta_corruption.yaml"
    data = yaml.safe_load(defaults.read_text())
    data["cost"]["throughput"] = [{"arch": "resnet50", "per_s": per_s, "source": "a test"}]
    defaults.write_text(yaml.safe_dump(data))
    return configs


def test_plan_prints_requested_and_estimated_gpu_hours_for_every_full_card(capsys, tmp_path):
    assert {"eata_niu2022", "sar_niu2023", "deyo_lee2024", "tent_wang2021", "clipcov_cui2025", "top_h_potraghloo2025"} <= set(FULL)
    configs = _one_rate(tmp_path, 2160.0)
    order = ["eata_niu2022", *(c for c in FULL if c != "eata_niu2022")]  # cells shared by cards count for the first
    assert main(["plan", *order, "--scale", "full", "--configs", str(configs), "--results", "/nonexistent"]) == 0
    text = capsys.readouterr().out
    for card in FULL:
        row = _row(text, card)
        assert row[1] == "full" and int(row[2]) > 0, row
    # EATA: 30 cells of one GPU for 240 min = 120 GPU-h asked (the source build checks staged weights: no GPU)
    eata = _row(text, "eata_niu2022")
    assert eata[2:6] == ["32", "(30", "cell,", "2"] and eata[7] == "30" and eata[8] == "120.0", eata
    # 30 cells x 15 x 50,000 images at 2160 images/s
    assert eata[9] == f"~{30 * 15 * 50_000 / 2160 / 3600:,.2f}", eata
    rlvr = _row(text, "clipcov_cui2025")  # the paper's recipe through the engine: 21 cells of 8 GPUs for 48 h
    assert rlvr[2:5] == ["21", "(21", "cell)"] and rlvr[5:7] == ["168", f"{21 * 8 * 48:,.1f}"], rlvr
    assert "requested only (no cost model)" in " ".join(_row(text, "top_h_potraghloo2025"))
    assert text.splitlines()[-1].startswith("~ = estimate:")


def test_a_table_target_and_a_card_file_plan_the_same(capsys):
    main(["plan", "results/sar_niu2023/full/table.md", "--configs", str(CONFIGS)])
    by_target = capsys.readouterr().out
    main(["plan", str(CONFIGS / "tta" / "sar_niu2023.yaml"), "--scale", "full", "--configs", str(CONFIGS)])
    assert capsys.readouterr().out == by_target


def _on_our_trainer(tmp_path) -> Path:
    """The RLVR card whose full scale asks our own trainer for the character addition task with a
    pretrained chat model: a combination no machine can run (the task speaks its own vocabulary)."""
    configs = tmp_path / "configs"
    (configs / "rlvr").mkdir(parents=True)
    card = yaml.safe_load((CONFIGS / "rlvr" / "clipcov_cui2025.yaml").read_text())
    card["protocol"].update(engine="ours", model="smollm2_135m_instruct")
    card["datasets"] = ["addition"]
    (configs / "rlvr" / "clipcov_cui2025.yaml").write_text(yaml.safe_dump(card))
    return configs


def test_cells_skipped_by_design_ask_for_nothing_and_need_no_build(tmp_path):
    configs = _on_our_trainer(tmp_path)
    full = load_card(configs / "rlvr" / "clipcov_cui2025.yaml", configs).scale("full")
    jobs = plan.card_jobs([full], "/nonexistent")
    assert {j.kind for j in jobs} == {"skipped"} and all(j.resources == plan.Resources() for j in jobs)
    smoke = load_card(CONFIGS / "rlvr" / "clipcov_cui2025.yaml", CONFIGS).scale("smoke")
    kinds = [j.kind for j in plan.card_jobs([smoke], "/nonexistent")]
    assert "skipped" not in kinds and kinds.count("build") == 1  # the warm-up


def test_a_cell_skipped_by_design_writes_its_reason_without_reading_a_build(tmp_path):
    configs = _on_our_trainer(tmp_path)
    out = tmp_path / "seed0.json"
    assert main(["run-cell", "--card", str(configs / "rlvr" / "clipcov_cui2025.yaml"), "--configs", str(configs), "--scale", "full",
                 "--cell", "addition/g8_t1/grpo/seed0", "--results", str(tmp_path / "results"), "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["status"] == "skipped" and "our own trainer runs 'addition' with the from-scratch decoder" in record["reason"]
    assert not (tmp_path / "results").exists()  # no build was looked for


def test_plan_counts_a_record_already_there_as_done(tmp_path):
    card = load_card(CONFIGS / "tta" / "tent_wang2021.yaml", CONFIGS).scale("full")
    before = plan.card_jobs([card], tmp_path)
    cell = next(j for j in before if j.kind == "cell")
    assert cell.resources == plan.Resources(gpu=1, runtime=240, mem_mb=32000, cpus=8)  # cpus_per_task
    from entrobench.cells import expand

    first = expand(card)[0].record_path(tmp_path)
    first.parent.mkdir(parents=True)
    first.write_text("{}")
    after = plan.card_jobs([card], tmp_path)
    assert [j.kind for j in after].count("done") == 1 and len(after) == len(before)


def test_stage_reports_a_checksum_mismatch_in_one_line(tmp_path, configs, write_card, monkeypatch, capsys):
    published = tmp_path / "resnet50-0676ba61.pth"
    published.write_bytes(b"not the published file")
    weights = stage.CATALOG["resnet50_bn_torchvision_v1"]
    download = dataclasses.replace(weights.downloads[0], url=published.as_uri(), checksum="sha256:" + "0" * 64)
    monkeypatch.setitem(stage.CATALOG, weights.name, dataclasses.replace(weights, downloads=(download,)))
    card = write_card({"datasets": ["digits_c"], "scales": {"full": {"resources": {"gpu": 1}}}})  # weights only: digits need nothing
    assert main(["stage", str(card), "--scale", "full", "--configs", str(configs), "--list"]) == 0
    assert "resnet50_bn_torchvision_v1: resnet50/bn source weights" in capsys.readouterr().out
    assert main(["stage", str(card), "--scale", "full", "--configs", str(configs), "--data-root", str(tmp_path / "data")]) == 1
    out = capsys.readouterr()
    line = next(line for line in out.out.splitlines() if line.startswith("resnet50_bn_torchvision_v1:"))
    assert line == (f"resnet50_bn_torchvision_v1: {published.as_uri()}: sha256 {__import__('hashlib').sha256(published.read_bytes()).hexdigest()} "
                    f"does not match the pinned {'0' * 64}; the file was deleted, run again to download it anew")
    assert "0 of 1 item(s) in place" in out.err


@pytest.mark.parametrize("card", FULL)
def test_full_scale_resources_are_what_the_plan_requests(card):
    """The plan asks for what the DAG's rules ask for: one function makes both requests."""
    scaled = load_card(next(CONFIGS.rglob(f"{card}.yaml")), CONFIGS).scale("full")
    request = plan.job_request(scaled.resources, True, {"slurm_partition": "gpu"})
    assert request["slurm_partition"] == "gpu" and request["slurm_extra"] == "--signal=TERM@120"
    assert request["runtime"] == scaled.resources.get("runtime", plan.JOB_DEFAULTS["runtime"])
    assert yaml.safe_dump(request)  # plain values, as Snakemake's resources take them
