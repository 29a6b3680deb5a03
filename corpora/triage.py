#!/usr/bin/env python3
r"""Check a scan of the pinned real corpus against its triage, and count.

    triage.py REPORT.jsonl [--triage corpora/triage.tsv]

REPORT is `keysweep scan -f jsonl` over the files of popular.lock.tsv (see
fetch.py). Every medium or high finding must have a row in the triage file,
matched by fingerprint, and every row must still be found: a changed rule or
engine shows up as new or vanished rows. Prints the findings per rule and per
class, and the share of medium+ findings that are not credentials.

Classes: `credential` (a real secret of a real account or service, valid or
not, shipped on purpose or not), `test-credential` (structurally a credential,
but a test vector, fixture, example or docs sample), `not-a-credential` (the
reported string is not a secret at all). The triage file names secrets only by
a prefix of their SHA-256, never by value.
"""
import argparse
import collections
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLASSES = ("credential", "test-credential", "not-a-credential")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", help="keysweep scan -f jsonl output over the pinned corpus")
    ap.add_argument("--triage", default=HERE / "triage.tsv")
    args = ap.parse_args()

    lines = Path(args.triage).read_text().splitlines()
    header = lines[0].split("\t")
    rows = {}
    for n, line in enumerate(lines[1:], 2):
        row = dict(zip(header, line.split("\t")))
        if row.get("class") not in CLASSES:
            sys.exit(f"{args.triage}:{n}: class must be one of {', '.join(CLASSES)}")
        rows[row["fingerprint"]] = row

    findings = [json.loads(l) for l in open(args.report) if l.strip()]
    findings = [f for f in findings if f["confidence"] in ("medium", "high")]
    seen = {f["fingerprint"] for f in findings}
    untriaged = [f for f in findings if f["fingerprint"] not in rows]
    vanished = [r for fp, r in rows.items() if fp not in seen]

    per_rule = collections.defaultdict(collections.Counter)
    for f in findings:
        row = rows.get(f["fingerprint"])
        per_rule[f["rule"]["id"]][row["class"] if row else "untriaged"] += 1
    columns = CLASSES + ("untriaged",)
    print(f"{'rule':<36} " + " ".join(f"{c:>16}" for c in columns))
    totals = collections.Counter()
    for rule in sorted(per_rule):
        totals.update(per_rule[rule])
        print(f"{rule:<36} " + " ".join(f"{per_rule[rule][c]:>16}" for c in columns))
    print(f"{'total':<36} " + " ".join(f"{totals[c]:>16}" for c in columns))
    share = totals["not-a-credential"] / max(1, len(findings))
    print(f"{len(findings)} medium+ findings; not a credential: {totals['not-a-credential']} ({share:.1%})")

    for f in untriaged:
        loc = f["location"]
        print(f"untriaged: {f['fingerprint']} {f['rule']['id']} {loc['path']}!{'!'.join(loc['members'])}:{loc['line']}",
              file=sys.stderr)
    for r in vanished:
        print(f"no longer found: {r['fingerprint']} {r['rule']} {r['file']}!{r['members']}:{r['line']}", file=sys.stderr)
    return 1 if untriaged or vanished else 0


if __name__ == "__main__":
    sys.exit(main())
