"""Method registry: a method's name is its path, `<family>/<module>` -> methods/<family>/<module>.py.

`methods/` may span several folders: plug-in folders named in $ENTROBENCH_PLUGINS add their own
`methods/<family>/` (entrobench.family.activate_plugins extends this package's path).

Each method module registers exactly one class with `@register("<family>/<module>")`.
Lookups import the module on demand, so listing or validating a card never imports a
family it does not use. Unknown names fail with the close matches, never a bare KeyError.
"""
from __future__ import annotations

import difflib
import functools
import importlib
from pathlib import Path

import methods

_NOT_METHODS = {"__init__", "base", "registry"}
_REGISTRY: dict[str, type] = {}


class UnknownMethodError(LookupError):
    pass


def register(name: str):
    """Class decorator: file `methods/tta/eata.py` registers as `tta/eata`."""

    def wrap(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"method {name!r} registered twice")
        cls.registry_name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def _files() -> dict[str, Path]:
    """Method name -> its file, over every folder of the `methods` package (no import needed)."""
    return _scan(tuple(methods.__path__))


@functools.cache  # loading the cards looks up thousands of names: scan each set of folders once
def _scan(roots: tuple[str, ...]) -> dict[str, Path]:
    files = {}
    for root in map(Path, roots):
        for path in sorted(root.glob("*/*.py")):
            if path.stem not in _NOT_METHODS and not path.parent.name.startswith("_"):
                files.setdefault(f"{path.parent.name}/{path.stem}", path)
    return dict(sorted(files.items()))


def available(family: str | None = None) -> list[str]:
    """All method names on disk, optionally for one family."""
    return [name for name in _files() if family is None or name.split("/", 1)[0] == family]


def source_file(name: str) -> Path:
    """The file that implements `name`; the DAG lists it as an input of every cell using it."""
    _check_known(name)
    return _files()[name]


def get(name: str) -> type:
    _check_known(name)
    if name not in _REGISTRY:
        family, module = name.split("/", 1)
        importlib.import_module(f"methods.{family}.{module}")
    if name not in _REGISTRY:
        raise UnknownMethodError(f"methods/{name}.py does not call @register({name!r})")
    return _REGISTRY[name]


def _check_known(name: str) -> None:
    if name in _files():
        return
    _scan.cache_clear()  # a method file written since the last scan
    known = available()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(known)})"
        raise UnknownMethodError(f"unknown method {name!r}{hint}")
