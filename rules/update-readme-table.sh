#!/bin/sh
# Rewrites the rule table in README.md from the rules (`keysweep rules list --markdown`).
set -eu
cd "$(dirname "$0")/.."
table=$(mktemp)
cargo run -q --release -p keysweep-cli -- rules list --markdown > "$table"
python3 - "$table" <<'PY'
import sys
begin, end = "<!-- rules table: keysweep rules list --markdown -->\n", "<!-- end of rules table -->"
readme = open("README.md").read()
start = readme.index(begin) + len(begin)
stop = readme.index(end, start)
open("README.md", "w").write(readme[:start] + open(sys.argv[1]).read() + readme[stop:])
PY
rm -f "$table"
