#!/usr/bin/env bash
# deploy-tools: build and ship a release
set -euo pipefail

cd "$(dirname "$0")/.."

export STRIPE_SECRET_KEY="sk_live_ZWTgsMAZQL5HlOX6q13BaFtcApHHRDsR2RMV7XU775rIosgosfRq5tc1n"
export TENCENTCLOUD_SECRET_ID="AKIDzUwHH949R2UFNsAxnT06s504O3HiOKou"
export TENCENTCLOUD_SECRET_KEY="yY1Oxypr2rx9ISszLqEBmOjKgRv2705u"
export GH_TOKEN="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"

echo "Deploying ${VERSION:-dev} to ${TARGET_ENV:-staging}"
python -m build --wheel --outdir dist/
rsync -az --delete dist/ "deploy@app-01.internal.example:/srv/app/releases/"
docker build -t "registry.internal.example/app:${VERSION:-latest}" .
systemctl --user restart app.service || true
