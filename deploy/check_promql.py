#!/usr/bin/env python3
"""Every PromQL expression of the alert rules and the Grafana dashboards must
parse (promtool) and query only metrics the running service exports.
Usage: check_promql.py METRICS_FILE (RULES.yml | DASHBOARD.json)...

Dashboard expressions are written into a temporary rules file as recording
rules, so `promtool check rules` parses them like the alerts.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan"}


def metric_names(expr):
    """Identifiers that name series: not functions, keywords, labels or strings."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)          # strings
    e = re.sub(r"\{[^}]*\}", "", e)                        # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                      # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", e):
        name, call = m.group(1), m.group(2)
        if not call and name.lower() not in KEYWORDS:
            names.add(name)
    return names


def exported(metrics_file):
    names = set()
    with open(metrics_file) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def expressions(path):
    if path.endswith(".json"):
        with open(path) as f:
            dashboard = json.load(f)
        for panel in dashboard.get("panels", []):
            for target in panel.get("targets", []):
                if "expr" in target:
                    yield f"panel '{panel.get('title')}'", target["expr"]
        return
    with open(path) as f:
        doc = yaml.safe_load(f)
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            yield rule.get("alert") or rule.get("record"), rule["expr"]


def promtool_parses(path):
    """Dashboards: each expression becomes a recording rule for promtool."""
    rules = [{"record": f"check:expr_{i}", "expr": expr}
             for i, (_, expr) in enumerate(expressions(path))]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}, f)
    try:
        return subprocess.run(["promtool", "check", "rules", f.name]).returncode == 0
    finally:
        os.unlink(f.name)


def main():
    names = exported(sys.argv[1])
    failures = passed = 0
    for rules_file in sys.argv[2:]:
        if not promtool_parses(rules_file):
            failures += 1
            print(f"FAIL {rules_file}: promtool cannot parse its expressions")
        for rule, expr in expressions(rules_file):
            for metric in metric_names(expr):
                if metric in names:
                    passed += 1
                else:
                    failures += 1
                    print(f"FAIL {rules_file}: {rule} queries {metric}, which /metrics does not export")
    print(f"promql metric names: {passed} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
