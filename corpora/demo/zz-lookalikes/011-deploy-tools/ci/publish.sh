#!/usr/bin/env bash
# deploy-tools: build and ship a release
set -euo pipefail

cd "$(dirname "$0")/.."

export DATABASE_PASSWORD="${POSTGRES_PASSWORD}"
export AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE"
export AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

python -m pip install --quiet -r requirements.txt
VERSION="$(git describe --tags --always)"
docker build -t "registry.internal.example/app:${VERSION:-latest}" .
systemctl --user restart app.service || true
