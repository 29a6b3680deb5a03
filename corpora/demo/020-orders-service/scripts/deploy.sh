#!/usr/bin/env bash
# orders-service: build and ship a release
set -euo pipefail

cd "$(dirname "$0")/.."

export AWS_ACCESS_KEY_ID="AKIA6IU5U4UB4Z2BFQAS"
export AWS_SECRET_ACCESS_KEY="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"
mkdir -p "$HOME/.ssh"
cat > "$HOME/.ssh/id_deploy" <<'EOF'
-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIC/Xnpgyy0xD0fnvpCDCSLp/SV8mJaDaUVSIPKXHm3hQ
-----END PRIVATE KEY-----
EOF
chmod 600 "$HOME/.ssh/id_deploy"
export GH_PAT="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"

python -m pip install --quiet -r requirements.txt
echo "Deploying ${VERSION:-dev} to ${TARGET_ENV:-staging}"
docker build -t "registry.internal.example/app:${VERSION:-latest}" .
find ./tmp -type f -mtime +7 -delete
systemctl --user restart app.service || true
