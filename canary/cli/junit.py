"""A JUnit XML report of one `canary deploy --wait`, so CI systems show the verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET


def write_report(path: Path, summary: dict[str, Any]) -> None:
    analysis = summary.get("analysis") or []
    failed = summary["result"] != "promoted"
    suite = ET.Element(
        "testsuite",
        name=f"canary {summary['canary']}",
        tests=str(1 + len(analysis)),
        failures=str(int(failed)),
        time=str(summary["seconds"]),
    )
    case = ET.SubElement(
        suite,
        "testcase",
        classname="canary.rollout",
        name=f"{summary['canary']}@{summary['revision']}",
        time=str(summary["seconds"]),
    )
    if failed:
        ET.SubElement(case, "failure", message=summary["result"]).text = summary.get("message")
    for metric in analysis:
        mcase = ET.SubElement(suite, "testcase", classname="canary.analysis", name=metric["name"])
        if metric.get("verdict") == "Fail":
            ET.SubElement(mcase, "failure", message=metric.get("reason", ""))
        elif metric.get("verdict") in ("Inconclusive", "Error", None):
            ET.SubElement(mcase, "skipped", message=metric.get("reason", ""))
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
