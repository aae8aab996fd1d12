"""How the examples users copy from README.md, docs/*.md and docstrings are found and checked.

tests/test_docs.py runs these checks; this module holds the machinery.

What counts as an example:

* **Python blocks**: every fenced ``python`` block in README.md and docs/*.md (new pages are picked
  up by the glob; scripts/doc_blocks.py is the one Markdown parser). A page's blocks are read in
  order, as one script: a later block may use what an earlier one defined.
* **Docstring examples** in every public docstring of ``airflow_provider_partneros``: the module
  docstring of a public module (no part of its dotted name starts with ``_``), and the docstring of
  every public class, function or method (no part of its qualified name starts with ``_``; dunders
  count as public) in any module, private modules included, since their public classes are
  re-exported. In them: each literal block after a paragraph ending in ``::`` (the indented lines
  that follow; as reStructuredText requires, the block must end at a blank line, so a block cut
  short by an unindented line is reported as broken), and each run of ``>>>`` lines (their expected
  output is not compared). A docstring example sees its module's globals, as with doctest.
* **Shell commands**: every command in a ``bash``/``sh``/``shell``/``console`` block, and commands
  quoted inline in prose that start with ``make``, ``airflow`` or ``python`` (see ``inline_commands``).

What is checked:

* Python: compiled; every import must import and name something that exists; every name used must
  be defined by the example, earlier on its page, its module (docstrings), a builtin, or be one of
  ``READER_NAMES`` (the reader's own objects). Then each top-level statement is **run** against a
  PartnerOS stand-in (``partneros_connection``) seeded with the ids the docs use (``docs_world``, in
  tests/test_docs.py), unless it is a *sketch*: it uses a reader's name, uses ``...`` as a value
  (``json={...}``), uses a name only a sketch defines, or needs Airflow 3.3 (``retry_policies``) on
  an older Airflow. A ``test_*`` function a page defines is then called with the fixtures it asks
  for, as pytest would. Absolute file paths are redirected in one place, ``PATHS``. No example may
  leave a session open.
* Shell (``check_command``): ``make`` targets exist in the Makefile; ``export AIRFLOW_CONN_...``
  values load through Airflow's own env-var connection lookup and the hook's parser into valid
  PartnerOS settings (a ``redis`` one: into the Redis session store's connection);
  ``export AIRFLOW__PARTNEROS__<OPTION>`` names an option the provider info declares;
  ``pip install`` names this distribution with extras it provides; ``python -m module`` /
  ``python script`` arguments are accepted by that program's argparse (parsed, not run);
  ``python -m pytest`` names existing test files; ``python -c`` runs and prints what the comment
  line under it shows; ``airflow ...`` parses with Airflow's CLI parser; ``curl -d`` data is JSON
  making a valid PartnerOS connection; a ``VAR=value`` prefix names a variable some code of the
  repository reads. A command none of these knows fails: add a check.
* README.md's ``<!-- install:... -->`` blocks are run verbatim by ``make package-check``
  (scripts/check_package.sh); here their markers must be found, so removing one fails too.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import doctest
import functools
import importlib
import inspect
import io
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_partneros
from airflow_provider_partneros.hooks.partneros import PartnerOSHook
from airflow_provider_partneros.retry_policies import retry_policies_available

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import doc_blocks  # noqa: E402

PACKAGE_DIR = Path(airflow_provider_partneros.__file__).parent

READER_NAMES = {
    "dag": "the reader's own DAG",
    "my_dag": "the reader's own DAG",
    "partner_sync": "the reader's downstream task",
    "hook": "a PartnerOSHook the reader opened (method docstrings)",
    "partners_to_enrich": "the reader's upstream @task returning partner ids (docs/operators.md, batches)",
}
"""Names an example may use without defining: they stand for the reader's own objects."""

PATHS = {"/tmp/icp.json": "icp.json"}
"""Absolute file paths in runnable examples -> the same name in the test's temporary directory."""

PYTHON_LANGS = {"python", "py"}
SHELL_LANGS = {"bash", "sh", "shell", "console"}
INSTALL_MARKERS = ("install:clone", "install:wheel")


# --- Python examples ---------------------------------------------------------------------------------


@dataclass
class Example:
    """One piece of Python a user copies, with where it is."""

    where: str
    code: str
    broken: str | None = None
    """Why the example could not even be extracted (reported by the test, not at collection)."""
    path: str | None = None
    first_line: int = 1
    """For Markdown blocks: the file and the line the code starts on, so errors point at the line."""

    def at(self, lineno: int) -> str:
        """Where line ``lineno`` of the code is."""
        if self.path is not None:
            return f"{self.path}:{self.first_line + lineno - 1}"
        return f"{self.where}, line {lineno}"


@dataclass
class Page:
    """A page's examples, run in order in one namespace (``module``: a docstring's own module)."""

    name: str
    examples: list[Example]
    module: str | None = None
    ran: list[str] = field(default_factory=list)
    sketched: list[str] = field(default_factory=list)


def markdown_pages() -> list[Page]:
    pages = []
    for path in doc_blocks.doc_files():
        name = str(path.relative_to(ROOT))
        examples = [
            Example(b.where, b.code, path=name, first_line=b.line)
            for b in doc_blocks.blocks(path)
            if b.lang in PYTHON_LANGS
        ]
        if examples:
            pages.append(Page(name, examples))
    return pages


def _is_public(parts: list[str]) -> bool:
    return not any(p.startswith("_") and not (p.startswith("__") and p.endswith("__")) for p in parts)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def docstring_examples(docstring: str, where: str) -> Iterator[Example]:
    """The ``::`` literal blocks and ``>>>`` runs of one docstring (see the module docstring)."""
    lines = inspect.cleandoc(docstring).splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
            indent = len(line) - len(line.lstrip())
            j = i + 1
            if j >= len(lines) or lines[j].strip():
                yield Example(where, "", broken=f"the line after {line.strip()!r} must be blank")
                i = j
                continue
            body: list[str] = []
            j += 1
            while j < len(lines) and (
                not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
            ):
                body.append(lines[j])
                j += 1
            broken = None
            if not "".join(body).strip():
                broken = "no indented example follows (a code block must be indented under its '::' line)"
            elif j < len(lines) and body and body[-1].strip():
                broken = (
                    f"the example ends without a blank line, at the unindented line {lines[j].strip()!r} "
                    "(a broken code block)"
                )
            code = textwrap.dedent("\n".join(body))
            yield Example(f"{where} (example after {line.strip()!r})", code, broken)
            i = j
            continue
        i += 1
    if ">>>" in docstring:
        parsed = doctest.DocTestParser().get_examples(docstring)
        if parsed:
            yield Example(f"{where} (>>> example)", "".join(e.source for e in parsed))


def _docstrings(node: ast.AST, qualname: list[str]) -> Iterator[tuple[list[str], str]]:
    """(qualified name, raw docstring) of a module and every class and function in it."""
    if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        doc = ast.get_docstring(node, clean=False)
        if doc:
            yield qualname, doc
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _docstrings(child, [*qualname, child.name])


def docstring_pages() -> list[Page]:
    pages = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        module = _module_name(path)
        public_module = _is_public(module.split("."))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        examples = [
            example
            for qualname, doc in _docstrings(tree, [])
            if (qualname and _is_public(qualname)) or (not qualname and public_module)
            for example in docstring_examples(
                doc, f"{path.relative_to(ROOT)}: {'.'.join(qualname) or 'module docstring'}"
            )
        ]
        if examples:
            pages.append(Page(module, examples, module=module))
    return pages


def _bound(node: ast.AST) -> set[str]:
    """Every name the statement binds anywhere (targets, imports, defs, arguments): an over-estimate."""
    names: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store | ast.Del):
            names.add(n.id)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(n.name)
        elif isinstance(n, ast.arg):
            names.add(n.arg)
        elif isinstance(n, ast.alias):
            names.add((n.asname or n.name).split(".")[0])
        elif isinstance(n, ast.ExceptHandler) and n.name:
            names.add(n.name)
    return names


def _top_bound(stmt: ast.stmt) -> set[str]:
    """The names a top-level statement binds in the page's namespace."""
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {stmt.name}
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)} - {
        a.arg for a in ast.walk(stmt) if isinstance(a, ast.arg)
    }


def _loaded(stmt: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _ellipsis_as_value(stmt: ast.stmt) -> bool:
    """``...`` anywhere but as a statement of its own (a placeholder value such as ``json={...}``)."""
    placeholders = {
        id(n.value) for n in ast.walk(stmt) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
    }
    return any(
        isinstance(n, ast.Constant) and n.value is Ellipsis and id(n) not in placeholders
        for n in ast.walk(stmt)
    )


def _check_imports(stmt: ast.stmt, where: str) -> list[str]:
    errors = []
    for node in ast.walk(stmt):
        if isinstance(node, ast.Import):
            for alias in node.names:
                try:
                    importlib.import_module(alias.name)
                except ImportError as exc:
                    errors.append(f"{where}: import {alias.name}: {exc}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            try:
                module = importlib.import_module(node.module)
            except ImportError as exc:
                errors.append(f"{where}: from {node.module} import ...: {exc}")
                continue
            for alias in node.names:
                if alias.name == "*" or hasattr(module, alias.name):
                    continue
                try:
                    importlib.import_module(f"{node.module}.{alias.name}")
                except ImportError:
                    errors.append(f"{where}: {node.module} has no {alias.name!r}")
    return errors


def _redirect_paths(code: str, tmp_path: Path) -> str:
    for original, name in PATHS.items():
        code = code.replace(original, str(tmp_path / name))
    return code


def _needs_airflow_33(stmt: ast.stmt) -> bool:
    return "retry_policies" in ast.dump(stmt) and not retry_policies_available()


def check_page(page: Page, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Compile, check imports and names, and run (all but sketches) one page's examples."""
    namespace: dict[str, Any] = {"__name__": "docs_example_" + re.sub(r"\W", "_", page.name)}
    if page.module:
        namespace = dict(vars(importlib.import_module(page.module)))
    known = set(namespace) | set(dir(builtins))
    sketch_only: set[str] = set()
    errors: list[str] = []
    for example in page.examples:
        if example.broken:
            errors.append(f"{example.where}: {example.broken}")
        try:
            tree = ast.parse(_redirect_paths(example.code, tmp_path), filename=example.where)
        except SyntaxError as exc:
            errors.append(f"{example.at(exc.lineno or 1)}: does not compile: {exc.msg}: {exc.text!r}")
            continue
        for stmt in tree.body:
            where = example.at(stmt.lineno)
            errors += _check_imports(stmt, where)
            free = _loaded(stmt) - _bound(stmt) - known
            undefined = free - set(READER_NAMES) - sketch_only
            if undefined:
                errors.append(f"{where}: uses undefined name(s) {sorted(undefined)}")
            known |= _top_bound(stmt)
            if free or _ellipsis_as_value(stmt) or _needs_airflow_33(stmt) or undefined:
                sketch_only |= _top_bound(stmt)
                known -= sketch_only
                page.sketched.append(where)
                continue
            filename = f"<docs example {where}>"
            try:
                exec(compile(ast.Module([stmt], type_ignores=[]), filename, "exec"), namespace)  # noqa: S102
            except Exception as exc:
                lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
                at = example.at(lines[-1]) if lines and lines[-1] else where
                errors.append(f"{at}: raised {type(exc).__name__}: {exc}")
                sketch_only |= _top_bound(stmt)
                known -= sketch_only
                continue
            page.ran.append(where)
    for name, value in list(namespace.items()):
        if page.module is None and name.startswith("test_") and inspect.isfunction(value):
            kwargs = {p: request.getfixturevalue(p) for p in inspect.signature(value).parameters}
            try:
                value(**kwargs)
            except Exception as exc:
                errors.append(f"{page.name}: {name}() raised {type(exc).__name__}: {exc}")
            page.ran.append(f"{page.name}: {name}()")
    assert not errors, "\n".join(errors)
    assert page.ran, f"{page.name}: no statement of its examples ran: {page.sketched}"


# --- shell commands --------------------------------------------------------------------------------------


@dataclass
class Command:
    """One shell command of a docs block: its words, its ``VAR=value`` prefixes, what it should print."""

    where: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    output: str | None = None
    """The comment line right under the command, read as the output it prints."""


_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_OPERATORS = {"&&", "||", "|", ";", "&"}


def shell_commands(block: doc_blocks.Block) -> list[Command]:
    """Split a shell block into commands: ``\\`` continuations, quotes spanning lines, ``&&``/``|``/``;``."""
    commands: list[Command] = []
    buf, first, last_end = "", 0, -2
    for n, raw in enumerate(block.code.splitlines()):
        line = raw[2:] if block.lang == "console" and raw.startswith("$ ") else raw
        if not buf:
            if line.lstrip().startswith("#"):
                if n == last_end + 1 and commands:
                    commands[-1].output = line.lstrip()[1:].strip()
                continue
            if not line.strip():
                continue
            first = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        lexer = shlex.shlex(buf, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            words = list(lexer)
        except ValueError:  # a quote still open: the command goes on on the next line
            buf += "\n"
            continue
        where = f"{block.where.rsplit(':', 1)[0]}:{block.line + first}"
        current: list[str] = []
        for word in [*words, ";"]:
            if word not in _OPERATORS:
                current.append(word)
                continue
            env = {}
            while current and _ASSIGNMENT.match(current[0]) and len(current) > 1 and current[0] != "export":
                name, _, value = current.pop(0).partition("=")
                env[name] = value
            if current:
                commands.append(Command(where, current, env))
            current = []
        buf, last_end = "", n
    if buf:
        raise ValueError(f"{block.where}: unterminated shell command: {buf!r}")
    return commands


def shell_blocks() -> list[doc_blocks.Block]:
    """Every shell block of the docs, except README's install blocks (run by make package-check)."""
    return [
        b
        for path in doc_blocks.doc_files()
        for b in doc_blocks.blocks(path)
        if b.lang in SHELL_LANGS and not (b.marker or "").startswith("install:")
    ]


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, flags=re.MULTILINE))


_ARGPARSE_PROBE = """
import argparse, runpy, sys

class Parsed(BaseException):
    pass

original = argparse.ArgumentParser.parse_args

def parse_args(self, args=None, namespace=None):
    original(self, args, namespace)
    raise Parsed

argparse.ArgumentParser.parse_args = parse_args
kind, target, *argv = sys.argv[1:]
sys.argv = [target, *argv]
try:
    if kind == "-m":
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        runpy.run_path(target, run_name="__main__")
except Parsed:
    sys.exit(0)
sys.exit("the program ended without parsing its arguments with argparse")
"""


def check_program_arguments(kind: str, target: str, args: list[str]) -> str | None:
    """Run the program only up to its argparse call: are these arguments accepted? (None: yes)"""
    proc = subprocess.run(
        [sys.executable, "-c", _ARGPARSE_PROBE, kind, target, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode == 0:
        return None
    return f"arguments not accepted (exit {proc.returncode}): {proc.stderr.strip()[-600:]}"


def check_connection_env(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """Load ``AIRFLOW_CONN_<ID>=value`` as Airflow does, then as the hook does (None: valid)."""
    from airflow.sdk import BaseHook

    conn_id = name.removeprefix("AIRFLOW_CONN_").lower()
    with monkeypatch.context() as m:
        m.setenv(name, value)
        try:
            conn = BaseHook.get_connection(conn_id)
        except Exception as exc:
            return f"Airflow cannot read {name}: {type(exc).__name__}: {exc}"
        if conn.conn_type == "redis":  # the Redis session store's ([partneros] session_store_conn_id)
            from airflow_provider_partneros._sessions.redis_store import redis_connection_from_airflow

            try:
                redis_connection_from_airflow(conn, conn.extra_dejson)
            except Exception as exc:
                return f"{name} is not a usable Redis session store connection: {exc}"
            return None
        if conn.conn_type != "partneros":
            return f"{name} has conn_type {conn.conn_type!r}, not 'partneros'"
        verify = conn.extra_dejson.get("verify")
        if isinstance(verify, str) and verify.startswith("/") and not os.path.exists(verify):
            # A CA bundle on the reader's machine: the one seam nothing real here can serve.
            exists = os.path.exists
            m.setattr(os.path, "exists", lambda p: p == verify or exists(p))
        try:
            settings = PartnerOSHook(conn_id).settings
        except Exception as exc:
            return f"{name} is not a valid PartnerOS connection: {type(exc).__name__}: {exc}"
    if not (settings.email and settings.password):
        return f"{name} names no email or password"
    return None


def check_provider_option(name: str) -> str | None:
    """``AIRFLOW__PARTNEROS__<OPTION>``: the option must be one the provider info declares."""
    from airflow_provider_partneros.get_provider_info import get_provider_info

    option = name.removeprefix("AIRFLOW__PARTNEROS__").lower()
    declared = get_provider_info()["config"]["partneros"]["options"]
    return None if option in declared else f"export {name}: [partneros] {option} is not a declared option"


def check_pip_install(args: list[str]) -> list[str]:
    """``pip install`` of this distribution: the extras asked for must be ones it provides."""
    from importlib.metadata import metadata

    dist = "airflow-provider-partneros"
    provided = set(metadata(dist).get_all("Provides-Extra") or [])
    errors = []
    for arg in (a for a in args if not a.startswith("-")):
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[([^\]]*)\])?", arg)
        if match is None or match.group(1).replace("_", "-").lower() != dist:
            errors.append(f"pip install {arg}: only {dist} (with its extras) is checked")
            continue
        extras = {e.strip() for e in (match.group(2) or "").split(",") if e.strip()}
        if unknown := extras - provided:
            errors.append(f"pip install {arg}: {dist} provides no extra {sorted(unknown)}")
    return errors


def _data_argument(argv: list[str]) -> str | None:
    for i, word in enumerate(argv):
        if word in ("-d", "--data", "--data-raw") and i + 1 < len(argv):
            return argv[i + 1]
    return None


@functools.cache
def _airflow_cli_parser() -> argparse.ArgumentParser:
    from airflow.cli.cli_parser import get_parser

    return get_parser()


@functools.cache
def _read_somewhere(env_name: str) -> bool:
    """Whether some code of the repository mentions this environment variable."""
    dirs = ("airflow_provider_partneros", "tests", "scripts", "benchmarks", "example_dags")
    files = [
        f
        for d in dirs
        for f in (ROOT / d).rglob("*")
        if f.suffix in (".py", ".sh") and f.name not in ("docs_checks.py", "test_docs.py")  # own examples
    ]
    return any(env_name in f.read_text(encoding="utf-8") for f in [*files, ROOT / "Makefile"])


def check_command(cmd: Command, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Check one command by what it is (SHELL_CHECKS in the module docstring); returns the errors."""
    argv, errors = cmd.argv, []
    program = argv[0]
    for name in cmd.env:
        if not _read_somewhere(name):
            errors.append(f"sets {name}, which no code in this repository reads")
    if program == "export":
        for assignment in argv[1:]:
            name, _, value = assignment.partition("=")
            if name.startswith("AIRFLOW__PARTNEROS__"):
                if (problem := check_provider_option(name)) is not None:
                    errors.append(problem)
            elif not name.startswith("AIRFLOW_CONN_"):
                errors.append(f"export {name}: no check for this variable")
            elif problem := check_connection_env(name, value, monkeypatch):
                errors.append(problem)
    elif program == "pip" and argv[1:2] == ["install"]:
        errors.extend(check_pip_install(argv[2:]))
    elif program == "make":
        missing = sorted(set(a for a in argv[1:] if not a.startswith("-") and "=" not in a) - make_targets())
        if missing or len(argv) == 1:
            errors.append(f"make: no such target(s) in the Makefile: {missing or '(none given)'}")
    elif program in ("python", "python3") or program.endswith("/python"):
        if argv[1:2] == ["-c"]:
            proc = subprocess.run(
                [sys.executable, *argv[1:]], capture_output=True, text=True, timeout=60, check=False
            )
            if proc.returncode != 0:
                errors.append(f"exit {proc.returncode}: {proc.stderr.strip()[-600:]}")
            elif cmd.output is not None and proc.stdout.strip() != cmd.output:
                errors.append(f"prints {proc.stdout.strip()!r}, the docs show {cmd.output!r}")
        elif argv[1:3] == ["-m", "pytest"]:
            paths = [a.split("::")[0] for a in argv[3:] if not a.startswith("-")]
            missing = [a for a in paths if not (ROOT / a).exists()]
            if missing or len(argv) == 3:
                errors.append(f"pytest: no such test file(s): {missing or '(none given)'}")
        elif argv[1:2] == ["-m"] and len(argv) > 2:
            if problem := check_program_arguments("-m", argv[2], argv[3:]):
                errors.append(f"python -m {argv[2]}: {problem}")
        elif len(argv) > 1 and (ROOT / argv[1]).is_file():
            if problem := check_program_arguments("path", argv[1], argv[2:]):
                errors.append(f"python {argv[1]}: {problem}")
        else:
            errors.append(f"no such script or module form: {shlex.join(argv)}")
    elif program == "airflow":
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                _airflow_cli_parser().parse_args(argv[1:])
        except SystemExit:
            errors.append(f"Airflow's CLI does not accept: {shlex.join(argv)}")
    elif program == "curl" and (data := _data_argument(argv)) is not None:
        body = json.loads(data)
        conn = {k: v for k, v in body.items() if k != "connection_id"}
        if isinstance(conn.get("extra"), str):
            conn["extra"] = json.loads(conn["extra"])
        name = "AIRFLOW_CONN_" + str(body.get("connection_id", "docs_example")).upper()
        if problem := check_connection_env(name, json.dumps(conn), monkeypatch):
            errors.append(problem)
    else:
        errors.append(f"no check for this command; add one to check_command(): {shlex.join(argv)}")
    return [f"{cmd.where}: {e}" for e in errors]


_INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_INLINE_PROGRAMS = ("make", "airflow", "python", "python3", ".venv/bin/python")


_PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$")


def up_to_placeholder(argv: list[str]) -> list[str]:
    """A template's words before its first placeholder (``N``, ``DAG_ID``; a ``<module>`` word is made
    one) and before the option it is the value of: ``airflow triggerer --capacity N`` -> ``airflow
    triggerer``.
    """
    for i, word in enumerate(argv):
        if _PLACEHOLDER.search(word):
            head = argv[:i]
            return head[:-1] if head and head[-1].startswith("-") else head
    return argv


def inline_commands() -> list[Command]:
    """Commands quoted inline in prose (`make pytest`, `airflow connections test ...`).

    An inline span counts when it starts (after any ``VAR=value``) with make, airflow or python and
    has a second word; ``python -c`` snippets are prose. A template (``--capacity N``) is checked up
    to its first placeholder.
    """
    found = []
    for path in doc_blocks.doc_files():
        text = path.read_text(encoding="utf-8")
        fenced = {b.line + i for b in doc_blocks.blocks(path) for i in range(-1, b.code.count("\n") + 1)}
        for n, line in enumerate(text.splitlines(), start=1):
            if n in fenced:
                continue
            for span in _INLINE_CODE.findall(line):
                # Words with a <placeholder> end the command here (the shell would read < and >).
                span = f"{span.split('<')[0].rsplit(' ', 1)[0]} PLACEHOLDER" if "<" in span else span
                block = doc_blocks.Block(path, n, "bash", None, span + "\n")
                try:
                    commands = shell_commands(block)
                except ValueError:
                    continue
                for cmd in commands:
                    cmd.argv = up_to_placeholder(cmd.argv)
                    is_command = len(cmd.argv) > 1 and cmd.argv[0] in _INLINE_PROGRAMS
                    if is_command and "-c" not in cmd.argv:
                        found.append(cmd)
    return found
