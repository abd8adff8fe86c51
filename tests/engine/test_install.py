"""environment.yml and pyproject.toml list the same dependencies; the README opens as promised."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) == wanted, f"differ: {sorted(set(pip) ^ wanted)}"
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python.split("=")[1] == project["requires-python"].removeprefix(">=")


def test_torch_is_pinned_to_the_local_cpu_wheel():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    text = (REPO / "README.md").read_text()
    block = re.search(r"```(?:sh|bash|shell)\n(.*?)```", text, re.S).group(1).strip().splitlines()
    assert len(block) == 2, block
    assert text.index("```") < text.index("\n## ")  # the block comes before any section
    ci = (REPO / ".ci" / "run").read_text()
    assert block[1] in ci
