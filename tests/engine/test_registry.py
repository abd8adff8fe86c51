"""The method registry: names are files, found without importing them; the scan of the method
folders is done once per process, yet a method file written later is still found."""
from __future__ import annotations

import pytest

import methods
from methods import registry


@pytest.fixture
def plugin_methods(tmp_path, monkeypatch):
    """A plug-in `methods/` folder with one family, `toyreg`, on the package's path."""
    folder = tmp_path / "methods" / "toyreg"
    folder.mkdir(parents=True)
    monkeypatch.setattr(methods, "__path__", [*methods.__path__, str(tmp_path / "methods")])
    return folder


def method_file(name: str) -> str:
    return (f"from dataclasses import dataclass\nfrom methods.registry import register\n\n"
            f"@register('toyreg/{name}')\nclass Method:\n    @dataclass(frozen=True)\n    class Params:\n        pass\n")


def test_a_method_written_after_the_scan_is_found(plugin_methods):
    (plugin_methods / "first.py").write_text(method_file("first"))
    assert registry.available("toyreg") == ["toyreg/first"]
    (plugin_methods / "second.py").write_text(method_file("second"))
    assert registry.get("toyreg/second").registry_name == "toyreg/second"
    assert registry.available("toyreg") == ["toyreg/first", "toyreg/second"]


def test_an_unknown_name_names_the_closest_one(plugin_methods):
    (plugin_methods / "first.py").write_text(method_file("first"))
    with pytest.raises(registry.UnknownMethodError, match=r"did you mean toyreg/first\?"):
        registry.get("toyreg/frist")
