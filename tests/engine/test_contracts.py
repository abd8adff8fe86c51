"""Import and naming contracts, checked on the source: methods never import the engine,
families never import each other, and the generic engine, the CLI and the DAG never name a
family (a new family costs only its own folder). Each test reads every file it covers."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from entrobench import family as families

REPO = Path(__file__).resolve().parents[2]
FAMILIES = families.names()
# The generic engine: everything in entrobench/ that is not a family, a dataset reader or a model
ENGINE = sorted((REPO / "entrobench").glob("*.py"))
PLUGIN = REPO / "tests" / "plugin"


def imports(path: Path) -> list[str]:
    """Every module a file imports (absolute names; relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path}:{node.lineno}: relative import; write the absolute name")
            found += [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def code_words(path: Path) -> set[str]:
    """Identifiers and string constants of a Python file, docstrings and comments left out."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    words = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.Attribute):
            words.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.update(re.findall(r"[A-Za-z_]+", node.value))
    return words


@pytest.mark.parametrize("path", sorted((REPO / "methods").rglob("*.py")) + sorted((PLUGIN / "methods").rglob("*.py")), ids=str)
def test_methods_never_import_the_engine(path):
    bad = [m for m in imports(path) if m == "entrobench" or m.startswith("entrobench.")]
    assert not bad, f"{path} imports {bad}: methods compute on tensors; the family's protocol measures"


@pytest.mark.parametrize("name", FAMILIES)
def test_families_never_import_each_other(name):
    folder = families.folder(families.load(name))
    others = [f for f in FAMILIES if f != name]
    for path in sorted(folder.rglob("*.py")):
        bad = [m for m in imports(path) if any(m == f"entrobench.protocols.{o}" or m.startswith(f"entrobench.protocols.{o}.") for o in others)]
        assert not bad, f"{path} imports {bad}: shared code belongs in entrobench/ (e.g. entrobench/lm/), not in another family"


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: p.name)
def test_the_engine_names_no_family(path):
    named = code_words(path) & set(FAMILIES)
    assert not named, f"{path} names families {sorted(named)} in code: ask the card's family (entrobench/family.py) instead"


@pytest.mark.parametrize("path", [REPO / "Snakefile", *sorted((REPO / "workflows" / "rules").glob("*.smk"))], ids=lambda p: p.name)
def test_the_dag_names_no_family(path):
    code = [re.sub(r"#.*", "", line) for line in path.read_text().splitlines()]  # comments may give examples
    hits = [line.strip() for line in code if re.search(rf"\b({'|'.join(FAMILIES)})\b", line)]
    assert not hits, f"{path} names a family: {hits}"


def test_the_engine_check_catches_a_family_name(tmp_path):
    """The two checks above can fail: a file that names a family in code is caught, one that
    names it in a comment or docstring is not."""
    named = tmp_path / "named.py"
    named.write_text('"""Docstrings may say tta."""\nimport importlib\n\nrun = importlib.import_module("entrobench.protocols.tta.run")  # tta\n')
    assert "tta" in code_words(named)
    quiet = tmp_path / "quiet.py"
    quiet.write_text('"""Docstrings may say tta."""\n# and comments: tta\nx = 1\n')
    assert "tta" not in code_words(quiet)
