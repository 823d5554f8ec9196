"""Writes docs/API.md, the reference of kao's public Python API, from the docstrings.

    python scripts/api_reference.py           rewrite docs/API.md
    python scripts/api_reference.py --check   exit 1 (and say so) if docs/API.md is stale

Every name in ``kao.__all__`` gets a section: a function its signature and docstring; a class
its constructor's signature, its docstring and each public method and property (its own and
those it inherits from kao's classes); a constant its value.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "API.md"

HEADER = """\
# Python API reference

Generated from the docstrings by `python scripts/api_reference.py`; do not edit it by hand
(`tests/test_docs.py` fails when it is stale). Every name here is importable from `kao`
(`import kao; kao.detect(...)`). Images are a path, bytes, a numpy array (RGB, uint8) or a PIL
image; boxes and points are in pixels of the original image.
"""


class _Annotation:
    """An annotation kept as the source text it was written in (``from __future__ import
    annotations`` leaves them as strings), so signatures print ``str | None``, not ``'str |
    None'``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _plain(annotation: Any) -> Any:
    """The annotation to print: string annotations unquoted, others as they are."""
    return _Annotation(annotation) if isinstance(annotation, str) else annotation


def signature(function: Callable[..., Any], skip_self: bool = False, returns: bool = True) -> str:
    """``(a: int, b: str = 'x') -> float``: the call signature as source text, without the
    first parameter when ``skip_self`` and without the return annotation unless ``returns``."""
    sig = inspect.signature(function)
    parameters = list(sig.parameters.values())[1 if skip_self else 0 :]
    returned = _plain(sig.return_annotation) if returns else inspect.Signature.empty
    sig = sig.replace(
        parameters=[p.replace(annotation=_plain(p.annotation)) for p in parameters],
        return_annotation=returned,
    )
    return str(sig)


ITEM = re.compile(r"^ {4}(\*{0,2}[\w.]+(?: \([^)]*\))?): (.*)$")


def docstring(obj: Any) -> str:
    """The object's cleaned docstring as Markdown, or a note that it has none: the indented
    ``name: text`` lines of Google-style sections (Args:, Attributes:, ...) become a list, their
    deeper-indented continuation lines stay in the item."""
    lines = []
    for line in (inspect.getdoc(obj) or "(no docstring)").splitlines():
        item = ITEM.match(line)
        if item:
            lines.append(f"- `{item.group(1)}`: {item.group(2)}")
        elif line.startswith("    "):
            lines.append("  " + line.strip())
        else:
            lines.append(line)
    return "\n".join(lines)


def _kao_classes(cls: type) -> Iterator[type]:
    """The class and its bases defined in kao, most derived first."""
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] == "kao":
            yield klass


def members(cls: type) -> Iterator[tuple[str, Any]]:
    """(name, attribute) of each public method and property of ``cls`` defined in kao, in
    definition order, a name overridden in a subclass given once."""
    seen: set[str] = set()
    for klass in _kao_classes(cls):
        for name, value in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            if isinstance(value, (staticmethod, classmethod, property)) or inspect.isfunction(
                value
            ):
                seen.add(name)
                yield name, value


def _member_section(cls_name: str, name: str, value: Any) -> list[str]:
    """The lines documenting one method or property of class ``cls_name``."""
    if isinstance(value, property):
        title, kind = f"{cls_name}.{name}", "property"
    elif isinstance(value, staticmethod):
        title, kind = f"{cls_name}.{name}{signature(value.__func__)}", "static method"
    elif isinstance(value, classmethod):
        title = f"{cls_name}.{name}{signature(value.__func__, skip_self=True)}"
        kind = "class method"
    else:
        title, kind = f"{cls_name}.{name}{signature(value, skip_self=True)}", "method"
    return [f"#### `{title}`", "", f"*{kind}*", "", docstring(value), ""]


def _class_section(name: str, cls: type) -> list[str]:
    """The lines documenting a public class: constructor, docstring, members."""
    bases = ", ".join(b.__name__ for b in cls.__bases__ if b is not object)
    if issubclass(cls, BaseException):
        head = f"class kao.{name}({bases})"
    else:
        head = f"class kao.{name}{signature(cls, returns=False)}"
    lines = [f"## `{name}`", "", "```python", head, "```", ""]
    lines += [f"Defined in `{cls.__module__}`.", "", docstring(cls), ""]
    for member_name, value in members(cls):
        lines += _member_section(name, member_name, value)
    return lines


def _function_section(name: str, function: Callable[..., Any]) -> list[str]:
    """The lines documenting a public function."""
    return [
        f"## `{name}`",
        "",
        "```python",
        f"kao.{name}{signature(function)}",
        "```",
        "",
        f"Defined in `{function.__module__}`.",
        "",
        docstring(function),
        "",
    ]


def _constant_section(name: str, value: Any) -> list[str]:
    """The lines documenting a public constant: its value."""
    return [f"## `{name}`", "", "```python", f"kao.{name} = {value!r}", "```", ""]


def reference() -> str:
    """The whole of docs/API.md, from the names of ``kao.__all__`` in alphabetical order."""
    import kao

    names = sorted(kao.__all__, key=str.lower)
    lines = [HEADER, "Contents: " + ", ".join(f"[`{n}`](#{n.lower()})" for n in names), ""]
    for name in names:
        value = getattr(kao, name)
        if inspect.isclass(value):
            lines += _class_section(name, value)
        elif callable(value):
            lines += _function_section(name, value)
        else:
            lines += _constant_section(name, value)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Writes docs/API.md, or with ``--check`` compares it; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if docs/API.md is stale; write nothing"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    text = reference()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(
                f"{OUTPUT.relative_to(ROOT)} is stale: run python scripts/api_reference.py",
                file=sys.stderr,
            )
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
