"""The documentation says what the code does: docs/API.md is generated from the current
docstrings, and every `kao` command, option, script and Python name the README and
docs/BENCHMARKS.md quote exists."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from kao.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "BENCHMARKS.md", ROOT / "docs" / "CLUSTER.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
SHELLS = {"", "bash", "sh", "console"}
PLACEHOLDERS = {"...", "…"}
END = {";", "&&", "||", "|", ")"}


def _api_reference() -> ModuleType:
    """scripts/api_reference.py, imported as a module."""
    spec = importlib.util.spec_from_file_location(
        "api_reference", ROOT / "scripts/api_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_is_current() -> None:
    """`python scripts/api_reference.py --check` passes: docs/API.md matches the docstrings."""
    run = subprocess.run(
        [sys.executable, "scripts/api_reference.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr


def test_api_reference_check_finds_a_stale_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check fails on a page that lacks one public name, and writes nothing."""
    module = _api_reference()
    text = module.reference()
    assert "## `analyze`" in text and "## `FaceDetector`" in text
    stale = tmp_path / "API.md"
    stale.write_text(text.replace("## `analyze`", "## `analyse`"), encoding="utf-8")
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "OUTPUT", stale)
    assert module.main(["--check"]) == 1
    assert "API.md is stale" in capsys.readouterr().err
    assert "## `analyse`" in stale.read_text(encoding="utf-8")


def test_api_reference_covers_every_public_name() -> None:
    """Every name of kao.__all__ has a section, with the docstring of a function in it."""
    import kao

    text = _api_reference().reference()
    for name in kao.__all__:
        assert f"## `{name}`" in text, name
    assert kao.detect.__doc__.splitlines()[0] in text


def _shell_text(path: Path) -> Iterator[str]:
    """The shell command lines `path` quotes: lines of shell code blocks (continuations
    joined) and inline code spans."""
    text = path.read_text(encoding="utf-8")
    for language, block in FENCE.findall(text):
        if language in SHELLS:
            yield from block.replace("\\\n", " ").splitlines()
    yield from INLINE.findall(FENCE.sub("", text))


def _kao_commands(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(line, words after `kao`) for every `kao ...`, `.venv/bin/kao ...` or `python -m kao ...`
    command in `path`'s shell text; a command ends at `;`, `)`, `&&`, `||`, a pipe (a `|`
    inside `[...]` separates alternatives) or a redirection."""
    for line in _shell_text(path):
        try:
            words = shlex.split(line, comments=True)
        except ValueError:  # an unbalanced quote in prose: not a command
            continue
        command: list[str] | None = None
        previous = ";"
        depth = 0  # of [optional parts], where `|` separates alternatives
        for word in words:
            if command is not None:
                depth += word.count("[") - word.count("]")
                if re.fullmatch(r"\d*(?:>>?|<)(?:&\d)?|\d*>>?[^>].*", word) or (
                    word in END and depth == 0
                ):
                    yield line, command
                    command = None
                elif word.endswith((";", ")")):
                    yield line, [*command, word.rstrip(";)")]
                    command = None
                else:
                    command.append(word)
            elif (word == "kao" or word.endswith("/kao")) and (
                previous in {"-m", *END} or "=" in previous or previous.startswith("(")
            ):
                command = []
            previous = word
        if command is not None:
            yield line, command


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-command parsers of `parser`, by name ({} when it has none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _alternatives(word: str) -> list[str]:
    """`list|delete-collection` or `{detect|analyze}` -> each alternative; brackets dropped."""
    return [w for w in re.split(r"[|{}\[\]()]", word) if w]


def _check_command(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """What is wrong with `kao WORDS`: unknown sub-commands, or options that the chosen
    sub-command does not take (with `...` for a sub-command: that none of them takes).
    Placeholders such as FILE or <LFW> are fine."""
    parsers = [parser]
    any_of = False
    for word in words:
        subs = [_subcommands(p) for p in parsers]
        if word.startswith(("-", "[-")) or not any(subs):
            continue
        if word in PLACEHOLDERS:
            parsers, any_of = [p for s in subs for p in s.values()], True
            continue
        names = _alternatives(word)
        if not names:  # a lone `|` between alternatives
            continue
        unknown = [n for n in names if not any(n in s for s in subs)]
        if unknown:
            return [f"unknown command {' '.join(unknown)}"]
        parsers = [s[n] for s in subs for n in names if n in s]
    known = any if any_of else all
    return [
        f"unknown option {option}"
        for word in words
        for option in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", word)
        if not known(option in p._option_string_actions for p in parsers)
    ]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_quoted_kao_commands_exist(doc: Path) -> None:
    """Each quoted `kao` command names real sub-commands and options (kao.cli.build_parser)."""
    parser = build_parser()
    found = list(_kao_commands(doc))
    assert len(found) >= 10, f"{doc.name}: too few kao commands found to check"
    problems = [
        f"{line.strip()}: {problem}"
        for line, words in found
        for problem in _check_command(parser, words)
    ]
    assert not problems, "\n".join(problems)


def test_the_command_check_catches_mistakes() -> None:
    """The checker refuses an unknown command, sub-command or option."""
    parser = build_parser()
    assert _check_command(parser, ["detect", "photo.jpg", "[--min-score", "0.6]"]) == []
    assert _check_command(parser, ["db", "list|delete-person", "--db", "x.db"]) == []
    assert _check_command(parser, ["detectt", "photo.jpg"]) == ["unknown command detectt"]
    assert _check_command(parser, ["db", "lisst"]) == ["unknown command lisst"]
    assert _check_command(parser, ["detect", "--no-such-option"]) == [
        "unknown option --no-such-option"
    ]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_quoted_scripts_exist(doc: Path) -> None:
    """Every `scripts/NAME` the document quotes is in the repository."""
    names = set(re.findall(r"scripts/[\w.-]+\.(?:py|sh)", doc.read_text(encoding="utf-8")))
    missing = sorted(n for n in names if not (ROOT / n).is_file())
    assert not missing


def _resolve(dotted: str) -> object:
    """The object `kao.a.b.c` names: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            value = getattr(value, attribute)
        return value
    raise ModuleNotFoundError(dotted)


def test_readme_python_names_exist() -> None:
    """Every `kao.name` the README's Python examples use can be imported."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = "\n".join(block for language, block in FENCE.findall(text) if language == "python")
    names = set(re.findall(r"\bkao(?:\.[A-Za-z_]\w*)+", code))
    assert "kao.analyze" in names
    missing = []
    for name in sorted(names):
        try:
            _resolve(name)
        except (ImportError, AttributeError) as error:
            missing.append(f"{name}: {error}")
    assert not missing, "\n".join(missing)


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to `-`."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


@pytest.mark.parametrize(
    "doc",
    [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))],
    ids=lambda p: p.name,
)
def test_relative_links_resolve(doc: Path) -> None:
    """Every relative link of the document names a file in the repository, and its #anchor a
    heading of that file."""
    text = FENCE.sub("", doc.read_text(encoding="utf-8"))
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", file.read_text(encoding="utf-8"), re.MULTILINE)
            if anchor not in {_slug(h) for h in headings}:
                broken.append(target)
    assert not broken
