"""The suppression list: CLI add, import and list; kinds; case-insensitive; pseudonyms."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import run_campaign

from toolkit.suppression import FILE_NAME, SuppressionStore, kinds_for

SCAFFOLD = Path(__file__).resolve().parent.parent / "toolkit" / "scaffold"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(SCAFFOLD, root)
    return root


def entries(root: Path) -> list[tuple[str | None, str | None, str, str]]:
    with SuppressionStore(root / ".campaign" / FILE_NAME) as store:
        return [(e.address, e.pseudonym, e.kind, e.source) for e in store.list()]


def test_cli_add_import_and_list(repo: Path, tmp_path: Path) -> None:
    got = run_campaign("suppress", "add", "Ann@Example.org", "bo@example.org", root=repo)
    assert got.returncode == 0, got.stderr
    assert got.stdout == "added 2 suppressions (kind commercial); 0 already present\n"
    got = run_campaign("suppress", "add", "ANN@example.org", "--kind", "all", root=repo)
    assert got.stdout == "added 1 suppression (kind all); 0 already present\n"
    got = run_campaign("suppress", "add", "ann@EXAMPLE.org", root=repo)
    assert got.stdout == "added 0 suppressions (kind commercial); 1 already present\n"

    lines = tmp_path / "optouts.txt"
    lines.write_text(
        "# exported from the CRM\ncy@example.org\n\n  Dee@Example.org  \ncy@example.org\n"
    )
    got = run_campaign("suppress", "import", str(lines), "--kind", "fundraising", root=repo)
    assert got.returncode == 0, got.stderr
    assert got.stdout == (
        f"imported 2 new suppressions (kind fundraising) from {lines}; "
        "1 already present or repeated\n"
    )
    table = tmp_path / "optouts.csv"
    table.write_text('name,Email\n"Synthetic, Person",eve@example.org\nNo One,BO@example.org\n')
    got = run_campaign("suppress", "import", str(table), root=repo)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("imported 1 new suppression (kind commercial)")

    got = run_campaign("suppress", "list", root=repo)
    assert got.returncode == 0, got.stderr
    rows = [line.split("\t")[:3] for line in got.stdout.splitlines()]
    assert rows == [
        ["ann@example.org", "all", "cli"],
        ["ann@example.org", "commercial", "cli"],
        ["bo@example.org", "commercial", "cli"],
        ["cy@example.org", "fundraising", "import:optouts.txt"],
        ["dee@example.org", "fundraising", "import:optouts.txt"],
        ["eve@example.org", "commercial", "import:optouts.csv"],
    ]
    assert got.stderr == "6 suppressions\n"


def test_bad_input_is_exit_2_and_imports_nothing(repo: Path, tmp_path: Path) -> None:
    got = run_campaign("suppress", "add", "ok@example.org", "not an address", root=repo)
    assert got.returncode == 2
    assert "argument 2 is not an email address; nothing was added" in got.stderr
    bad = tmp_path / "bad.txt"
    bad.write_text("a@example.org\nnope\nb@example.org\nalso nope\n")
    got = run_campaign("suppress", "import", str(bad), root=repo)
    assert got.returncode == 2
    assert f"{bad}: not an email address on line 2, 4; nothing was imported" in got.stderr
    got = run_campaign("suppress", "add", "x@example.org", "--kind", "weekly", root=repo)
    assert (
        got.returncode == 2
        and "'weekly' is not one of 'commercial', 'fundraising', 'all'" in got.stderr
    )
    assert entries(repo) == []


def test_kinds_and_case_insensitive_matching(tmp_path: Path) -> None:
    with SuppressionStore(tmp_path / FILE_NAME) as store:
        assert store.add("Ann@Example.org", kind="commercial", source="cli")
        assert not store.add("ann@example.org", kind="commercial", source="cli")
        store.add("bo@example.org", kind="fundraising")
        store.add("cy@example.org", kind="all")
        store.add(pseudonym="r_abc", kind="all", source="unsubscribe")
        commercial = kinds_for(commercial=True, fundraising=False)
        fundraising = kinds_for(commercial=False, fundraising=True)
        transactional = kinds_for(commercial=False, fundraising=False)
        assert set(commercial) == {"commercial", "all"}
        assert set(fundraising) == {"fundraising", "all"}
        assert set(transactional) == {"all"}
        cases = {
            ("ANN@example.org", None): (True, False, False),
            ("bo@EXAMPLE.org", None): (False, True, False),
            ("Cy@example.org", None): (True, True, True),
            ("dee@example.org", None): (False, False, False),
            ("dee@example.org", "r_abc"): (True, True, True),
            (None, "r_other"): (False, False, False),
        }
        for (address, pseudo), want in cases.items():
            got = tuple(
                store.is_suppressed(address, pseudo, k)
                for k in (commercial, fundraising, transactional)
            )
            assert got == want, (address, pseudo)
            matchers = [store.matcher(k) for k in (commercial, fundraising, transactional)]
            assert tuple(m.is_suppressed(address, pseudo) for m in matchers) == want
        assert store.matcher(transactional).needs_pseudonym
        assert not store.matcher(fundraising).pseudonyms - {"r_abc"}
        with pytest.raises(ValueError, match="needs an address or a pseudonym"):
            store.add()
        with pytest.raises(ValueError, match="unknown suppression kind"):
            store.add("x@example.org", kind="weekly")


def test_pseudonym_entries_are_listed(repo: Path) -> None:
    (repo / ".campaign").mkdir()
    with SuppressionStore(repo / ".campaign" / FILE_NAME) as store:
        store.add(pseudonym="r_abc", kind="commercial", source="unsubscribe")
    got = run_campaign("suppress", "list", root=repo)
    assert got.stdout.startswith("pseudonym:r_abc\tcommercial\tunsubscribe\t")
