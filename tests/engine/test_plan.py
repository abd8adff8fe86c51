"""The cost plan: per card and scale, jobs, requested GPUs and hours, and GPU-hour estimates
marked as such, from hand-made job lists whose figures are computed by hand here."""
import pytest

from entrobench.plan import CostModel, Job, Resources, Work, plan, render

GPU_CELL = Resources(gpu=1, runtime=240, mem_mb=32000, cpus=8)
IMAGENET_C = Work(images=15 * 50_000, arch="resnet50", method="eata")  # 15 corruptions x 50,000 images
COST = CostModel({("resnet50", "h100"): 2500.0, ("resnet50", "h100", "sar"): 1250.0}, gpu_model="h100")


def _jobs():
    cells = [Job("eata_niu2022", "full", "cell", GPU_CELL, IMAGENET_C) for _ in range(3)]
    build = Job("eata_niu2022", "full", "build", Resources(cpus=2, runtime=30))
    sar = Job("sar_niu2023", "full", "cell", Resources(gpu=2, runtime=60, cpus=4), Work(100_000, "resnet50", "sar"))
    skipped = [Job("clipcov_cui2025", "full", "skipped") for _ in range(22)]  # login node: asks for nothing
    return cells + [build, sar] + skipped


def test_requested_and_estimated_gpu_hours_by_hand():
    eata, sar, rlvr = plan(_jobs(), COST)
    assert eata.jobs == {"cell": 3, "build": 1} and eata.gpus == 3
    assert eata.gpu_hours == pytest.approx(3 * 1 * 240 / 60)  # 12 GPU-h asked for
    assert eata.cpu_hours == pytest.approx(3 * 8 * 4 + 2 * 0.5)  # 97 CPU-h of walltime
    # 750,000 images at 2500 images/s = 300 s per cell: 3 x 300 / 3600 = 0.25 GPU-h
    assert eata.estimate_gpu_hours == pytest.approx(0.25) and (eata.estimated_jobs, eata.gpu_jobs) == (3, 3)
    # the method's own rate wins: 100,000 images at 1250 images/s on 2 GPUs = 2 x 80 s
    assert sar.gpu_hours == pytest.approx(2.0) and sar.estimate_gpu_hours == pytest.approx(160 / 3600)
    assert rlvr.jobs == {"skipped": 22} and rlvr.gpus == 0 and rlvr.gpu_hours == 0 and rlvr.estimate_gpu_hours is None


def test_a_job_without_a_measured_rate_is_left_out_of_the_estimate_and_counted():
    jobs = [Job("c", "full", "cell", GPU_CELL, IMAGENET_C),
            Job("c", "full", "cell", GPU_CELL, Work(1000, "vit_b16")),  # no throughput measured
            Job("c", "full", "cell", GPU_CELL)]  # no work given
    (row,) = plan(jobs, COST)
    assert row.estimated_jobs == 1 and row.gpu_jobs == 3 and row.estimate_gpu_hours == pytest.approx(300 / 3600)
    assert "~0.08 (1 of 3 jobs)" in render([row])
    (no_model,) = plan(jobs)
    assert no_model.estimate_gpu_hours is None and "requested only (no cost model)" in render([no_model])


def test_a_job_that_names_its_gpu_model_uses_that_models_rate():
    cost = CostModel({("resnet50", "h100"): 2500.0, ("resnet50", "a100"): 1250.0}, gpu_model="h100")
    (row,) = plan([Job("c", "full", "cell", Resources(gpu=1, runtime=60, gpu_model="a100"), Work(4500, "resnet50"))], cost)
    assert row.estimate_gpu_hours == pytest.approx(4500 / 1250 / 3600)


def test_render_prints_a_row_per_card_and_scale_a_total_and_marks_estimates():
    text = render(plan(_jobs(), COST))
    lines = text.splitlines()
    assert lines[0].split() == ["card", "scale", "jobs", "GPUs", "GPU-h", "requested", "GPU-h", "estimate", "CPU-h", "requested"]
    eata = next(line for line in lines if line.startswith("eata_niu2022"))
    assert eata.split() == ["eata_niu2022", "full", "4", "(3", "cell,", "1", "build)", "3", "12.0", "~0.25", "97.0"]
    rlvr = next(line for line in lines if line.startswith("clipcov_cui2025"))
    assert rlvr.split() == ["clipcov_cui2025", "full", "22", "(22", "skipped)", "0", "0.0", "-", "0.0"]
    total = next(line for line in lines if line.startswith("total"))
    assert total.split() == ["total", "27", "5", "14.0", "~0.29", "101.0"]  # 0.25 + 0.044 GPU-h; 97 + 2 x 2 CPU-h
    assert lines[-1].startswith("~ = estimate:")


def test_resources_come_from_a_cards_mapping_ignoring_what_is_not_a_cost():
    r = Resources.of({"mem_mb": 32000, "runtime": 240, "gpu": 1, "slurm_partition": "gpu", "cpus": 8})
    assert r == Resources(gpu=1, runtime=240, mem_mb=32000, cpus=8)
