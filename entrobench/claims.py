"""Claims: checkable statements over results, e.g. `tent.error_pct <= source.error_pct - 5`.

A claim is one comparison between two arithmetic expressions whose names are
`<method>.<metric>` (the mean over seeds of that metric's mean column). A name may pin another
setting of the same dataset with `@<setting>`, e.g. `top_h.acc_mean@t2_0 - top_h.acc_mean@t0_7`
(settings compared inside one claim, such as temperatures); it is kept as the metric
`<metric>@<setting>`. It is parsed with `ast` and evaluated by walking the tree: no `eval`,
nothing but numbers, names, + - * / and one of < <= > >=.
"""
from __future__ import annotations

import ast
import operator
from dataclasses import dataclass

_COMPARE = {ast.Lt: ("<", operator.lt), ast.LtE: ("<=", operator.le), ast.Gt: (">", operator.gt), ast.GtE: (">=", operator.ge)}
_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}

HOLDS, FAILS, NOT_TESTED, NO_DATA = "holds", "fails", "not tested at this scale", "no data"


@dataclass(frozen=True)
class Claim:
    text: str
    tree: ast.Compare
    references: tuple[tuple[str, str], ...]  # (method, metric) pairs, in order of appearance


@dataclass(frozen=True)
class Verdict:
    status: str  # HOLDS, FAILS, NOT_TESTED or NO_DATA
    lhs: float | None = None
    rhs: float | None = None
    detail: str = ""  # the numbers behind the verdict, or why there is none


def parse_claim(text: str) -> Claim:
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise ValueError(f"cannot parse {text!r}: expected e.g. 'eata.error_pct < tent.error_pct'") from None
    if not isinstance(tree, ast.Compare) or len(tree.ops) != 1 or type(tree.ops[0]) not in _COMPARE:
        raise ValueError(f"{text!r}: expected one comparison (<, <=, >, >=) between two expressions")
    refs: list[tuple[str, str]] = []
    for node in (tree.left, tree.comparators[0]):
        _collect(node, text, refs)
    return Claim(text=text, tree=tree, references=tuple(refs))


def _collect(node: ast.AST, text: str, refs: list) -> None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        refs.append((node.value.id, node.attr))
        return
    if _is_pinned(node):
        refs.append(_pinned(node))
        return
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        _collect(node.left, text, refs)
        _collect(node.right, text, refs)
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        _collect(node.operand, text, refs)
        return
    raise ValueError(f"{text!r}: {ast.unparse(node)!r} is not allowed (use method.metric, method.metric@setting, numbers, + - * /)")


def _is_pinned(node: ast.AST) -> bool:
    """`method.metric@setting` parses as a matrix product of an attribute and a name."""
    return (
        isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult) and isinstance(node.right, ast.Name)
        and isinstance(node.left, ast.Attribute) and isinstance(node.left.value, ast.Name)
    )


def _pinned(node: ast.BinOp) -> tuple[str, str]:
    return node.left.value.id, f"{node.left.attr}@{node.right.id}"


def split_pinned(metric: str) -> tuple[str, str]:
    """'acc@t2_0' -> ('acc', 't2_0'); 'acc' -> ('acc', '')."""
    name, _, setting = metric.partition("@")
    return name, setting


def judge(claim: Claim, values: dict[tuple[str, str], float]) -> Verdict:
    """`values[(method, metric)]` = mean over seeds; a missing name gives NO_DATA, not a guess."""
    missing = [f"{m}.{k}" for m, k in claim.references if (m, k) not in values]
    if missing:
        return Verdict(NO_DATA, detail=f"no result for {', '.join(missing)}")
    lhs = _value(claim.tree.left, values)
    rhs = _value(claim.tree.comparators[0], values)
    symbol, compare = _COMPARE[type(claim.tree.ops[0])]
    status = HOLDS if compare(lhs, rhs) else FAILS
    return Verdict(status, lhs, rhs, detail=f"{lhs:.4g} {symbol} {rhs:.4g}")


def _value(node: ast.AST, values: dict) -> float:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Attribute):
        return float(values[(node.value.id, node.attr)])
    if _is_pinned(node):
        return float(values[_pinned(node)])
    if isinstance(node, ast.UnaryOp):
        return -_value(node.operand, values)
    return _ARITH[type(node.op)](_value(node.left, values), _value(node.right, values))
