"""`campaign lint`, `campaign rules` and `campaign init`, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ROOT, run_campaign
from rule_helpers import CAMPAIGN_FILE, make_repo
from test_report import check_sarif_shape

# RULES.md's 34 ids, in its order: the interface CI and waivers rely on
ALL_RULE_IDS = [
    "CFG-001",
    "CFG-002",
    "SEG-001",
    "CNT-003",
    "HIPAA-MKT-001",
    "HIPAA-MKT-002",
    "HIPAA-MKT-003",
    "HIPAA-MKT-004",
    "HIPAA-MKT-005",
    "HIPAA-AUTH-001",
    "HIPAA-AUTH-002",
    "HIPAA-FR-001",
    "HIPAA-FR-002",
    "HIPAA-MIN-001",
    "HIPAA-MIN-002",
    "HIPAA-CC-001",
    "HIPAA-SEC-001",
    "HIPAA-SEC-002",
    "HIPAA-SEC-003",
    "CANSPAM-001",
    "CANSPAM-002",
    "CANSPAM-003",
    "CANSPAM-004",
    "CANSPAM-005",
    "CANSPAM-006",
    "CANSPAM-007",
    "MBX-UNSUB-001",
    "MBX-AUTH-001",
    "MBX-SIZE-001",
    "TRK-001",
    "TRK-002",
    "CNT-001",
    "CNT-002",
    "CNT-004",
]

COST_BASED = [
    ("purpose: appointment-reminder", "purpose: appointment-reminder\nremuneration: cost-based")
]
WAIVER = "\nwaivers:\n  - {rule: HIPAA-MKT-002, reason: Pharmacy pays postage under contract 12}\n"


def no_traceback(r) -> None:
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout


def test_example_repository_lints_clean() -> None:
    r = run_campaign("lint", root=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.endswith("0 errors, 0 warnings, 0 waived in 11 campaigns\n")
    assert r.stdout.count("\n") == 1


def test_example_repository_json_and_sarif() -> None:
    r = run_campaign("lint", "--format", "json", root=ROOT)
    assert r.returncode == 0
    assert json.loads(r.stdout) == {
        "version": 1,
        "findings": [],
        "summary": {"errors": 0, "warnings": 0, "waived": 0, "campaigns": 11},
    }
    r = run_campaign("lint", "--format", "sarif", root=ROOT)
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    check_sarif_shape(doc)
    assert [x["id"] for x in doc["runs"][0]["tool"]["driver"]["rules"]] == ALL_RULE_IDS


def test_errors_exit_1_with_positions(tmp_path: Path) -> None:
    root = make_repo(tmp_path, replace={CAMPAIGN_FILE: COST_BASED})
    r = run_campaign("lint", root=root)
    assert r.returncode == 1
    no_traceback(r)
    assert r.stdout == (
        f"{CAMPAIGN_FILE}:3:15: error HIPAA-MKT-002 'remuneration: cost-based' keeps the exemption "
        "only for refill reminders, not 'appointment-reminder'; remove it or set 'purpose: "
        "marketing' with an authorization scope\n"
        "1 error, 0 warnings, 0 waived in 1 campaign\n"
    )
    r = run_campaign("lint", "--format", "json", root=root)
    doc = json.loads(r.stdout)
    assert r.returncode == 1
    assert doc["findings"][0]["rule"] == "HIPAA-MKT-002" and doc["findings"][0]["line"] == 3
    r = run_campaign("lint", "--format", "github", root=root)
    assert r.returncode == 1
    assert r.stdout.startswith(f"::error file={CAMPAIGN_FILE},line=3,col=15,title=HIPAA-MKT-002::")


def test_waiver_reports_and_strict_refuses(tmp_path: Path) -> None:
    root = make_repo(tmp_path, replace={CAMPAIGN_FILE: COST_BASED})
    (root / CAMPAIGN_FILE).write_text((root / CAMPAIGN_FILE).read_text() + WAIVER)
    r = run_campaign("lint", root=root)
    assert r.returncode == 0, r.stdout
    assert "[waived: Pharmacy pays postage under contract 12]" in r.stdout
    assert r.stdout.endswith("0 errors, 0 warnings, 1 waived in 1 campaign\n")
    doc = json.loads(run_campaign("lint", "--format", "json", root=root).stdout)
    assert doc["findings"][0]["waived"] is True
    assert doc["findings"][0]["waiver_reason"] == "Pharmacy pays postage under contract 12"
    r = run_campaign("lint", "--strict", root=root)
    assert r.returncode == 1
    assert "[waiver refused by --strict: Pharmacy pays postage under contract 12]" in r.stdout
    assert r.stdout.endswith("1 error, 0 warnings, 0 waived in 1 campaign\n")


def test_strict_keeps_waivers_of_warnings(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path,
        replace={
            CAMPAIGN_FILE: [
                (
                    'subject: "Your upcoming visit at {{ organization.name }}"',
                    'subject: "Free parking for your visit"',
                )
            ]
        },
    )
    (root / CAMPAIGN_FILE).write_text(
        (root / CAMPAIGN_FILE).read_text()
        + "waivers:\n  - {rule: CANSPAM-001, reason: Parking is part of the visit}\n"
    )
    r = run_campaign("lint", "--strict", root=root)
    assert r.returncode == 0, r.stdout
    assert (
        "warning CANSPAM-001" in r.stdout and "[waived: Parking is part of the visit]" in r.stdout
    )


def test_configuration_rules_cannot_be_waived(tmp_path: Path) -> None:
    root = make_repo(tmp_path, replace={CAMPAIGN_FILE: [("sender: clinic", "sender: nobody")]})
    (root / CAMPAIGN_FILE).write_text(
        (root / CAMPAIGN_FILE).read_text() + "waivers:\n  - {rule: CFG-002, reason: later}\n"
    )
    r = run_campaign("lint", root=root)
    assert r.returncode == 1
    assert (
        "error CFG-002 sender 'nobody' is not a sender in toolkit.yaml (known: clinic)" in r.stdout
    )


def test_lint_selected_and_unknown_campaigns(tmp_path: Path) -> None:
    r = run_campaign("lint", "annual-appeal", "partner-fitness-offer", root=ROOT)
    assert r.returncode == 0
    assert r.stdout == "0 errors, 0 warnings, 0 waived in 2 campaigns\n"
    r = run_campaign("lint", "no-such-campaign", root=ROOT)
    assert r.returncode == 2
    no_traceback(r)
    assert (
        "Error: no campaign 'no-such-campaign' under campaigns/ (known: annual-appeal," in r.stderr
    )


def test_not_a_repository(tmp_path: Path) -> None:
    r = run_campaign("lint", root=tmp_path)
    assert r.returncode == 2
    no_traceback(r)
    assert "not a campaign repository (no toolkit.yaml)" in r.stderr
    assert "fix: pass --root DIR, or create one with `campaign init DIR`" in r.stderr


def test_broken_files_are_findings_not_crashes(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path, edits={"toolkit.yaml": "organization: [\n", "policy/fields.yaml": "fields: 3\n"}
    )
    r = run_campaign("lint", root=root)
    assert r.returncode == 1
    no_traceback(r)
    assert "toolkit.yaml:2:1: error CFG-001 YAML syntax:" in r.stdout
    assert "policy/fields.yaml:1:9: error CFG-001 'fields': " in r.stdout


def test_rules_lists_every_rule_in_catalogue_order() -> None:
    r = run_campaign("rules")
    assert r.returncode == 0
    ids = [line.split()[0] for line in r.stdout.splitlines()]
    assert ids == ALL_RULE_IDS
    assert "HIPAA-MIN-002   warning  `phi_fields` lists a field the content never uses." in r.stdout


def test_rules_explains_one_rule() -> None:
    r = run_campaign("rules", "hipaa-auth-002")
    assert r.returncode == 0
    assert r.stdout.startswith("HIPAA-AUTH-002 (gate: checked per recipient by plan and send)\n")
    assert (
        "Exclusion reasons: no-authorization, authorization-expired, authorization-revoked"
        in r.stdout
    )
    assert "Citation: 45 CFR 164.508(a)(3), 164.508(b)(5)" in r.stdout
    assert "How to fix: " in r.stdout
    r = run_campaign("rules", "CFG-001")
    assert "This rule cannot be waived." in r.stdout


def test_rules_unknown_id_suggests() -> None:
    r = run_campaign("rules", "HIPAA-FR-02")
    assert r.returncode == 2
    no_traceback(r)
    assert r.stderr == (
        "Error: no rule 'HIPAA-FR-02'\n"
        "  fix: did you mean HIPAA-FR-002? `campaign rules` lists every rule id\n"
    )


def test_rules_reference_doc_is_up_to_date() -> None:
    r = run_campaign("rules", "--markdown")
    assert r.returncode == 0
    assert (ROOT / "docs" / "rules.md").read_text() == r.stdout, (
        "docs/rules.md is stale: run `campaign rules --markdown > docs/rules.md`"
    )


def test_init_scaffolds_a_repository_that_lints_clean(tmp_path: Path) -> None:
    target = tmp_path / "health"
    r = run_campaign("init", str(target))
    assert r.returncode == 0, r.stderr
    assert (target / "toolkit.yaml").is_file() and (target / "policy" / "authorizations").is_dir()
    r = run_campaign("lint", root=target)
    assert r.returncode == 0, r.stdout
    assert r.stdout == "0 errors, 0 warnings, 0 waived in 1 campaign\n"


def test_init_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    r = run_campaign("init", str(tmp_path))
    assert r.returncode == 2
    no_traceback(r)
    assert "is not empty; init never overwrites files" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_github_and_sarif_paths_are_relative_to_the_git_checkout(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    root = make_repo(tmp_path, replace={CAMPAIGN_FILE: COST_BASED})  # tmp_path/repo
    r = run_campaign("lint", "--format", "github", root=root)
    assert r.stdout.startswith(f"::error file=repo/{CAMPAIGN_FILE},line=3,col=15,")
    doc = json.loads(run_campaign("lint", "--format", "sarif", root=root).stdout)
    loc = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert loc["uri"] == f"repo/{CAMPAIGN_FILE}"
    # text and JSON stay relative to the campaign repository
    assert run_campaign("lint", root=root).stdout.startswith(f"{CAMPAIGN_FILE}:3:15: ")
