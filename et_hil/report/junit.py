"""JUnit XML from results records, as pytest's ``--junitxml`` writes it.

CI systems (GitHub, GitLab, Jenkins) read JUnit; a merged matrix needs one JUnit
file made from the merged records rather than the shards' files pasted together.
Test cases are named as pytest names them (``classname`` from the node id's
path and class, ``name`` the function with its parameters); a quarantined
failure is ``skipped`` as pytest writes an ``xfail``.
"""

from __future__ import annotations

import re
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from et_hil.report.record import Record

# Characters XML 1.0 cannot hold (ANSI escapes, a NUL from a UART log): pytest's
# own JUnit writer replaces them too, or the file does not parse.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"#x{ord(m.group()):02X}", text)


def _names(test: str) -> tuple[str, str]:
    """pytest's (classname, name) of a node id."""
    parts = test.split("::")
    module = parts[0].removesuffix(".py").replace("/", ".")
    return ".".join([module, *parts[1:-1]]), parts[-1]


def _properties(record: Record) -> list[tuple[str, str]]:
    facts = [
        ("et_board", str(record.board)),
        ("et_failure_class", record.failure_class or "none"),
        ("et_versions", ",".join(f"{k}={v}" for k, v in sorted(record.versions.items()))),
    ]
    if record.repro:
        facts.append(("et_repro", record.repro))
    if record.shard:
        facts.append(("et_shard", record.shard))
    return facts


def junit_xml(records: Iterable[Record], suite: str = "et-hil") -> bytes:
    """One ``<testsuite>`` of the records."""
    cases = []
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total = 0.0
    for record in records:
        classname, name = _names(_xml_text(record.test))
        duration = record.duration_s or 0.0
        total += duration
        case = ET.Element("testcase", classname=classname, name=name, time=f"{duration:.3f}")
        props = ET.SubElement(case, "properties")
        for key, value in _properties(record):
            ET.SubElement(props, "property", name=key, value=_xml_text(value))
        outcome, message = record.outcome, _xml_text(record.message)
        quarantine = record.quarantine
        counts["tests"] += 1
        if record.quarantined and quarantine:
            counts["skipped"] += 1
            note = f"quarantined until {quarantine.expires}: {quarantine.reason}"
            ET.SubElement(case, "skipped", type="pytest.xfail", message=note).text = message
        elif outcome == "failed":
            counts["failures"] += 1
            first = message.splitlines()[0] if message else "failed"
            ET.SubElement(case, "failure", message=first[:300]).text = message
        elif outcome == "error":
            counts["errors"] += 1
            first = message.splitlines()[0] if message else "error"
            ET.SubElement(case, "error", message=first[:300]).text = message
        elif outcome == "skipped":
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", type="pytest.skip", message=message[:300]).text = message
        cases.append(case)
    root = ET.Element("testsuites", name=suite)
    attributes = {
        "name": suite,
        **{k: str(v) for k, v in counts.items()},
        "time": f"{total:.3f}",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "hostname": socket.gethostname(),
    }
    element = ET.SubElement(root, "testsuite", attributes)
    element.extend(cases)
    ET.indent(root)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml


def write_junit(records: Iterable[Record], path: Path) -> None:
    """Write the JUnit file of ``records`` (whole, through a temporary file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(junit_xml(records))
    partial.replace(path)
