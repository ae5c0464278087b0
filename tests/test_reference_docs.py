"""The generated reference pages (transition table, CLI reference) match the code they are generated from."""

from __future__ import annotations

from pathlib import Path

import pytest

from hedge_core.engine.states import TRANSITIONS
from hedge_core.reference import PAGES, cli_markdown, transitions_markdown

pytestmark = pytest.mark.unit
DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("rel", sorted(PAGES))
def test_committed_reference_page_is_what_the_code_generates(rel: str) -> None:
    committed = (DOCS / rel).read_text(encoding="utf-8")
    assert committed == PAGES[rel](), f"docs/{rel} is out of date: run `python -m hedge_core.reference` (make docs)"


def test_transition_page_has_one_row_per_legal_move() -> None:
    rows = [line for line in transitions_markdown().splitlines() if line.startswith("| ") and "---" not in line][1:]
    moves = {tuple(c.strip() for c in r.strip("|").split("|")[:3]) for r in rows}
    assert moves == {(f.value, t.value, to.value) for (f, t), to in TRANSITIONS.items()}


def test_cli_page_lists_every_command_and_option() -> None:
    import typer

    from hedge_core.cli import app

    page = cli_markdown()
    root = typer.main.get_command(app)
    for name, cmd in root.commands.items():
        assert f"`hedge {name}`" in page
        for p in getattr(cmd, "params", []):
            for opt in getattr(p, "opts", []):
                if opt.startswith("--") and opt != "--help":
                    assert f"`{opt}" in page, f"hedge {name} {opt} missing from the CLI reference"
