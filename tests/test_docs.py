"""The README and docs/ say only what is true of this checkout.

* README.md is at most 300 lines and opens with ``make demo`` and ``make test``.
* Every relative link (and every ``docs/<page>.md`` named in code) resolves inside the repository, anchors
  included; every docs page is reachable from the README.
* Every repository path (``zoejax/ops/winograd.py``) and module (``zoejax.serving.stablehlo.load_exported``) a
  page names exists.
* Every ``--flag`` a page names exists in the command it belongs to: the command named before it on the same
  line or code span, else the page's own commands. ``--config.<field>`` must be a field of a shipped config.
* Every flag of a command appears on that command's page (its ``--help`` summary, in prose).
* Nothing in the repository points outside it (the reference folder beside the checkout, absolute work paths).

Flags are read from the parsers themselves: argparse parsers are captured as each CLI's ``main`` builds them,
absl flags from ``--helpfull``, the launch scripts from ``--help``, benchmark scripts from their source.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"

ARGPARSE_CLIS = {"zoejax-eval": "zoejax.cli.evaluate", "zoejax-predict": "zoejax.cli.predict",
                 "zoejax-convert": "zoejax.cli.convert", "zoejax-data": "zoejax.cli.data",
                 "zoejax-demo": "zoejax.cli.demo", "zoejax-serve": "zoejax.cli.serve"}
ABSL_CLIS = {"zoejax-train": "zoejax.cli.train", "zoejax-info": "zoejax.cli.info"}
SCRIPTS = ("launch_tpu.sh", "launch_gpu.sh")
MODULE_TO_TOOL = {module: tool for tool, module in {**ARGPARSE_CLIS, **ABSL_CLIS}.items()}
TAKES_CONFIG = ("zoejax-train", "zoejax-info", *SCRIPTS)

# The commands whose flags a page documents (and must document completely); pages not listed here are checked
# against every command.
PAGE_TOOLS = {
    "training.md": ("zoejax-train", "zoejax-info", *SCRIPTS),
    "evaluation.md": ("zoejax-eval",),
    "inference.md": ("zoejax-predict", "zoejax-convert"),
    "conversion.md": ("zoejax-convert",),
    "data.md": ("zoejax-data",),
    "serving.md": ("zoejax-serve", "zoejax-predict"),
    "README.md": ("zoejax-demo",),
}
COMPLETE = {"training.md": ("zoejax-train", "zoejax-info", *SCRIPTS), "evaluation.md": ("zoejax-eval",),
            "inference.md": ("zoejax-predict",), "conversion.md": ("zoejax-convert",), "data.md": ("zoejax-data",),
            "serving.md": ("zoejax-serve",), "README.md": ("zoejax-demo",)}
# Programs that are not ours: their flags are not checked.
FOREIGN = re.compile(r"\b(pip|pytest|gcloud|tfds|tensorboard|srun|sbatch|git|ruff|tmux|nohup|ssh|scp|curl)\b")
TOOL = re.compile(r"(zoejax-(?:train|eval|predict|convert|info|data|demo|serve)\b|python -m zoejax\.cli\.(\w+)"
                  r"|launch_(?:tpu|gpu)\.sh|benchmarks/\w+\.py)")
FLAG = re.compile(r"(?<![\w-])--(?:\[no\])?[A-Za-z][\w-]*(?:\.[A-Za-z_][\w]*)*")
ALWAYS_VALID = {"--help", "--helpfull"}
CONFIG_ARGS = {"finetune_custom": "train=list.csv,val=val.csv"}  # configs whose get_config needs an argument


class _Captured(Exception):
    def __init__(self, parser):
        self.parser = parser


def _parser_flags(parser: argparse.ArgumentParser) -> set[str]:
    found = set()
    for action in parser._actions:
        found.update(s for s in action.option_strings if s.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _parser_flags(sub)
    return found


def _argparse_flags(module_name: str) -> set[str]:
    """The flags of the parser a CLI's ``main`` builds, captured where it parses (nothing else runs)."""
    module = importlib.import_module(module_name)

    def capture(self, *args, **kwargs):
        raise _Captured(self)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", capture), \
            mock.patch.object(argparse.ArgumentParser, "parse_known_args", capture):
        try:
            module.main([])
        except _Captured as captured:
            return _parser_flags(captured.parser)
    raise AssertionError(f"{module_name}.main did not build an argparse parser")


def _absl_flags(help_text: str) -> set[str]:
    """Flags of zoejax's own modules in absl's ``--helpfull`` (not absl's logging / debugging flags)."""
    found, ours = set(), False
    for line in help_text.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            ours = "zoejax" in line
            continue
        match = re.match(r"\s+--(\[no\])?([\w.-]+):", line)
        if match and ours:
            found.add("--" + match.group(2))
            if match.group(1):
                found.add("--no" + match.group(2))
    return found


@functools.cache
def tool_flags() -> dict[str, set[str]]:
    flags = {tool: _argparse_flags(module) for tool, module in ARGPARSE_CLIS.items()}
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"}
    runs = {tool: subprocess.Popen([sys.executable, "-m", module, "--helpfull"], cwd=REPO, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for tool, module in ABSL_CLIS.items()}
    for tool, run in runs.items():
        out, _ = run.communicate(timeout=300)
        flags[tool] = _absl_flags(out)
        assert "--config" in flags[tool], f"{tool} --helpfull lists no --config:\n{out[-2000:]}"
    for script in SCRIPTS:
        out = subprocess.run(["bash", str(REPO / script), "--help"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        flags[script] = {f for f in FLAG.findall(out.stdout) if "." not in f}
    for script in sorted((REPO / "benchmarks").glob("*.py")):
        flags[f"benchmarks/{script.name}"] = set(re.findall(r"[\"'](--[\w-]+)[\"']", script.read_text()))
    return flags


@functools.cache
def config_fields() -> set[str]:
    """Every field path (leaves and inner nodes) of the shipped configs, as ``config.a.b``."""
    fields = set()

    def walk(node, prefix):
        for key, value in node.items():
            fields.add(prefix + key)
            if hasattr(value, "items"):
                walk(value, prefix + key + ".")

    for path in sorted((REPO / "configs").glob("*.py")):
        if path.stem == "__init__":  # configs/ is the package zoejax.configs: its __init__ is no recipe
            continue
        spec = importlib.util.spec_from_file_location(f"_docs_config_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        walk(module.get_config(CONFIG_ARGS.get(path.stem)), "config.")
    return fields


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def segments(text: str):
    """(line number, text) pieces a flag is read in: each logical line of a fenced block (continuations
    joined), each inline code span of the prose."""
    lines, in_fence, pending = text.splitlines(), False, None
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            pending = (pending[0], pending[1] + " " + line) if pending else (number, line)
            if not line.rstrip().endswith("\\"):
                yield pending
                pending = None
        else:
            for span in re.findall(r"`([^`]+)`", line):
                yield number, span
            rest = re.sub(r"`[^`]+`", " ", line)
            if FLAG.search(rest):
                yield number, rest


def flag_mentions(page: Path):
    """(line, flag, owner) for every flag on the page; owner is the command it belongs to, or None for the
    page's own commands; flags of foreign programs are left out."""
    for number, segment in segments(page.read_text()):
        marks = [(m.start(), m.group(2) and MODULE_TO_TOOL.get(f"zoejax.cli.{m.group(2)}", "?"
                                                                ) or m.group(1)) for m in TOOL.finditer(segment)]
        marks += [(m.start(), "foreign") for m in FOREIGN.finditer(segment)]
        marks.sort()
        for match in FLAG.finditer(segment):
            before = [name for start, name in marks if start < match.start()]
            owner = before[-1] if before else None
            if owner == "foreign" or match.group().startswith("--xla"):
                continue
            yield number, match.group(), owner


def flag_problem(flag: str, owners: tuple[str, ...], explicit: bool) -> str | None:
    flags = tool_flags()
    if flag in ALWAYS_VALID:
        return None
    if flag.startswith("--config."):
        field = flag[2:]
        if field.split(".")[-1].isupper():  # a placeholder such as --config.KEY=VALUE
            return None
        if explicit and owners[0] not in TAKES_CONFIG:
            return f"{flag}: {owners[0]} takes no --config overrides"
        return None if field in config_fields() else f"{flag}: no such field in configs/*.py"
    if any(flag in flags.get(owner, ()) for owner in owners):
        return None
    return f"{flag}: not a flag of {' / '.join(owners)}"


def test_readme_is_short_and_opens_with_the_two_commands():
    lines = README.read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines (at most 300)"
    assert lines[0].startswith("# "), lines[0]
    body = [line for line in lines[1:] if line.strip()]
    assert body[0].startswith("```"), f"README.md must open with the two commands, not {body[0]!r}"
    assert body[1].startswith("make demo") and body[2].startswith("make test"), body[:3]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation other than - and _ dropped, spaces to -."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#+\s+(.*)$", text, flags=re.M)}


def _links(page: Path):
    text = page.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:", target):
            yield target
    for target in re.findall(r"`(docs/[\w.-]+\.md)`", text):  # a page named in code, relative to the root
        yield "/" + target


def test_every_link_resolves_inside_the_repository():
    problems = []
    for page in [*pages(), REPO / "benchmarks" / "RESULTS.md"]:
        for target in _links(page):
            path, _, anchor = target.partition("#")
            resolved = (REPO / path.lstrip("/")) if path.startswith("/") else (page.parent / path if path else page)
            resolved = resolved.resolve()
            where = f"{page.relative_to(REPO)}: {target}"
            if not resolved.is_relative_to(REPO):
                problems.append(f"{where} points outside the repository")
            elif not resolved.exists():
                problems.append(f"{where} does not exist")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                problems.append(f"{where}: no heading with anchor #{anchor}")
    assert not problems, "\n".join(problems)


PATH_MENTION = re.compile(r"(?<![\w/.-])((?:zoejax|data_pipelines|configs|benchmarks|tests|docs)/[\w/.-]*\w)")
MODULE_MENTION = re.compile(r"(?<![\w/.-])((?:zoejax|data_pipelines)(?:\.\w+)+)")


def _defines(source: str, name: str) -> bool:
    return re.search(rf"^\s*(?:def|class|async def)\s+{name}\b|^\s*{name}\s*[:=]|^\s*(?:from|import)\b.*\b{name}\b",
                     source, flags=re.M) is not None


def _module_problem(dotted: str) -> str | None:
    """A dotted name must be a package / module, optionally followed by a name that module defines."""
    parts, base = dotted.split("."), REPO
    for i, part in enumerate(parts):
        if (base / part).is_dir():
            base = base / part
            continue
        if (base / f"{part}.py").is_file():
            base = base / f"{part}.py"
            if i + 1 < len(parts) and not _defines(base.read_text(), parts[i + 1]):
                return f"{dotted}: {base.relative_to(REPO)} defines no {parts[i + 1]!r}"
            return None
        init = base / "__init__.py"
        if init.is_file() and _defines(init.read_text(), part):
            return None
        return f"{dotted}: no module or name {part!r} in {base.relative_to(REPO)}"
    return None


def test_every_file_and_module_a_page_names_exists():
    """Paths such as ``zoejax/ops/winograd.py`` and modules such as ``zoejax.serving.stablehlo.load_exported``
    named by the README or docs/ exist in this checkout (code moves; the docs must follow)."""
    problems = []
    for page in pages():
        for number, line in enumerate(page.read_text().splitlines(), 1):
            for path in PATH_MENTION.findall(line):
                if not (REPO / path).exists():
                    problems.append(f"{page.relative_to(REPO)}:{number}: {path} does not exist")
            for dotted in MODULE_MENTION.findall(line):
                problem = _module_problem(dotted)
                if problem:
                    problems.append(f"{page.relative_to(REPO)}:{number}: {problem}")
    assert not problems, "\n".join(problems)


def test_every_docs_page_is_reachable_from_the_readme():
    seen, todo = set(), [README]
    while todo:
        page = todo.pop()
        for target in _links(page):
            path = target.partition("#")[0]
            if not path.endswith(".md"):
                continue
            resolved = ((REPO / path.lstrip("/")) if path.startswith("/") else page.parent / path).resolve()
            if resolved.exists() and resolved not in seen:
                seen.add(resolved)
                todo.append(resolved)
    unlinked = [p.name for p in DOCS.glob("*.md") if p.resolve() not in seen]
    assert not unlinked, f"docs pages no page links to from README.md: {unlinked}"


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_every_flag_a_page_names_exists(page):
    everything = tuple(tool_flags())
    own = PAGE_TOOLS.get(page.name, everything)
    problems = []
    for number, flag, owner in flag_mentions(page):
        owners = (owner,) if owner and owner != "?" else own
        problem = flag_problem(flag, owners, explicit=owners != own)
        if problem:
            problems.append(f"{page.relative_to(REPO)}:{number}: {problem}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", sorted(COMPLETE), ids=str)
def test_every_flag_of_a_command_is_on_its_page(page):
    path = README if page == "README.md" else DOCS / page
    named = {flag for _, flag, _ in flag_mentions(path)}
    missing = {tool: sorted(tool_flags()[tool] - named - ALWAYS_VALID) for tool in COMPLETE[page]}
    missing = {tool: flags for tool, flags in missing.items() if flags}
    assert not missing, f"{page} does not mention these flags of its commands: {missing}"


def test_nothing_points_outside_the_repository():
    outside = re.compile(r"\.\./shared|/" + "work/")  # split so that this file does not match itself
    roots = ["README.md", "Makefile", "pyproject.toml", *SCRIPTS, "docs", "zoejax", "data_pipelines", "configs",
             "benchmarks", "tests"]
    problems = []
    for root in roots:
        base = REPO / root
        files = [base] if base.is_file() else sorted(base.rglob("*")) if base.exists() else []
        for path in files:
            if path.suffix not in {".md", ".py", ".sh", ".toml", ".txt", ".json", ""} or not path.is_file():
                continue
            if path == Path(__file__).resolve() or "__pycache__" in path.parts:
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if outside.search(line):
                    problems.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:120]}")
    assert not problems, "paths outside the repository:\n" + "\n".join(problems)
