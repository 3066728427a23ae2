"""Renderers of findings: exact text, the JSON document, SARIF 2.1.0 shape, GitHub escaping."""

from __future__ import annotations

import json

from toolkit.findings import Finding, Pos, Severity
from toolkit.report import Report, render_github, render_json, render_sarif, render_text
from toolkit.rules import CATALOGUE, RULES

ERR = Finding(
    "HIPAA-MKT-001",
    "purpose 'x' is not a known purpose",
    Pos("campaigns/a/campaign.yaml", 2, 10),
    Severity.ERROR,
    "a",
)
WARN = Finding(
    "MBX-AUTH-001",
    "nothing signs mail, fix it: now",
    Pos("toolkit.yaml", 21, 17),
    Severity.WARNING,
    "a",
)
WAIVED = Finding(
    "CANSPAM-004",
    "no ad label\nsecond line 100%",
    Pos("campaigns/b/campaign.yaml", 3, 9),
    Severity.WARNING,
    "b",
    waived=True,
    waiver_reason="consent collected on paper",
)
REFUSED = Finding(
    "HIPAA-FR-002",
    "no opt-out",
    Pos("campaigns/c/campaign.yaml", 6, 11),
    Severity.ERROR,
    "c",
    waived=False,
    waiver_reason="legal said fine",
)
REPORT = Report([ERR, WARN, WAIVED, REFUSED], campaigns=3)


def test_text_lines_and_summary() -> None:
    assert render_text(REPORT) == (
        "campaigns/a/campaign.yaml:2:10: error HIPAA-MKT-001 purpose 'x' is not a known purpose\n"
        "toolkit.yaml:21:17: warning MBX-AUTH-001 nothing signs mail, fix it: now\n"
        "campaigns/b/campaign.yaml:3:9: warning CANSPAM-004 no ad label\nsecond line 100%"
        " [waived: consent collected on paper]\n"
        "campaigns/c/campaign.yaml:6:11: error HIPAA-FR-002 no opt-out"
        " [waiver refused by --strict: legal said fine]\n"
        "2 errors, 1 warning, 1 waived in 3 campaigns\n"
    )


def test_text_when_clean() -> None:
    assert render_text(Report([], campaigns=1)) == "0 errors, 0 warnings, 0 waived in 1 campaign\n"


def test_json_document() -> None:
    doc = json.loads(render_json(REPORT))
    assert doc["version"] == 1
    assert doc["summary"] == {"errors": 2, "warnings": 1, "waived": 1, "campaigns": 3}
    assert doc["findings"][2] == {
        "rule": "CANSPAM-004",
        "severity": "warning",
        "message": "no ad label\nsecond line 100%",
        "file": "campaigns/b/campaign.yaml",
        "line": 3,
        "column": 9,
        "campaign": "b",
        "waived": True,
        "waiver_reason": "consent collected on paper",
    }
    assert [f["rule"] for f in doc["findings"]] == [
        "HIPAA-MKT-001",
        "MBX-AUTH-001",
        "CANSPAM-004",
        "HIPAA-FR-002",
    ]


def test_json_paths_take_the_git_prefix() -> None:
    doc = json.loads(render_json(Report([ERR], 1, path_prefix="health/")))
    assert doc["findings"][0]["file"] == "health/campaigns/a/campaign.yaml"


LEVELS = {"none", "note", "warning", "error"}


def check_sarif_shape(doc: dict) -> None:
    """The parts of the SARIF 2.1.0 schema and of GitHub code scanning's requirements
    that a producer can get wrong (no package ships the schema for offline validation)."""
    assert doc["version"] == "2.1.0"
    assert doc["$schema"].endswith("sarif-2.1.0.json")
    assert isinstance(doc["runs"], list) and len(doc["runs"]) == 1
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "campaign" and driver["version"]
    rules = driver["rules"]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids))
    for r in rules:
        assert set(r) >= {
            "id",
            "shortDescription",
            "fullDescription",
            "help",
            "defaultConfiguration",
            "properties",
        }
        assert r["shortDescription"]["text"] and r["fullDescription"]["text"]
        assert r["help"]["text"] and r["help"]["markdown"]
        assert r["defaultConfiguration"]["level"] in LEVELS
        assert r["properties"]["tags"] and all(isinstance(t, str) for t in r["properties"]["tags"])
        assert len(r["shortDescription"]["text"]) <= 1024  # GitHub truncates longer ones
    for res in run["results"]:
        assert set(res) >= {"ruleId", "ruleIndex", "level", "message", "locations"}
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in LEVELS
        assert res["message"]["text"]
        (loc,) = res["locations"]
        art = loc["physicalLocation"]["artifactLocation"]
        assert not art["uri"].startswith("/") and "\\" not in art["uri"] and "://" not in art["uri"]
        region = loc["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
        for s in res.get("suppressions", []):
            assert s["kind"] in ("inSource", "external") and "justification" in s


def test_sarif_structure() -> None:
    doc = json.loads(render_sarif(REPORT))
    check_sarif_shape(doc)
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [i for i in CATALOGUE if i in RULES]
    results = doc["runs"][0]["results"]
    assert len(results) == 4
    first = results[0]
    assert first["ruleId"] == "HIPAA-MKT-001" and first["level"] == "error"
    assert first["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "campaigns/a/campaign.yaml"},
        "region": {"startLine": 2, "startColumn": 10},
    }
    assert "suppressions" not in first
    assert results[2]["suppressions"] == [
        {"kind": "external", "justification": "consent collected on paper"}
    ]
    assert "suppressions" not in results[3]  # a refused waiver is not a suppression


def test_sarif_rule_metadata_carries_fix_and_citation() -> None:
    doc = json.loads(render_sarif(Report([], 0)))
    rule = next(r for r in doc["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "HIPAA-SEC-003")
    assert rule["defaultConfiguration"]["level"] == "error"
    assert "45 CFR 164.316(b)(2)(i)" in rule["help"]["text"]
    assert "retention_years" in rule["help"]["markdown"]
    assert "hipaa" in rule["properties"]["tags"]
    gate = next(r for r in doc["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "CANSPAM-006")
    assert gate["defaultConfiguration"]["level"] == "note"
    assert "suppressed" in gate["help"]["text"]


def test_github_workflow_commands_are_escaped() -> None:
    out = render_github(REPORT).splitlines()
    assert out[0] == (
        "::error file=campaigns/a/campaign.yaml,line=2,col=10,title=HIPAA-MKT-001::"
        "purpose 'x' is not a known purpose"
    )
    # data: % and newlines escaped; properties also escape : and ,
    assert out[1] == (
        "::warning file=toolkit.yaml,line=21,col=17,title=MBX-AUTH-001::"
        "nothing signs mail, fix it: now"
    )
    assert out[2] == (
        "::notice file=campaigns/b/campaign.yaml,line=3,col=9,title=CANSPAM-004 (waived)::"
        "no ad label%0Asecond line 100%25 [waived: consent collected on paper]"
    )
    assert out[-1] == "2 errors, 1 warning, 1 waived in 3 campaigns"


def test_github_escapes_properties() -> None:
    f = Finding("CFG-001", "bad", Pos("odd,name:x.yaml", 1, 1), Severity.ERROR)
    line = render_github(Report([f], 0)).splitlines()[0]
    assert line == "::error file=odd%2Cname%3Ax.yaml,line=1,col=1,title=CFG-001::bad"
