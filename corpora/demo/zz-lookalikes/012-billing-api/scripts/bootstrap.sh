#!/usr/bin/env bash
# billing-api: build and ship a release
set -euo pipefail

cd "$(dirname "$0")/.."

export GH_TOKEN="ghp_MHN78EKqJHvxfQbFOIH1aNJRB1Om5axn5Q9H"

python -m pip install --quiet -r requirements.txt
VERSION="$(git describe --tags --always)"
python -m build --wheel --outdir dist/
find ./tmp -type f -mtime +7 -delete
systemctl --user restart app.service || true
