"""The loader: every problem is a finding at its line, and one bad file never hides the rest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from rule_helpers import CAMPAIGN_FILE, assert_finding, describe, lint_root, make_repo

from toolkit.errors import UserError
from toolkit.findings import Pos
from toolkit.loader import load_repo

SEGMENT = "segments/upcoming-appointments.yaml"


def load(tmp_path: Path, edits=None, replace=None):
    return load_repo(make_repo(tmp_path, edits, replace))


def test_scaffold_loads_without_findings(tmp_path: Path) -> None:
    repo, findings = load(tmp_path)
    assert findings == []
    camp = repo.campaigns["appointment-reminder"]
    assert camp.id == "appointment-reminder" and camp.file == CAMPAIGN_FILE
    assert camp.pos("subject") == Pos(CAMPAIGN_FILE, 4, 10)
    assert camp.key_pos("subject") == Pos(CAMPAIGN_FILE, 4, 1)
    assert camp.pos("delivery", "relay") == Pos(CAMPAIGN_FILE, 9, 19)
    assert repo.fields["next_appointment"].type == "datetime"
    assert repo.segments["upcoming-appointments"].leaves()[1].pos.line == 5
    contact = repo.personas["alex"].contact
    assert contact["next_appointment"] == dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


def test_not_a_repository_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        load_repo(tmp_path)
    assert "not a campaign repository (no toolkit.yaml)" in str(err.value.message)


def test_broken_yaml_is_reported_at_its_line(tmp_path: Path) -> None:
    _, findings = load(tmp_path, replace={SEGMENT: [("  all:", "  all: [unclosed")]})
    # PyYAML notices the unclosed list where the next line starts
    f = assert_finding(findings, "CFG-001", SEGMENT, 4)
    assert f.message == "YAML syntax: did not find expected ',' or ']'; fix the YAML syntax"
    assert f.message.startswith("YAML syntax: ")
    assert f.message.endswith("; fix the YAML syntax")


def test_duplicate_key_is_a_finding(tmp_path: Path) -> None:
    _, findings = load(
        tmp_path, replace={CAMPAIGN_FILE: [("sender: clinic", "sender: clinic\nsender: x")]}
    )
    assert_finding(findings, "CFG-001", CAMPAIGN_FILE, 4, message="duplicate key 'sender'")


def test_unknown_key_names_the_key_and_its_line(tmp_path: Path) -> None:
    _, findings = load(tmp_path, replace={CAMPAIGN_FILE: [("segment: up", "segmnet: up")]})
    f = assert_finding(findings, "CFG-001", CAMPAIGN_FILE, 7)
    assert f.message == "unknown key 'segmnet'; remove it or check its spelling"
    assert f.campaign == "appointment-reminder"


def test_wrong_type_points_at_the_value(tmp_path: Path) -> None:
    _, findings = load(tmp_path, replace={"toolkit.yaml": [("port: 587", "port: many")]})
    f = assert_finding(findings, "CFG-001", "toolkit.yaml", 15)
    assert f.column == 11
    assert (
        f.message
        == "'relays.default.port': expected a valid integer, unable to parse string as an integer"
    )


def test_missing_required_key_points_at_its_mapping(tmp_path: Path) -> None:
    _, findings = load(tmp_path, replace={CAMPAIGN_FILE: [("title: Appointment reminder\n", "")]})
    f = assert_finding(findings, "CFG-001", CAMPAIGN_FILE, 1)
    assert f.message == "missing required key 'title'; add it"


def test_missing_template_is_a_reference_finding(tmp_path: Path) -> None:
    _, findings = load(
        tmp_path,
        replace={CAMPAIGN_FILE: [("template: appointment-reminder", "template: reminder")]},
    )
    f = assert_finding(findings, "CFG-002", CAMPAIGN_FILE, 6)
    assert f.message == "template 'reminder' not found under templates/; create it or fix the name"


def test_persona_with_a_wrong_type_names_the_key_not_the_value(tmp_path: Path) -> None:
    _, findings = load(
        tmp_path, replace={"fixtures/personas.yaml": [("age: 67", "age: sixty-seven")]}
    )
    f = assert_finding(findings, "CFG-001", "fixtures/personas.yaml", 6)
    assert f.message == "persona 'alex', key 'age': expected an integer"
    assert "sixty" not in f.message


def test_every_error_in_one_file_is_reported(tmp_path: Path) -> None:
    _, findings = load(
        tmp_path,
        replace={
            CAMPAIGN_FILE: [
                ("title: Appointment reminder\n", ""),
                ("sender: clinic", "sender: clinic\ncolour: blue"),
                ('preheader: "Details of your next appointment"', "preheader: [1, 2]"),
                (
                    "delivery: {relay: default, encryption: tls-required}",
                    "delivery: {relay: default, encryption: pigeon}",
                ),
            ]
        },
    )
    mine = [f for f in findings if f.file == CAMPAIGN_FILE]
    assert {(f.line, f.message.split(";")[0].split(":")[0]) for f in mine} >= {
        (1, "missing required key 'title'"),
        (3, "unknown key 'colour'"),
        (5, "'preheader'"),
        (9, "'delivery.encryption'"),
    }, describe(mine)


def test_one_bad_file_does_not_hide_the_others(tmp_path: Path) -> None:
    """Broken YAML, an unknown key, a missing template, a wrong type, a Jinja syntax error,
    an MJML nesting error and a missing required key, in different files: all reported in
    the same lint run."""
    root = make_repo(
        tmp_path,
        edits={
            "campaigns/second/campaign.yaml": (
                "title: Second\npurpose: appointment-reminder\nsender: clinic\nsubject: Hi\n"
                "template: missing-template\nsegment: upcoming-appointments\n"
            ),
            "campaigns/third/campaign.yaml": "title: [unclosed\n",
            "campaigns/fourth/campaign.yaml": (
                "title: Fourth\npurpose: appointment-reminder\nsender: clinic\nsubject: Hi\n"
                "template: broken\nsegment: upcoming-appointments\n"
            ),
            "templates/broken.mjml": "<mjml>\n<mj-body>\n{% if %}\n</mj-body>\n</mjml>\n",
            "campaigns/fifth/campaign.yaml": (
                "title: Fifth\npurpose: appointment-reminder\nsender: clinic\nsubject: Hi\n"
                "template: badmjml\nsegment: upcoming-appointments\n"
            ),
            "templates/badmjml.mjml": (
                '<mjml lang="en">\n<mj-body>\n<mj-section>\n<mj-text>loose</mj-text>\n'
                "</mj-section>\n</mj-body>\n</mjml>\n"
            ),
        },
        replace={
            "segments/upcoming-appointments.yaml": [("description:", "desc:")],
            CAMPAIGN_FILE: [("sender: clinic", "sender: clinic\nremuneration: third-party")],
            "policy/fields.yaml": [
                ("  deceased: {type: boolean, class: none}\n", "  deceased: {class: none}\n")
            ],
        },
    )
    findings = lint_root(root)
    assert_finding(
        findings, "CFG-002", "campaigns/second/campaign.yaml", 5, message="missing-template"
    )
    assert_finding(findings, "CFG-001", "campaigns/third/campaign.yaml", 2, message="YAML syntax")
    assert_finding(
        findings, "CFG-001", "segments/upcoming-appointments.yaml", 1, message="unknown key 'desc'"
    )
    assert_finding(findings, "CFG-001", "policy/fields.yaml", 8, message="missing required key")
    assert_finding(findings, "CFG-001", "templates/broken.mjml", 3)
    assert_finding(findings, "CFG-001", "templates/badmjml.mjml", 4, message="MJML: ")
    # the campaign that loaded is still checked by the other rules
    assert_finding(findings, "HIPAA-MKT-002", CAMPAIGN_FILE, 4)


def test_a_campaign_folder_without_campaign_yaml(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    (root / "campaigns" / "empty").mkdir()
    _, findings = load_repo(root)
    assert_finding(
        findings,
        "CFG-001",
        "campaigns/empty/campaign.yaml",
        1,
        message="campaigns/empty/ has no campaign.yaml",
    )


def test_segment_condition_shape_errors_have_positions(tmp_path: Path) -> None:
    _, findings = load(
        tmp_path,
        replace={
            SEGMENT: [
                (
                    '{field: care_status, op: "==", value: active}',
                    '{field: care_status, op: "==", value: active, weight: 2}',
                )
            ]
        },
    )
    assert_finding(findings, "CFG-001", SEGMENT, 4, message="unknown key 'weight' in a condition")


def test_non_utf8_file_is_reported(tmp_path: Path) -> None:
    root = make_repo(tmp_path)
    (root / "segments" / "latin1.yaml").write_bytes("description: caf\xe9\n".encode("latin-1"))
    _, findings = load_repo(root)
    assert_finding(findings, "CFG-001", "segments/latin1.yaml", 1, message="not UTF-8")


def test_a_broken_toolkit_yaml_hides_no_other_file(tmp_path: Path) -> None:
    """Without a valid toolkit.yaml nothing can render (no senders), but every other file
    is still loaded and checked."""
    root = make_repo(
        tmp_path,
        replace={
            "toolkit.yaml": [("port: 587", "port: many")],
            "segments/upcoming-appointments.yaml": [("description:", "desc:")],
            CAMPAIGN_FILE: [("sender: clinic", "sender: clinic\nremuneration: third-party")],
        },
    )
    findings = lint_root(root)
    assert_finding(findings, "CFG-001", "toolkit.yaml", 15)
    assert_finding(findings, "CFG-001", SEGMENT, 1, message="unknown key 'desc'")
    assert_finding(findings, "HIPAA-MKT-002", CAMPAIGN_FILE, 4)
