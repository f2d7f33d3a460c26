"""Judges a focus-validator JUnit report: exit 0 only when no rule failed or errored.

One exception, decided from the validator's own rule model rather than a list of rule ids: a
rule that is one alternative of an OR rule which passed is not a failure of the dataset. (FOCUS
1.2's InvoiceId-C-003-C is "null when not invoiced OR not null when invoiced"; the validator
also reports each alternative on its own, so one of InvoiceId-C-004-C / -C-005-C fails for any
data at all. See FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec#2394.)

usage: focus_verdict.py REPORT.xml MODEL.json LABEL
"""

import json
import sys
import xml.etree.ElementTree as ET


def main() -> int:
    report, model_path, label = sys.argv[1], sys.argv[2], sys.argv[3]
    rules = json.load(open(model_path))["ModelRules"]
    status = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        rule = case.get("name", "").split(" :: ")[0]
        if case.find("failure") is not None:
            status[rule] = "failed"
        elif case.find("error") is not None:
            status[rule] = "errored"
        elif case.find("skipped") is not None:
            status[rule] = "skipped"
        else:
            status[rule] = "passed"
    # OR rules that passed, and the rules they offer as alternatives.
    alternative_of = {}
    for rule_id, rule in rules.items():
        requirement = (rule.get("ValidationCriteria") or {}).get("Requirement") or {}
        if requirement.get("CheckFunction") != "OR" or status.get(rule_id) != "passed":
            continue
        for item in requirement.get("Items", []):
            if item.get("CheckFunction") == "CheckModelRule":
                alternative_of[item["ModelRuleId"]] = rule_id
    judged = [r for r, s in status.items() if s != "skipped"]
    bad = [(r, s) for r, s in sorted(status.items()) if s in ("failed", "errored")]
    excused = [(r, s) for r, s in bad if r in alternative_of]
    real = [(r, s) for r, s in bad if r not in alternative_of]
    passed = sum(1 for s in status.values() if s == "passed")
    print(
        f"{label}: {len(judged)} rules judged, {passed} passed, "
        f"{sum(1 for _, s in real if s == 'failed')} failed, "
        f"{sum(1 for _, s in real if s == 'errored')} errored"
    )
    for rule, state in excused:
        print(f"  {rule} {state}: an alternative of {alternative_of[rule]}, which passed")
    for rule, state in real:
        print(f"  {rule} {state}: {rules.get(rule, {}).get('ValidationCriteria', {}).get('MustSatisfy', '')}")
    return 1 if real else 0


if __name__ == "__main__":
    sys.exit(main())
