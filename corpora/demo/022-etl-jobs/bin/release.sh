#!/usr/bin/env bash
# etl-jobs: build and ship a release
set -euo pipefail

cd "$(dirname "$0")/.."

mkdir -p "$HOME/.ssh"
cat > "$HOME/.ssh/id_deploy" <<'EOF'
-----BEGIN RSA PRIVATE KEY-----
MIIEogIBAAKCAQEAkaWVxj6jlRgy21vrmqbUelE3eNgKtAw2nM++KvYddchSKyGX
K8OIgYvdjasT+bH7O4MdbA/WvGgaXUtIPdpgqBiyW2p9BMfo7dMEtvFDsjKnNpSw
LEAtxhijqi5krbIYdxSRpCc+d2CFVoHeUcbbjY2sJ4WvrrbqQAKG227QFn4rIIEO
OyYaqfYUAKv/VSxnnZ8C8i/u2alPo2GxXEUfVCz6WY1PRLpI2QgdhasigcI6qz0m
oexmvwm3cyirEBCc7YzP+6yp8GlZi2/PN4Z1StnndzuDFvT6/LcZ+SoLaHvVTzX0
fCOaKdwc30rVnzwKMsZysNmdkKO+h5DlZy1C1wIDAQABAoIBABY9yxlzB1gFUf7d
kqUTRO9I58e0di34j35y2v+EhgsuhB3CC2vLeFUQHs07itlerJbx9tRBtvEelKga
jvWjG4+P9eyv3leUj6WBy/6D6WqVAaP8IMshIdxWdufOHeHIiKPmqDcBJzDjtHj5
bBHg5DZBpECE0cdEd5E+0YlA6tYEQ2e8lUn5tzq8O8r3aLxm07nY99iVFsn3RMY8
mTx4sI/9NL4L3y4unZ9tCCtJTaeg9zPgWvkLhOnu243Ai6TALUcr0WVjNyhvbOOF
hmWq4We91K2iVOlzoppE75qv+k1auUHYYC+mImfae2cM7aa3XUschM1nHzOxGyQL
ZSoPSYECgYEAwoDRm7lW10wcndNLzvR+xlb/b/bNERL97FhJeeDybUUvfnO9DrN5
/T6g5htJWhDd2d8Cj0UNsqrPL2WqFGHeTl0+lfVC+3gG1jwM0Yh7ka39gfyWPe6r
hDAQOOXF5bkuYPW+gGypMNBmaXXDGqrCSdGvqBSUKWhEnrrkAxEZbo8CgYEAv7JO
uvw1JCXlKd5N4bMoaJMJiE0dTlml5Ri4DRg61Dcn7WM9ZPCrBKT583fZrP7x6fwg
BJpMpTSrWa/e78QzEtOaVjvo2Vm5waYXOfhFB4/Io2UvIT/OX7qn2r3dKgzlvUmq
+EE/bHhwgGsoqKYtHWzpXUkWrcsMr4buipzEizkCgYAQOmdCsugH9pW8pVCB5+xb
6A5P7SuW7Rq6iXM39AjGDSu1RTrU6yyWcI9EI6qvFREtiGnSQlSuP4ohzj2ujava
pfT+1gPMr2sCnOgE43pL4VRxb/2pFSzCTrBLzv//9r9j350RYf+Lzxd8XRL2OqET
P6eEQpNKESUIiVdU2ixhCQKBgGi/YxvzooodFurY6Y+x2RvDdMsA8EmW3Pqhlji5
i7PYa73go3SbuadxCo/KZqyMJt5ngYtiUQ1ZCWSZoGU9vXbFH6mNVQAnckRpoHlx
uy6Vl9oI+Ube2cMfeIcjhk1q/MKBFaZP6Ps5mKfjZjU5kJ9qmt35iSXwNP9Y6NHf
NdqpAoGACW1EZaQZmECjv81I6uYgs55HYzyDXeIowJmyx/DRo2zQYjLrGCaiSztB
lSI91NPVbk87+AFgL0a2IeNAJfH8MgXc+Y6ckGS4RBhZg3B3r5E6vKz7CwCG1aVf
UcaCWRSUJ4+Qkbz2o8ZvJZ+vW6FNthn0Qd0b8ThphDymvcY9vdk=
-----END RSA PRIVATE KEY-----
EOF
chmod 600 "$HOME/.ssh/id_deploy"
export ALIBABA_CLOUD_ACCESS_KEY_ID="LTAIUfjXcV7pjW4dht12Bvtg"
export ALIBABA_CLOUD_ACCESS_KEY_SECRET="CSnqHb1EsEGo7j7qgTwD5voy8D1o0t"
export TWILIO_ACCOUNT_SID="AC6a190cfe967fc9165076502645b6be26"
export TWILIO_AUTH_TOKEN="e7a1b97a8f1b8179fbe4f135a832c7ea"

python -m pip install --quiet -r requirements.txt
echo "Deploying ${VERSION:-dev} to ${TARGET_ENV:-staging}"
python -m build --wheel --outdir dist/
rsync -az --delete dist/ "deploy@app-01.internal.example:/srv/app/releases/"
docker build -t "registry.internal.example/app:${VERSION:-latest}" .
