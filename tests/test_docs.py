"""The README and docs/*.md point at things that exist.

For README.md and every docs/*.md page:

1. every relative link (and ``#anchor``, computed from the headings the way GitHub does) points
   to a file, a folder or a heading that exists;
2. every ``make TARGET`` quoted in backticks or a shell code block names a target of the Makefile;
3. every command line quoted in backticks or a shell code block (``lpips-explorer …``,
   ``python -m cli …``, ``python -m core …``, ``python -m store …``, ``python -m bench.X …``) names
   a command whose ``--help`` exits 0. Each distinct (program, command) pair runs once, in a
   subprocess with this interpreter (``sys.executable -m cli`` for ``lpips-explorer``).

A failure names the file, the line and the broken link, target or command.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HELP_TIMEOUT_S = 120

# Fenced code blocks whose lines are shell commands: checked for make targets and command lines.
SHELL_LANGUAGES = {"", "sh", "bash", "shell", "console", "zsh"}


@dataclass(frozen=True)
class Quote:
    """A piece of a page: prose (links are read from it), inline code, or a line of a code block."""

    page: Path
    line: int
    text: str
    kind: str  # "prose", "code" (inline), "block" (a line of a fenced block)
    language: str = ""
    raw: str = ""  # the whole line as written

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")


def read_page(page: Path) -> list[Quote]:
    """Split a page into prose, inline code spans and code-block lines, each with its line number."""
    quotes: list[Quote] = []
    fence: str | None = None
    language = ""
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None and match:
            fence, language = match.group(1), match.group(2).lower()
            continue
        if fence is not None:
            if line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
                fence = None
            else:
                quotes.append(Quote(page, number, line, "block", language))
            continue
        prose = INLINE_CODE.sub(" ", line)
        quotes.append(Quote(page, number, prose, "prose", raw=line))
        for span in INLINE_CODE.finditer(line):
            # In a table cell a code span writes its pipes as \|.
            quotes.append(Quote(page, number, span.group(2).strip().replace("\\|", "|"), "code"))
    return quotes


# ---------------------------------------------------------------- (1) links and anchors

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def heading_anchor(text: str) -> str:
    """The anchor GitHub gives a heading: the rendered text, lower-cased, without punctuation
    (letters, marks, numbers, '_', '-' and spaces kept), spaces turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"(?<!\w)_+|_+(?!\w)", "", text)  # _emphasis_, not snake_case
    kept = "".join(ch for ch in text.lower()
                   if ch in " -_" or unicodedata.category(ch)[0] in "LMN")
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor in a page, with GitHub's -1, -2 … suffixes for repeated ones."""
    seen: dict[str, int] = defaultdict(int)
    found: set[str] = set()
    for quote in read_page(page):
        if quote.kind != "prose":
            continue
        match = HEADING.match(quote.raw)
        if not match:
            continue
        anchor = heading_anchor(match.group(2))
        found.add(anchor if seen[anchor] == 0 else f"{anchor}-{seen[anchor]}")
        seen[anchor] += 1
    return found


def relative_links() -> list[tuple[Quote, str]]:
    links = []
    for page in PAGES:
        for quote in read_page(page):
            if quote.kind != "prose":
                continue
            for match in [*LINK.finditer(quote.text), *HTML_LINK.finditer(quote.text)]:
                target = match.group(1)
                if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("//"):
                    continue  # https:, mailto: … (not checked: no network here)
                links.append((quote, target))
    return links


def broken(quote: Quote, target: str) -> str | None:
    """Why a relative link is broken, or None when it points to something that exists."""
    path_part, _, anchor = target.partition("#")
    path_part = unquote(path_part.split("?")[0])
    if path_part:
        resolved = (ROOT / path_part.lstrip("/")) if path_part.startswith("/") else (quote.page.parent / path_part)
        resolved = resolved.resolve()
        if not resolved.exists():
            return f"{resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else resolved} does not exist"
        if not resolved.is_relative_to(ROOT):
            return "points outside the repository"
    else:
        resolved = quote.page
    if anchor:
        if resolved.suffix.lower() != ".md" or not resolved.is_file():
            return f"#{anchor} on {resolved.name}, which is no Markdown page"
        if unquote(anchor).lower() not in anchors(resolved):
            return f"no heading in {resolved.relative_to(ROOT)} has the anchor #{anchor}"
    return None


def test_pages_exist():
    assert (ROOT / "README.md").is_file()
    assert len(PAGES) > 1, "no docs/*.md pages"


def test_every_docs_page_starts_by_saying_who_it_is_for():
    """Each docs page: a title, then one line (paragraph) saying who it is for."""
    problems = []
    for page in PAGES[1:]:
        lines = [line for line in page.read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(lines) < 2 or not lines[0].startswith("# ") or not lines[1].startswith("For "):
            problems.append(f"{page.relative_to(ROOT)}:1: expected '# Title' then a line starting 'For …'")
    assert not problems, "\n".join(problems)


def test_relative_links_and_anchors_exist():
    problems = []
    for quote, target in relative_links():
        reason = broken(quote, target)
        if reason:
            problems.append(f"{quote.where()}: broken link ({target}): {reason}")
    assert not problems, "\n".join(problems)


def test_anchor_rules_follow_github():
    assert heading_anchor("A student's token, what is stored, and backups") == \
        "a-students-token-what-is-stored-and-backups"
    assert heading_anchor("More metrics: DISTS, FSIM, VIF, GMSD") == "more-metrics-dists-fsim-vif-gmsd"
    assert heading_anchor("The `dirs` command — at **scale**") == "the-dirs-command--at-scale"
    assert heading_anchor("snake_case stays") == "snake_case-stays"


# ---------------------------------------------------------------- (2) make targets

def makefile_targets() -> set[str]:
    targets: set[str] = set()
    text = (ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith(("\t", "#")) or not line.strip():
            continue
        match = re.match(r"^([^:=#]+?)\s*::?(?!=)(.*)$", line)
        if not match:
            continue
        names, rest = match.groups()
        if names.strip() == ".PHONY":
            targets.update(rest.split())
        else:
            targets.update(name for name in names.split() if "$" not in name and "%" not in name)
    return targets


def command_lines(quote: Quote) -> list[str]:
    """The shell commands quoted in inline code or a shell code-block line (comments dropped,
    split at ;, &&, || and |)."""
    if quote.kind == "prose" or (quote.kind == "block" and quote.language not in SHELL_LANGUAGES):
        return []
    text = re.sub(r"(^|\s)#.*$", "", quote.text)  # a shell comment
    text = re.sub(r"^\s*[$>]\s+", "", text)  # a prompt
    return [part.strip() for part in re.split(r"\s*(?:;|&&|\|\||(?<![|\w])\|(?![|\w]))\s*", text) if part.strip()]


ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\S*$")


def words_after_env(command: str) -> list[str]:
    """A command's words, without leading VAR=value assignments, sudo or env."""
    words = command.split()
    while words and (ASSIGNMENT.match(words[0]) or words[0] in {"sudo", "env", "exec", "time"}):
        words.pop(0)
    return words


def make_uses() -> list[tuple[Quote, str]]:
    uses = []
    for page in PAGES:
        for quote in read_page(page):
            for command in command_lines(quote):
                words = words_after_env(command)
                if not words or words[0] != "make":
                    continue
                for word in words[1:]:
                    if word.startswith("-") or ASSIGNMENT.match(word):
                        continue
                    uses.append((quote, word))
    return uses


def test_make_targets_exist():
    targets = makefile_targets()
    assert {"run", "test"} <= targets, f"Makefile parse found only {sorted(targets)}"
    problems = [f"{quote.where()}: `make {target}`: no target '{target}' in the Makefile"
                for quote, target in make_uses() if target not in targets]
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- (3) quoted command lines

# The programs whose quoted commands are checked, and the module each runs as (this interpreter's
# `python -m MODULE`): lpips-explorer (also as .venv/bin/lpips-explorer) runs `cli`.
LPIPS_EXPLORER = re.compile(r"^(?:\S*bin/)?lpips-explorer$")
PYTHON = re.compile(r"^(?:\S*/)?python(?:3(?:\.\d+)?)?$")
MODULES = re.compile(r"^(cli|core|store|bench\.\w+)$")
COMMAND_WORD = re.compile(r"^[a-z][a-z0-9_-]*(?:\|[a-z][a-z0-9_-]*)*$")


def program_module(words: list[str]) -> tuple[str, str, list[str]] | None:
    """(as quoted, module to run, the words after the program) when a command runs one of ours."""
    if not words:
        return None
    if LPIPS_EXPLORER.match(words[0]):
        return "lpips-explorer", "cli", words[1:]
    if len(words) >= 3 and PYTHON.match(words[0]) and words[1] == "-m" and MODULES.match(words[2]):
        return f"python -m {words[2]}", words[2], words[3:]
    return None


def quoted_commands() -> dict[tuple[str, str, str], list[str]]:
    """{(as quoted, module, command or ''): [where it is quoted, …]}."""
    found: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for page in PAGES:
        for quote in read_page(page):
            for command in command_lines(quote):
                ours = program_module(words_after_env(command))
                if ours is None:
                    continue
                quoted, module, rest = ours
                first = rest[0] if rest else ""
                # `bench.X` modules take options only; a placeholder (REF, …, [--x) is no command.
                names = first.split("|") if not module.startswith("bench.") and COMMAND_WORD.match(first) else [""]
                for name in names:
                    found[(quoted, module, name)].append(quote.where())
    return found


QUOTED = quoted_commands()


def test_command_lines_are_found():
    """The pages quote the command line; the extraction finds it (guards the regular expressions)."""
    programs = {module for _, module, _ in QUOTED}
    assert "cli" in programs, sorted(QUOTED)


@pytest.mark.parametrize("quoted, module, command", sorted(QUOTED), ids=[
    " ".join(part for part in (quoted, command) if part) for quoted, _, command in sorted(QUOTED)])
def test_quoted_command_has_help(quoted, module, command):
    argv = [sys.executable, "-m", module, *([command] if command else []), "--help"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    where = ", ".join(QUOTED[(quoted, module, command)])
    shown = " ".join(part for part in (quoted, command, "--help") if part)
    try:
        result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=HELP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{where}: `{shown}` did not finish in {HELP_TIMEOUT_S} s")
    tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
    assert result.returncode == 0, (f"{where}: `{shown}` exited {result.returncode} "
                                    f"(ran {' '.join(argv[1:])}): " + " | ".join(tail))
