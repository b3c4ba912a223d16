#!/usr/bin/env python3
"""Every metric the alert rules (and, later, the dashboards) query must be one
the running service exports. Usage: check_promql.py METRICS_FILE RULES.yml...

PromQL syntax itself is checked by `promtool check rules`; this checks names.
"""
import re
import sys

import yaml

SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[)")
# Label names and PromQL words can precede "{" only in `by (...)`-free positions we never use.
NOT_METRICS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def exported(metrics_file):
    names = set()
    with open(metrics_file) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def expressions(rules_file):
    with open(rules_file) as f:
        doc = yaml.safe_load(f)
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            yield rule.get("alert") or rule.get("record"), rule["expr"]


def main():
    names = exported(sys.argv[1])
    failures = passed = 0
    for rules_file in sys.argv[2:]:
        for rule, expr in expressions(rules_file):
            for metric in set(SELECTOR.findall(expr)) - NOT_METRICS:
                if metric in names:
                    passed += 1
                else:
                    failures += 1
                    print(f"FAIL {rules_file}: {rule} queries {metric}, which /metrics does not export")
    print(f"promql metric names: {passed} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
