"""The examples users copy from README.md, docs/*.md and the package's docstrings work.

What counts as an example and what is checked: tests/docs_checks.py (its module docstring).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from docs_checks import (
    INSTALL_MARKERS,
    ROOT,
    Command,
    Example,
    Page,
    check_command,
    check_page,
    doc_blocks,
    docstring_examples,
    docstring_pages,
    inline_commands,
    markdown_pages,
    shell_blocks,
    shell_commands,
    up_to_placeholder,
)

from airflow_provider_partneros.testing import DEMO_ORG_ID, Fault, PartnerOSStandIn

# --- the stand-in world the examples assume ------------------------------------------------------------


@pytest.fixture
def docs_world(
    partneros_server: PartnerOSStandIn,
    partneros_connection: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> PartnerOSStandIn:
    """The demo stand-in plus the placeholder ids the docs use, so their examples run as written.

    Two endpoints the docs call for illustration are not modelled by the stand-in; they are
    scripted here with a plain answer, as a user would script them in their own tests.
    """
    server = partneros_server
    server.add_integration("conn_123", organization=DEMO_ORG_ID)
    server.add_partner("partner-uuid", organization=DEMO_ORG_ID, name="Partner", domain="partner.example")
    server.add_application_form("my-program", organization=DEMO_ORG_ID, required_fields=("company",))
    server.inject(
        Fault("/api/workflows/tags", "GET", status=200, body=[{"id": "t1", "name": "tag"}], times=None)
    )
    server.inject(Fault("/api/ai/chat", "POST", status=200, body="data: hi\n\n", times=None))
    monkeypatch.chdir(tmp_path)
    return server


@pytest.mark.parametrize("page", [*markdown_pages(), *docstring_pages()], ids=lambda p: p.name)
def test_python_examples_compile_resolve_and_run(
    page: Page, docs_world: PartnerOSStandIn, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A docs page's python blocks, or one module's docstring examples."""
    check_page(page, request, tmp_path)
    assert docs_world.sign_ins == docs_world.sign_outs, "an example left a PartnerOS session signed in"


def test_every_docs_page_is_read() -> None:
    """The pages the checks read include every docs/*.md (a new page needs no registration)."""
    read = {p.name for p in doc_blocks.doc_files()}
    assert read == {"README.md", *(p.name for p in (ROOT / "docs").glob("*.md"))}
    assert any(p.name == "README.md" for p in markdown_pages())


@pytest.mark.parametrize("block", shell_blocks(), ids=lambda b: b.where)
def test_shell_commands_in_docs_parse_and_name_what_exists(
    block: doc_blocks.Block, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = shell_commands(block)
    assert commands, f"{block.where}: a shell block without a command"
    errors = [e for cmd in commands for e in check_command(cmd, monkeypatch)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("cmd", inline_commands(), ids=lambda c: f"{c.where} {shlex.join(c.argv)}"[:80])
def test_inline_commands_in_docs_name_what_exists(cmd: Command, monkeypatch: pytest.MonkeyPatch) -> None:
    errors = check_command(cmd, monkeypatch)
    assert not errors, "\n".join(errors)


# --- README install commands (run by make package-check) ------------------------------------------------


@pytest.mark.parametrize("marker", INSTALL_MARKERS)
def test_readme_install_block_is_found_and_run_by_package_check(marker: str) -> None:
    block = doc_blocks.marked(ROOT / "README.md", marker)
    assert block.lang == "bash"
    assert [c.argv[0] for c in shell_commands(block)], f"{block.where}: no command"
    script = (ROOT / "scripts/check_package.sh").read_text()
    assert f"run_readme {marker}\n" in script


def test_every_readme_install_block_is_checked_or_labelled_not_yet_released() -> None:
    script = (ROOT / "scripts/check_package.sh").read_text()
    for block in doc_blocks.blocks(ROOT / "README.md"):
        if (block.marker or "").startswith("install:") and f"run_readme {block.marker}\n" not in script:
            assert "not on PyPI yet" in block.code, f"{block.where}: an install block nothing runs"


def test_files_the_install_section_names_exist() -> None:
    """E.g. the Airflow 3.2 constraints file the README tells users to pass with ``-c``."""
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"constraints/[\w.-]+\.txt", readme))
    assert named
    assert not [n for n in named if not (ROOT / n).is_file()]


# --- the checks themselves can fail ----------------------------------------------------------------------


def test_the_python_check_reports_a_wrong_import_an_undefined_name_and_a_failing_call(
    docs_world: PartnerOSStandIn, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    page = Page(
        "synthetic.md",
        [
            Example("synthetic.md:1", "from airflow_provider_partneros.operators import NoSuchOperator\n"),
            Example("synthetic.md:2", "undefined_thing()\n"),
            Example(
                "synthetic.md:3",
                "from airflow_provider_partneros.hooks.partneros import PartnerOSHook\n"
                "with PartnerOSHook('partneros_default') as h:\n"
                "    h.get_integration_status('conn_nobody_has')\n",
            ),
            Example("synthetic.md:4", "print('unclosed'\n"),
        ],
    )
    with pytest.raises(AssertionError) as failure:
        check_page(page, request, tmp_path)
    report = str(failure.value)
    assert "has no 'NoSuchOperator'" in report
    assert "undefined name(s) ['undefined_thing']" in report
    assert "synthetic.md:3, line 3: raised PartnerOSNotFoundError" in report  # the call, not the with
    assert "synthetic.md:4, line 1: does not compile" in report


def test_a_docstring_code_block_cut_short_by_an_unindented_line_is_reported() -> None:
    doc = "Summary.\n\n    Use it so::\n\n        import os\n    import sys\n        os.getcwd()\n"
    [example] = docstring_examples(doc, "somewhere")
    assert example.broken is not None
    assert "without a blank line" in example.broken


@pytest.mark.parametrize(
    ("line", "reported"),
    [
        ("make no-such-target", "no such target"),
        ("export AIRFLOW_CONN_PARTNEROS_DEFAULT='partneros://a%40b.example:pw@h?timeout=abc'", "timeout"),
        ("export AIRFLOW_CONN_PARTNEROS_DEFAULT='http://a%40b.example:pw@h'", "not 'partneros'"),
        ("python -m airflow_provider_partneros.testing --no-such-flag", "arguments not accepted"),
        ("python -m airflow_provider_partneros.testing --port eighty", "arguments not accepted"),
        ("python -c 'print(1)'\n# 2", "prints '1', the docs show '2'"),
        ("rm -rf build", "no check for this command"),
        ("airflow connections nope partneros_default", "Airflow's CLI does not accept"),
        ("PARTNEROS_NO_SUCH_SETTING=1 make pytest", "sets PARTNEROS_NO_SUCH_SETTING, which no code"),
        ("python -m pytest tests/test_no_such_file.py", "no such test file"),
        ("airflow trigerer", "Airflow's CLI does not accept"),
    ],
)
def test_the_shell_check_reports_what_would_not_work(
    line: str, reported: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = doc_blocks.Block(ROOT / "synthetic.md", 1, "bash", None, line + "\n")
    errors = [e for cmd in shell_commands(block) for e in check_command(cmd, monkeypatch)]
    assert any(reported in e for e in errors), errors


@pytest.mark.parametrize(
    ("argv", "checked"),
    [
        (["airflow", "triggerer", "--capacity", "N"], ["airflow", "triggerer"]),
        (["airflow", "dags", "test", "DAG_ID"], ["airflow", "dags", "test"]),
        (["python", "PLACEHOLDER", "MODE"], ["python"]),
        (["make", "pytest"], ["make", "pytest"]),
    ],
)
def test_an_inline_template_is_checked_up_to_its_first_placeholder(
    argv: list[str], checked: list[str]
) -> None:
    assert up_to_placeholder(argv) == checked
