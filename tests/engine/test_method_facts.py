"""Cards load without importing their methods (and so torch) once the methods' answers are kept
(entrobench/method_facts.py); an edited method, or a card's check that fails, is never answered
from the cache."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

LOAD_CARDS = """
import json, sys
from entrobench.card import load_cards
from entrobench.cells import cell_config, expand
from entrobench.hashing import content_hash
cards = load_cards(sys.argv[1])
paths = sorted(f"{c.record_path()} {content_hash(cell_config(card.scale(s), c))}"
               for card in cards.values() for s in card.spec.scales for c in expand(card.scale(s)))
print(json.dumps({"torch": "torch" in sys.modules, "paths": paths}))
"""

PARAMS = """
import json, sys
from entrobench import method_facts
from entrobench.family import activate_plugins
activate_plugins()
print(json.dumps(method_facts.params("factsfam/scaled", {})))
"""


def python(code: str, *args: str, env: dict) -> str:
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_cards_load_without_torch_once_kept(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    first = json.loads(python(LOAD_CARDS, str(REPO / "configs"), env=env))
    again = json.loads(python(LOAD_CARDS, str(REPO / "configs"), env=env))
    assert first["torch"], "the first load imports the methods (this test's premise)"
    assert not again["torch"]
    assert again["paths"] == first["paths"] and len(first["paths"]) > 100


def test_an_edited_method_is_imported_again(tmp_path):
    folder = tmp_path / "plugin" / "methods" / "factsfam"
    folder.mkdir(parents=True)
    method = folder / "scaled.py"
    source = ("from dataclasses import dataclass\nfrom methods.registry import register\n\n@register('factsfam/scaled')\n"
              "class Scaled:\n    @dataclass(frozen=True)\n    class Params:\n        factor: float = {}\n")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "ENTROBENCH_PLUGINS": str(tmp_path / "plugin")}
    method.write_text(source.format(1.5))
    assert json.loads(python(PARAMS, env=env)) == {"factor": 1.5}
    assert json.loads(python(PARAMS, env=env)) == {"factor": 1.5}
    method.write_text(source.format(2.25))
    os.utime(method, ns=(method.stat().st_atime_ns, method.stat().st_mtime_ns + 10**9))  # a later edit, even within the clock's tick
    assert json.loads(python(PARAMS, env=env)) == {"factor": 2.25}


def test_a_card_that_fails_its_check_fails_every_time(tmp_path):
    card = (REPO / "configs" / "pinn" / "causal_wang2022.yaml").read_text()
    configs = tmp_path / "configs" / "pinn"
    configs.mkdir(parents=True)
    (configs / "bad.yaml").write_text(card.replace("- {name: causal", "- {name: causal, params: {no_such_param: 1}", 1))
    assert "no_such_param" in (configs / "bad.yaml").read_text()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "entrobench", "check", str(configs / "bad.yaml"), "--configs", str(tmp_path / "configs")],
                              cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode != 0 and "no_such_param: unknown key" in proc.stderr, proc.stderr[-2000:]


def test_a_cache_in_another_layout_is_rebuilt(tmp_path):
    kept = tmp_path / "entrobench" / "method-facts.json"
    kept.parent.mkdir(parents=True)
    for layout in ("[1, 2]", '{"pinn/causal ' + str(REPO / "methods" / "pinn") + '": [3]}', "{not json"):
        kept.write_text(layout)
        out = json.loads(python(LOAD_CARDS, str(REPO / "configs" / "pinn"), env={"XDG_CACHE_HOME": str(tmp_path)}))
        assert len(out["paths"]) > 10
