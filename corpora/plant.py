#!/usr/bin/env python3
"""Generate a labelled corpus for measuring a secret scanner's recall and precision.

    python3 corpora/plant.py OUTDIR [--seed N] [--count-per-kind K]
                                    [--lookalikes-only | --planted-only]

OUTDIR/planted/     realistic source and config files (Python, settings.py, .ini/.cfg, .toml,
                    .env, YAML, JSON, Jupyter notebooks, shell, Dockerfile, .pypirc, .netrc,
                    pip.conf), each embedding one or more secrets generated at random in their
                    provider's real format (checksums included), in a realistic context.
OUTDIR/lookalikes/  the same kinds of files holding strings a good scanner must NOT report at
                    medium confidence or above: documented example keys, placeholders, hashes,
                    UUIDs, bad-checksum or wrong-length tokens, environment look-ups, ...

Each directory has a manifest.jsonl with one object per planted secret / look-alike:
    {"file": path relative to that directory, "kind": ..., "secret": ..., "line": 1-based}
"secret" is the string exactly as written in the file, starting on "line" (so inside JSON
files, e.g. a service-account private key, it is the JSON-escaped text). For connection
URIs, .netrc, .pypirc and pip.conf it is the password itself; for webhook URLs, the URL.

Standard library only. PEM keys come from the openssl and ssh-keygen binaries; kinds that
need a missing binary are skipped with a warning. Everything but the key material is
deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import shutil
import string
import subprocess
import sys
import tempfile
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Callable

# --------------------------------------------------------------------------------------
# Alphabets and random-looking strings
# --------------------------------------------------------------------------------------

DIGITS = string.digits
HEX = "0123456789abcdef"
LETTERS = string.ascii_letters
UPPER_ALNUM = string.ascii_uppercase + string.digits
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase  # GitHub checksum order
ALNUM = BASE62
BASE64_STD = string.ascii_letters + string.digits + "+/"
BASE64URL = string.ascii_letters + string.digits + "-_"
AWS_KEY_ID_CHARS = string.ascii_uppercase + "234567"
PASSWORD_CHARS = string.ascii_letters + string.digits + "-_."

# Substrings that make a string look like a placeholder rather than a live secret.
NON_RANDOM_WORDS = ("example", "test", "dummy", "fake", "sample", "xxxx", "changeme")
REPEATED_CHAR_RUN = re.compile(r"(.)\1\1")

INTERNAL_DOMAIN = "internal.example"


def looks_random(text: str) -> bool:
    """No run of three identical characters and no placeholder-ish word."""
    lowered = text.lower()
    return not REPEATED_CHAR_RUN.search(text) and not any(w in lowered for w in NON_RANDOM_WORDS)


def until_random_looking(make: Callable[[], str]) -> str:
    for _ in range(10_000):
        candidate = make()
        if looks_random(candidate):
            return candidate
    raise RuntimeError("could not produce a random-looking string")


def chars(rng: Random, alphabet: str, length: int) -> str:
    """length characters drawn from alphabet (unchecked; wrap the whole token in until_random_looking)."""
    return "".join(rng.choices(alphabet, k=length))


def random_chars(rng: Random, alphabet: str, length: int) -> str:
    return until_random_looking(lambda: chars(rng, alphabet, length))


def random_token(rng: Random, prefix: str, alphabet: str, length: int, suffix: str = "") -> str:
    """prefix + random part + suffix, checked as a whole so no run spans a join."""
    return until_random_looking(lambda: prefix + chars(rng, alphabet, length) + suffix)


def random_digits(rng: Random, length: int) -> str:
    """Digits without a leading zero."""
    return until_random_looking(lambda: rng.choice("123456789") + chars(rng, DIGITS, length - 1))


def random_bytes(rng: Random, length: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(length))


def random_password(rng: Random, length: int) -> str:
    """A strong password: starts with a letter, mixes digits, upper and lower case."""
    while True:
        password = rng.choice(LETTERS) + random_chars(rng, PASSWORD_CHARS, length - 1)
        if looks_random(password) and all(any(test(c) for c in password) for test in (str.isdigit, str.isupper, str.islower)):
            return password


def random_uuid(rng: Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def b64url_nopad(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def base62_crc32(text: str) -> str:
    """CRC32 of text as 6 base62 digits (0-9A-Za-z), zero-padded: the GitHub/npm checksum."""
    value = zlib.crc32(text.encode())
    digits = ""
    while value:
        value, remainder = divmod(value, 62)
        digits = BASE62[remainder] + digits
    return digits.rjust(6, "0")


def checksummed_token(rng: Random, prefix: str) -> str:
    """prefix + 30 random base62 chars + base62 CRC32 of those 30 chars (GitHub, npm)."""

    def make() -> str:
        body = chars(rng, BASE62, 30)
        return prefix + body + base62_crc32(body)

    return until_random_looking(make)


# --------------------------------------------------------------------------------------
# What generators produce
# --------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One named value written into a file (a planted secret or a look-alike).

    name    variable / key name, e.g. "AWS_SECRET_ACCESS_KEY" (renderers adapt the case)
    value   the text written as the value (a URI may hold the secret inside it)
    secret  the part of value recorded in the manifest; defaults to the whole value
    raw     value is a Python expression, not a string literal
    code    per-format alternative statements with "{value}" in them (e.g. a client call)
    context extra facts for special files (login name, host, key file name)
    """

    kind: str
    name: str
    value: str
    secret: str = ""
    raw: bool = False
    code: dict[str, str] = field(default_factory=dict)
    context: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.secret:
            self.secret = self.value


@dataclass
class KindSpec:
    generate: Callable[[Random], list[Entry]]  # one bundle: entries kept together in one file
    formats: tuple[str, ...]  # file formats this bundle may be written in
    needs: tuple[str, ...] = ()  # binaries required (openssl, ssh-keygen)


GENERIC_FORMATS = ("py", "settings", "ini", "toml", "env", "yaml", "json", "ipynb", "sh", "dockerfile")
MULTILINE_FORMATS = ("py", "sh", "toml", "env")  # formats that hold a PEM block verbatim
PYTHON_FORMATS = ("py", "settings", "ipynb")
JSON_FORMATS = ("json", "ipynb", "gcp_service_account")

# --------------------------------------------------------------------------------------
# Planted secrets: one generator per kind
# --------------------------------------------------------------------------------------


def generate_aws_key_pair(rng: Random) -> list[Entry]:
    key_id = random_token(rng, "AKIA", AWS_KEY_ID_CHARS, 16)
    secret_key = random_chars(rng, BASE64_STD, 40)
    return [
        Entry("aws_access_key_id", "AWS_ACCESS_KEY_ID", key_id),
        Entry("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", secret_key),
    ]


def github_classic_generator(prefix: str, kind: str) -> Callable[[Random], list[Entry]]:
    names = {
        "ghp_": ["GITHUB_TOKEN", "GH_TOKEN", "GITHUB_PAT", "GITHUB_ACCESS_TOKEN"],
        "gho_": ["GITHUB_OAUTH_TOKEN", "GH_OAUTH_TOKEN"],
        "ghs_": ["GITHUB_APP_TOKEN", "GITHUB_INSTALLATION_TOKEN"],
        "ghu_": ["GITHUB_USER_TOKEN", "GH_APP_USER_TOKEN"],
        "ghr_": ["GITHUB_REFRESH_TOKEN", "GH_REFRESH_TOKEN"],
    }[prefix]

    def generate(rng: Random) -> list[Entry]:
        token = checksummed_token(rng, prefix)
        return [Entry(kind, rng.choice(names), token, code={
            "py": 'session.headers["Authorization"] = "token {value}"',
            "sh": 'curl -fsSL -H "Authorization: token {value}" "https://api.github.com/repos/$REPO/releases/latest"',
        })]

    generate.__name__ = f"generate_{kind}"
    return generate


def generate_github_fine_grained_pat(rng: Random) -> list[Entry]:
    token = until_random_looking(lambda: f"github_pat_{chars(rng, ALNUM, 22)}_{chars(rng, ALNUM, 59)}")
    return [Entry("github_fine_grained_pat", rng.choice(["GITHUB_TOKEN", "GH_PAT", "GITHUB_FINE_GRAINED_TOKEN"]), token)]


def generate_github_token_hex(rng: Random) -> list[Entry]:
    """Old-style 40-hex OAuth token: only recognisable by the github/token keyword next to it."""
    token = random_chars(rng, HEX, 40)
    return [Entry("github_token_hex", rng.choice(["GITHUB_TOKEN", "GITHUB_ACCESS_TOKEN", "GITHUB_OAUTH_TOKEN"]), token, code={
        "py": (
            "def download_workflow(owner: str, repo: str) -> bytes:\n"
            '    return _fetch_github_file(owner, repo, ".github/workflows/ci.yml", access_token="{value}")'
        ),
    })]


def generate_gitlab_pat(rng: Random) -> list[Entry]:
    token = random_token(rng, "glpat-", BASE64URL, 20)
    return [Entry("gitlab_pat", rng.choice(["GITLAB_TOKEN", "GITLAB_PRIVATE_TOKEN", "GL_TOKEN"]), token, code={
        "sh": 'curl -fsS --header "PRIVATE-TOKEN: {value}" "https://gitlab.internal.example/api/v4/projects"',
    })]


def varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def macaroon_v2(location: str, identifier: str, caveats: list[str], signature: bytes) -> bytes:
    """Binary (v2) macaroon layout, as used by PyPI upload tokens."""

    def packet(field_type: int, data: bytes) -> bytes:
        return bytes([field_type]) + varint(len(data)) + data

    out = b"\x02" + packet(1, location.encode()) + packet(2, identifier.encode()) + b"\x00"
    for caveat in caveats:
        out += packet(2, caveat.encode()) + b"\x00"
    return out + b"\x00" + packet(6, signature)


# Documented PyPI upload-token prefixes: "pypi-" + the start of the base64url macaroon,
# whose header names the index (main or test) the token is for.
MAIN_INDEX_TOKEN_PREFIX = "pypi-AgEIcHlwaS5vcmc"
TEST_INDEX_TOKEN_PREFIX = "pypi-AgENdGVzdC5weXBpLm9yZw"


def macaroon_location(token_prefix: str) -> str:
    """The location field (the index) encoded in a token prefix: 02 01 <len> <location>."""
    encoded = token_prefix.removeprefix("pypi-")
    header = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    return header[3:3 + header[2]].decode()


def make_pypi_token(rng: Random, token_prefix: str) -> str:
    """pypi- + base64url (unpadded) of a v2 macaroon. The macaroon's fixed framing always
    encodes to a run ("...AAAGI..." before the signature), so only placeholder words are
    ruled out here, not repeated characters."""
    while True:
        token = make_pypi_token_candidate(rng, macaroon_location(token_prefix))
        assert token.startswith(token_prefix)
        if not any(word in token.lower() for word in NON_RANDOM_WORDS):
            return token


def make_pypi_token_candidate(rng: Random, location: str) -> str:
    if rng.random() < 0.5:
        caveat = json.dumps({"version": 1, "permissions": "user"})
    else:
        project = rng.choice(["orders-client", "acme-utils", "fastgeo", "ledgerkit", "pyhooks"])
        caveat = json.dumps({"version": 1, "permissions": {"projects": [project]}})
    body = macaroon_v2(location, random_uuid(rng), [caveat], random_bytes(rng, 32))
    return "pypi-" + b64url_nopad(body)


def generate_pypi_token(rng: Random) -> list[Entry]:
    return [Entry("pypi_token", rng.choice(["PYPI_API_TOKEN", "TWINE_PASSWORD", "PYPI_TOKEN"]), make_pypi_token(rng, MAIN_INDEX_TOKEN_PREFIX))]


def generate_pypi_test_token(rng: Random) -> list[Entry]:
    token = make_pypi_token(rng, TEST_INDEX_TOKEN_PREFIX)
    return [Entry("pypi_test_token", rng.choice(["TEST_PYPI_API_TOKEN", "TESTPYPI_TOKEN"]), token)]


def generate_google_api_key(rng: Random) -> list[Entry]:
    key = random_token(rng, "AIza", BASE64URL, 35)
    return [Entry("google_api_key", rng.choice(["GOOGLE_API_KEY", "MAPS_API_KEY", "FIREBASE_API_KEY", "YOUTUBE_API_KEY"]), key)]


def generate_gcp_service_account(rng: Random) -> list[Entry]:
    project_id = rng.choice(["orders", "analytics", "ingest", "ml-platform", "billing"]) + "-" + random_digits(rng, 6)
    account = rng.choice(["etl-runner", "deployer", "bq-reader", "storage-sync"])
    pem = openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
    return [Entry("gcp_service_account", "private_key", pem, context={
        "project_id": project_id,
        "client_email": f"{account}@{project_id}.iam.gserviceaccount.com",
        "private_key_id": random_chars(rng, HEX, 40),
        "client_id": random_digits(rng, 21),
    })]


def generate_slack_bot_token(rng: Random) -> list[Entry]:
    def make() -> str:
        return f"xoxb-{random_digits(rng, rng.randint(10, 13))}-{random_digits(rng, 13)}-{chars(rng, ALNUM, 24)}"

    return [Entry("slack_bot_token", rng.choice(["SLACK_BOT_TOKEN", "SLACK_TOKEN", "SLACK_API_TOKEN"]), until_random_looking(make))]


def generate_slack_webhook(rng: Random) -> list[Entry]:
    url = until_random_looking(lambda: (
        "https://hooks.slack.com/services/"
        f"T{chars(rng, UPPER_ALNUM, rng.choice([8, 10]))}/"
        f"B{chars(rng, UPPER_ALNUM, rng.choice([8, 10, 11]))}/"
        f"{chars(rng, ALNUM, 24)}"
    ))
    return [Entry("slack_webhook", rng.choice(["SLACK_WEBHOOK_URL", "SLACK_WEBHOOK", "ALERTS_WEBHOOK_URL"]), url, code={
        "py": 'requests.post("{value}", json={"text": message}, timeout=10)',
        "sh": """curl -fsS -X POST -H 'Content-type: application/json' --data '{"text": "deploy finished"}' {value}""",
    })]


def generate_stripe_secret_key(rng: Random) -> list[Entry]:
    key = random_token(rng, "sk_live_", ALNUM, rng.randint(24, 99))
    return [Entry("stripe_secret_key", rng.choice(["STRIPE_SECRET_KEY", "STRIPE_API_KEY"]), key, code={"py": 'stripe.api_key = "{value}"'})]


def generate_stripe_restricted_key(rng: Random) -> list[Entry]:
    key = random_token(rng, "rk_live_", ALNUM, rng.randint(24, 99))
    return [Entry("stripe_restricted_key", rng.choice(["STRIPE_RESTRICTED_KEY", "STRIPE_READ_KEY"]), key)]


def generate_telegram_bot_token(rng: Random) -> list[Entry]:
    token = until_random_looking(lambda: f"{random_digits(rng, rng.randint(8, 10))}:AA{chars(rng, BASE64URL, 33)}")
    return [Entry("telegram_bot_token", rng.choice(["TELEGRAM_BOT_TOKEN", "TG_BOT_TOKEN", "BOT_TOKEN"]), token, code={
        "py": 'bot = telebot.TeleBot("{value}", parse_mode="HTML")',
    })]


def generate_discord_bot_token(rng: Random) -> list[Entry]:
    def make() -> str:
        bot_id = random_digits(rng, rng.choice([18, 19]))
        return (
            b64url_nopad(bot_id.encode())
            + "." + chars(rng, BASE64URL, 6)
            + "." + chars(rng, BASE64URL, rng.randint(27, 38))
        )

    return [Entry("discord_bot_token", rng.choice(["DISCORD_TOKEN", "DISCORD_BOT_TOKEN"]), until_random_looking(make), code={
        "py": 'bot.run("{value}")',
    })]


def generate_discord_webhook(rng: Random) -> list[Entry]:
    url = random_token(rng, f"https://discord.com/api/webhooks/{random_digits(rng, rng.choice([18, 19]))}/", BASE64URL, 68)
    return [Entry("discord_webhook", rng.choice(["DISCORD_WEBHOOK_URL", "DISCORD_WEBHOOK"]), url)]


def generate_twilio_credentials(rng: Random) -> list[Entry]:
    return [
        Entry("twilio_account_sid", "TWILIO_ACCOUNT_SID", random_token(rng, "AC", HEX, 32)),
        Entry("twilio_auth_token", "TWILIO_AUTH_TOKEN", random_chars(rng, HEX, 32)),
    ]


def generate_sendgrid_api_key(rng: Random) -> list[Entry]:
    key = until_random_looking(lambda: f"SG.{chars(rng, BASE64URL, 22)}.{chars(rng, BASE64URL, 43)}")
    return [Entry("sendgrid_api_key", rng.choice(["SENDGRID_API_KEY", "EMAIL_API_KEY"]), key, code={
        "py": 'mail_client = SendGridAPIClient("{value}")',
    })]


def generate_mailgun_api_key(rng: Random) -> list[Entry]:
    return [Entry("mailgun_api_key", rng.choice(["MAILGUN_API_KEY", "MAILGUN_KEY"]), random_token(rng, "key-", HEX, 32))]


def generate_openai_api_key(rng: Random) -> list[Entry]:
    key = until_random_looking(lambda: f"sk-proj-{chars(rng, BASE64URL, 74)}T3BlbkFJ{chars(rng, BASE64URL, 74)}")
    return [Entry("openai_api_key", "OPENAI_API_KEY", key, code={"py": 'client = OpenAI(api_key="{value}")'})]


def generate_anthropic_api_key(rng: Random) -> list[Entry]:
    key = random_token(rng, "sk-ant-api03-", BASE64URL, 93, suffix="AA")
    return [Entry("anthropic_api_key", "ANTHROPIC_API_KEY", key, code={"py": 'client = anthropic.Anthropic(api_key="{value}")'})]


def generate_huggingface_token(rng: Random) -> list[Entry]:
    token = random_token(rng, "hf_", LETTERS, 34)
    return [Entry("huggingface_token", rng.choice(["HF_TOKEN", "HUGGINGFACE_HUB_TOKEN", "HUGGING_FACE_TOKEN"]), token, code={
        "py": 'huggingface_hub.login(token="{value}")',
    })]


def generate_npm_token(rng: Random) -> list[Entry]:
    return [Entry("npm_token", rng.choice(["NPM_TOKEN", "NODE_AUTH_TOKEN", "NPM_AUTH_TOKEN"]), checksummed_token(rng, "npm_"))]


def generate_dockerhub_pat(rng: Random) -> list[Entry]:
    token = random_token(rng, "dckr_pat_", BASE64URL, 27)
    return [Entry("dockerhub_pat", rng.choice(["DOCKERHUB_TOKEN", "DOCKER_PASSWORD", "DOCKER_HUB_TOKEN"]), token, code={
        "sh": 'echo "{value}" | docker login --username "$DOCKER_USER" --password-stdin',
    })]


def generate_digitalocean_pat(rng: Random) -> list[Entry]:
    token = random_token(rng, "dop_v1_", HEX, 64)
    return [Entry("digitalocean_pat", rng.choice(["DIGITALOCEAN_TOKEN", "DO_API_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN"]), token)]


def generate_databricks_token(rng: Random) -> list[Entry]:
    return [Entry("databricks_token", rng.choice(["DATABRICKS_TOKEN", "DATABRICKS_API_TOKEN"]), random_token(rng, "dapi", HEX, 32))]


def generate_shopify_access_token(rng: Random) -> list[Entry]:
    token = random_token(rng, "shpat_", HEX, 32)
    return [Entry("shopify_access_token", rng.choice(["SHOPIFY_ACCESS_TOKEN", "SHOPIFY_ADMIN_TOKEN"]), token)]


def generate_azure_storage_connection_string(rng: Random) -> list[Entry]:
    account = rng.choice(["ordersprod", "mlartifacts", "backupstore", "logsarchive"]) + random_chars(rng, DIGITS + "abcdef", 4)
    account_key = until_random_looking(lambda: base64.b64encode(random_bytes(rng, 64)).decode())
    connection = (
        f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={account_key};"
        "EndpointSuffix=core.windows.net"
    )
    return [Entry("azure_storage_account_key", "AZURE_STORAGE_CONNECTION_STRING", connection, secret=account_key)]


def generate_alibaba_access_key(rng: Random) -> list[Entry]:
    return [
        Entry("alibaba_access_key_id", "ALIBABA_CLOUD_ACCESS_KEY_ID", random_token(rng, "LTAI", ALNUM, 20)),
        Entry("alibaba_access_key_secret", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", random_chars(rng, ALNUM, 30)),
    ]


def generate_tencent_secret(rng: Random) -> list[Entry]:
    return [
        Entry("tencent_secret_id", "TENCENTCLOUD_SECRET_ID", random_token(rng, "AKID", ALNUM, 32)),
        Entry("tencent_secret_key", "TENCENTCLOUD_SECRET_KEY", random_chars(rng, ALNUM, 32)),
    ]


def private_key_entry(kind: str, rng: Random, pem: str) -> list[Entry]:
    name = rng.choice(["PRIVATE_KEY", "DEPLOY_KEY", "SIGNING_KEY", "SSH_PRIVATE_KEY"])
    key_file = rng.choice(["deploy_key", "id_deploy", "signing.pem", "service.key"])
    return [Entry(kind, name, pem, context={"key_file": key_file})]


def generate_private_key_rsa(rng: Random) -> list[Entry]:
    return private_key_entry("private_key_rsa", rng, openssl(["genrsa", "-traditional", "2048"]))


def generate_private_key_ec(rng: Random) -> list[Entry]:
    curve = rng.choice(["prime256v1", "secp384r1"])
    return private_key_entry("private_key_ec", rng, openssl(["ecparam", "-name", curve, "-genkey", "-noout"]))


def generate_private_key_pkcs8(rng: Random) -> list[Entry]:
    algorithm = rng.choice([
        ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        ["-algorithm", "ed25519"],
    ])
    return private_key_entry("private_key_pkcs8", rng, openssl(["genpkey", *algorithm]))


def generate_private_key_openssh(rng: Random) -> list[Entry]:
    key_type = rng.choice(["ed25519", "ecdsa"])
    comment = rng.choice(["deploy@ci", "ops@bastion", "release-bot"])
    with tempfile.TemporaryDirectory() as scratch:
        key_path = Path(scratch) / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", comment, "-f", str(key_path)],
                       check=True, capture_output=True)
        pem = key_path.read_text().strip()
    return private_key_entry("private_key_openssh", rng, pem)


def generate_jwt(rng: Random) -> list[Entry]:
    header = {"alg": "HS256", "typ": "JWT"}
    issued_at = rng.randint(1_690_000_000, 1_730_000_000)
    payload = {
        "sub": random_uuid(rng),
        "name": rng.choice(["Ana Lima", "Kenji Sato", "Priya Nair", "Jonas Berg", "ingest-worker"]),
        "role": rng.choice(["admin", "service", "editor"]),
        "iat": issued_at,
        "exp": issued_at + rng.choice([3600, 86_400, 31_536_000]),
    }

    def encode(part: dict) -> str:
        return b64url_nopad(json.dumps(part, separators=(",", ":")).encode())

    token = encode(header) + "." + encode(payload) + "." + random_chars(rng, BASE64URL, 43)
    return [Entry("jwt", rng.choice(["API_JWT", "SERVICE_AUTH_TOKEN", "BEARER_TOKEN"]), token, code={
        "py": 'HEADERS = {"Authorization": "Bearer {value}", "Accept": "application/json"}',
        "sh": 'curl -fsS -H "Authorization: Bearer {value}" "https://api.internal.example/v1/reports"',
    })]


def connection_uri_generator(kind: str, names: list[str], build: Callable[[Random, str], str]):
    def generate(rng: Random) -> list[Entry]:
        password = random_password(rng, rng.randint(16, 28))
        return [Entry(kind, rng.choice(names), build(rng, password), secret=password)]

    generate.__name__ = f"generate_{kind}"
    return generate


def host(rng: Random, role: str) -> str:
    return f"{role}-{rng.choice(['prod', 'staging', 'eu1', 'us2'])}.{INTERNAL_DOMAIN}"


def database_name(rng: Random) -> str:
    return rng.choice(["orders", "billing", "analytics", "inventory", "app"])


def db_user(rng: Random) -> str:
    return rng.choice(["app", "svc_orders", "reporting", "etl", "admin_ro"])


generate_postgres_uri = connection_uri_generator(
    "postgres_uri", ["DATABASE_URL", "POSTGRES_URL", "SQLALCHEMY_DATABASE_URI"],
    lambda rng, pw: f"postgresql://{db_user(rng)}:{pw}@{host(rng, 'pg')}:5432/{database_name(rng)}",
)
generate_mysql_uri = connection_uri_generator(
    "mysql_uri", ["MYSQL_URL", "DATABASE_URL", "DB_DSN"],
    lambda rng, pw: f"mysql://{db_user(rng)}:{pw}@{host(rng, 'mysql')}:3306/{database_name(rng)}",
)
generate_mongodb_uri = connection_uri_generator(
    "mongodb_uri", ["MONGO_URI", "MONGODB_URL", "MONGO_CONNECTION_STRING"],
    lambda rng, pw: (
        f"mongodb+srv://{db_user(rng)}:{pw}@cluster0.{random_chars(rng, string.ascii_lowercase + DIGITS, 5)}.mongodb.net/"
        f"{database_name(rng)}?retryWrites=true&w=majority"
    ),
)
generate_redis_uri = connection_uri_generator(
    "redis_uri", ["REDIS_URL", "CACHE_URL"],
    lambda rng, pw: f"redis://default:{pw}@{host(rng, 'redis')}:6379/{rng.randint(0, 3)}",
)
generate_redis_uri_password_only = connection_uri_generator(
    "redis_uri", ["REDIS_URL", "CELERY_RESULT_BACKEND"],
    lambda rng, pw: f"redis://:{pw}@{host(rng, 'redis')}:6379/{rng.randint(0, 3)}",
)
generate_amqp_uri = connection_uri_generator(
    "amqp_uri", ["CELERY_BROKER_URL", "AMQP_URL", "RABBITMQ_URL"],
    lambda rng, pw: f"amqp://{db_user(rng)}:{pw}@{host(rng, 'rabbitmq')}:5672/{rng.choice(['%2F', 'jobs', 'events'])}",
)


def generate_pypirc_password(rng: Random) -> list[Entry]:
    username = rng.choice(["acme-release", "jlindqvist", "ops-publisher"])
    return [Entry("pypirc_password", "pypi", random_password(rng, rng.randint(16, 24)), context={"username": username})]


def generate_pypirc_token(rng: Random) -> list[Entry]:
    return [Entry("pypi_token", "pypi", make_pypi_token(rng, MAIN_INDEX_TOKEN_PREFIX), context={"username": "__token__"})]


def generate_netrc_password(rng: Random) -> list[Entry]:
    machine = rng.choice(["git", "artifacts", "registry", "ftp", "api"]) + "." + INTERNAL_DOMAIN
    login = rng.choice(["deploy-bot", "ci", "mkowalski", "backup"])
    return [Entry("netrc_password", machine, random_password(rng, rng.randint(14, 24)), context={"login": login})]


def generate_pip_index_credential(rng: Random) -> list[Entry]:
    user = rng.choice(["ci-reader", "deploy", "build-agent"])
    token = random_chars(rng, ALNUM, rng.randint(28, 40))
    url = f"https://{user}:{token}@packages.{INTERNAL_DOMAIN}/simple"
    return [Entry("pip_index_credential", rng.choice(["index-url", "extra-index-url"]), url, secret=token)]


KIND_GENERATORS: dict[str, KindSpec] = {
    "aws_access_key": KindSpec(generate_aws_key_pair, GENERIC_FORMATS),
    "github_pat": KindSpec(github_classic_generator("ghp_", "github_pat"), GENERIC_FORMATS),
    "github_oauth": KindSpec(github_classic_generator("gho_", "github_oauth"), GENERIC_FORMATS),
    "github_app_server": KindSpec(github_classic_generator("ghs_", "github_app_server"), GENERIC_FORMATS),
    "github_app_user": KindSpec(github_classic_generator("ghu_", "github_app_user"), GENERIC_FORMATS),
    "github_refresh": KindSpec(github_classic_generator("ghr_", "github_refresh"), GENERIC_FORMATS),
    "github_fine_grained_pat": KindSpec(generate_github_fine_grained_pat, GENERIC_FORMATS),
    "github_token_hex": KindSpec(generate_github_token_hex, GENERIC_FORMATS),
    "gitlab_pat": KindSpec(generate_gitlab_pat, GENERIC_FORMATS),
    "pypi_token": KindSpec(generate_pypi_token, GENERIC_FORMATS),
    "pypi_test_token": KindSpec(generate_pypi_test_token, GENERIC_FORMATS),
    "google_api_key": KindSpec(generate_google_api_key, GENERIC_FORMATS),
    "gcp_service_account": KindSpec(generate_gcp_service_account, ("gcp_service_account",), needs=("openssl",)),
    "slack_bot_token": KindSpec(generate_slack_bot_token, GENERIC_FORMATS),
    "slack_webhook": KindSpec(generate_slack_webhook, GENERIC_FORMATS),
    "stripe_secret_key": KindSpec(generate_stripe_secret_key, GENERIC_FORMATS),
    "stripe_restricted_key": KindSpec(generate_stripe_restricted_key, GENERIC_FORMATS),
    "telegram_bot_token": KindSpec(generate_telegram_bot_token, GENERIC_FORMATS),
    "discord_bot_token": KindSpec(generate_discord_bot_token, GENERIC_FORMATS),
    "discord_webhook": KindSpec(generate_discord_webhook, GENERIC_FORMATS),
    "twilio": KindSpec(generate_twilio_credentials, GENERIC_FORMATS),
    "sendgrid_api_key": KindSpec(generate_sendgrid_api_key, GENERIC_FORMATS),
    "mailgun_api_key": KindSpec(generate_mailgun_api_key, GENERIC_FORMATS),
    "openai_api_key": KindSpec(generate_openai_api_key, GENERIC_FORMATS),
    "anthropic_api_key": KindSpec(generate_anthropic_api_key, GENERIC_FORMATS),
    "huggingface_token": KindSpec(generate_huggingface_token, GENERIC_FORMATS),
    "npm_token": KindSpec(generate_npm_token, GENERIC_FORMATS),
    "dockerhub_pat": KindSpec(generate_dockerhub_pat, GENERIC_FORMATS),
    "digitalocean_pat": KindSpec(generate_digitalocean_pat, GENERIC_FORMATS),
    "databricks_token": KindSpec(generate_databricks_token, GENERIC_FORMATS),
    "shopify_access_token": KindSpec(generate_shopify_access_token, GENERIC_FORMATS),
    "azure_storage_connection_string": KindSpec(generate_azure_storage_connection_string, GENERIC_FORMATS),
    "alibaba_access_key": KindSpec(generate_alibaba_access_key, GENERIC_FORMATS),
    "tencent_secret": KindSpec(generate_tencent_secret, GENERIC_FORMATS),
    "private_key_rsa": KindSpec(generate_private_key_rsa, MULTILINE_FORMATS, needs=("openssl",)),
    "private_key_ec": KindSpec(generate_private_key_ec, MULTILINE_FORMATS, needs=("openssl",)),
    "private_key_pkcs8": KindSpec(generate_private_key_pkcs8, MULTILINE_FORMATS, needs=("openssl",)),
    "private_key_openssh": KindSpec(generate_private_key_openssh, MULTILINE_FORMATS, needs=("ssh-keygen",)),
    "jwt": KindSpec(generate_jwt, GENERIC_FORMATS),
    "postgres_uri": KindSpec(generate_postgres_uri, GENERIC_FORMATS),
    "mysql_uri": KindSpec(generate_mysql_uri, GENERIC_FORMATS),
    "mongodb_uri": KindSpec(generate_mongodb_uri, GENERIC_FORMATS),
    "redis_uri": KindSpec(generate_redis_uri, GENERIC_FORMATS),
    "redis_uri_password_only": KindSpec(generate_redis_uri_password_only, GENERIC_FORMATS),
    "amqp_uri": KindSpec(generate_amqp_uri, GENERIC_FORMATS),
    "pypirc_password": KindSpec(generate_pypirc_password, ("pypirc",)),
    "pypirc_token": KindSpec(generate_pypirc_token, ("pypirc",)),
    "netrc_password": KindSpec(generate_netrc_password, ("netrc",)),
    "pip_index_credential": KindSpec(generate_pip_index_credential, ("pip_conf",)),
}

# --------------------------------------------------------------------------------------
# Look-alikes: one generator per kind of non-secret
# --------------------------------------------------------------------------------------


def generate_lookalike_aws_documented_example(rng: Random) -> list[Entry]:
    return [
        Entry("lookalike:aws_documented_example", "AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
        Entry("lookalike:aws_documented_example", "AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ]


def generate_lookalike_angle_placeholder(rng: Random) -> list[Entry]:
    name, value = rng.choice([
        ("GITHUB_TOKEN", "<your-token>"), ("OPENAI_API_KEY", "<YOUR_OPENAI_API_KEY>"),
        ("SLACK_BOT_TOKEN", "<slack-bot-token>"), ("STRIPE_SECRET_KEY", "<insert-stripe-key-here>"),
    ])
    return [Entry("lookalike:angle_placeholder", name, value)]


def generate_lookalike_env_reference(rng: Random) -> list[Entry]:
    name, value = rng.choice([
        ("GH_TOKEN", "${GITHUB_TOKEN}"), ("NPM_TOKEN", "${NPM_TOKEN}"),
        ("AWS_SECRET_ACCESS_KEY", "${AWS_SECRET_ACCESS_KEY}"), ("DATABASE_PASSWORD", "${POSTGRES_PASSWORD}"),
    ])
    return [Entry("lookalike:env_reference", name, value)]


def generate_lookalike_template_secret(rng: Random) -> list[Entry]:
    name, value = rng.choice([
        ("NPM_TOKEN", "${{ secrets.NPM_TOKEN }}"), ("PYPI_API_TOKEN", "${{ secrets.PYPI_API_TOKEN }}"),
        ("SLACK_WEBHOOK_URL", "{{ secrets.SLACK_WEBHOOK_URL }}"), ("DB_PASSWORD", "{{ vault_db_password }}"),
    ])
    return [Entry("lookalike:template_secret", name, value)]


def generate_lookalike_x_placeholder(rng: Random) -> list[Entry]:
    name, value = rng.choice([
        ("GITHUB_TOKEN", "ghp_" + "x" * 36), ("STRIPE_SECRET_KEY", "sk_live_" + "x" * 24),
        ("AWS_ACCESS_KEY_ID", "AKIA" + "X" * 16), ("API_KEY", "x" * 32),
        ("SLACK_BOT_TOKEN", "xoxb-xxxxxxxxxxxx-xxxxxxxxxxxxx-" + "x" * 24),
    ])
    return [Entry("lookalike:x_placeholder", name, value)]


def generate_lookalike_changeme(rng: Random) -> list[Entry]:
    name = rng.choice(["DB_PASSWORD", "ADMIN_PASSWORD", "SECRET_KEY", "API_TOKEN"])
    return [Entry("lookalike:changeme", name, rng.choice(["changeme", "CHANGEME", "change-me"]))]


def generate_lookalike_your_key_here(rng: Random) -> list[Entry]:
    name, value = rng.choice([
        ("API_KEY", "your_api_key_here"), ("SECRET_KEY", "YOUR_SECRET_KEY_HERE"),
        ("GOOGLE_API_KEY", "your-google-api-key"), ("AUTH_TOKEN", "REPLACE_WITH_YOUR_TOKEN"),
    ])
    return [Entry("lookalike:your_key_here", name, value)]


def generate_lookalike_git_commit_url(rng: Random) -> list[Entry]:
    sha = random_chars(rng, HEX, 40)
    org, repo = rng.choice([("acme", "widgets"), ("orders-team", "ledger"), ("platform", "infra-modules")])
    name, url = rng.choice([
        ("GITHUB_COMMIT_URL", f"https://github.com/{org}/{repo}/commit/{sha}"),
        ("UPSTREAM_SOURCE", f"https://github.com/{org}/{repo}/blob/{sha}/README.md"),
        ("PINNED_DEPENDENCY", f"git+https://github.com/{org}/{repo}.git@{sha}#egg={repo}"),
    ])
    return [Entry("lookalike:git_commit_sha", name, url, secret=sha)]


def generate_lookalike_sha256(rng: Random) -> list[Entry]:
    digest = hashlib.sha256(random_bytes(rng, 64)).hexdigest()
    return [Entry("lookalike:sha256_hash", rng.choice(["ARCHIVE_SHA256", "RELEASE_CHECKSUM", "IMAGE_DIGEST_SHA256"]), digest)]


def generate_lookalike_md5(rng: Random) -> list[Entry]:
    digest = hashlib.md5(random_bytes(rng, 64)).hexdigest()
    return [Entry("lookalike:md5_hash", rng.choice(["FILE_MD5", "CONTENT_MD5", "CACHE_BUSTER"]), digest)]


def generate_lookalike_uuid(rng: Random) -> list[Entry]:
    return [Entry("lookalike:uuid", rng.choice(["TENANT_ID", "REQUEST_ID", "DATASET_ID", "WORKSPACE_ID"]), random_uuid(rng))]


def generate_lookalike_base64_text(rng: Random) -> list[Entry]:
    text = rng.choice([
        '{"theme": "dark", "locale": "en-US", "sidebar": true}',
        "Welcome to the orders dashboard. Reports refresh every hour.",
        "feature_flags=new_checkout,bulk_export,dark_mode",
        '{"columns": ["id", "created_at", "amount"], "page_size": 50}',
    ])
    return [Entry("lookalike:base64_non_secret", rng.choice(["DEFAULT_BANNER_B64", "UI_PREFS_BASE64", "ENCODED_DEFAULTS"]),
                  base64.b64encode(text.encode()).decode())]


def wrong_checksum_token(rng: Random, prefix: str) -> str:
    """Like checksummed_token, but the last 6 chars are not the CRC32 of the body."""
    while True:
        body = random_chars(rng, BASE62, 30)
        checksum = random_chars(rng, BASE62, 6)
        token = prefix + body + checksum
        if checksum != base62_crc32(body) and looks_random(token):
            return token


def generate_lookalike_github_bad_checksum(rng: Random) -> list[Entry]:
    return [Entry("lookalike:github_bad_checksum", rng.choice(["GITHUB_TOKEN", "GH_TOKEN"]), wrong_checksum_token(rng, "ghp_"))]


def generate_lookalike_npm_bad_checksum(rng: Random) -> list[Entry]:
    return [Entry("lookalike:npm_bad_checksum", rng.choice(["NPM_TOKEN", "NODE_AUTH_TOKEN"]), wrong_checksum_token(rng, "npm_"))]


def generate_lookalike_wrong_length(rng: Random) -> list[Entry]:
    name, prefix, alphabet, length = rng.choice([
        ("GITHUB_TOKEN", "ghp_", ALNUM, 30),
        ("GITHUB_TOKEN", "ghp_", ALNUM, 41),
        ("GOOGLE_API_KEY", "AIza", ALNUM, 30),
        ("AWS_ACCESS_KEY_ID", "AKIA", AWS_KEY_ID_CHARS, 12),
        ("HF_TOKEN", "hf_", LETTERS, 20),
        ("GITLAB_TOKEN", "glpat-", ALNUM, 12),
    ])
    return [Entry("lookalike:wrong_length", name, random_token(rng, prefix, alphabet, length))]


def generate_lookalike_password_from_env(rng: Random) -> list[Entry]:
    name, expression = rng.choice([
        ("password", 'os.environ["DB_PASSWORD"]'),
        ("DB_PASSWORD", 'os.getenv("DB_PASSWORD", "")'),
        ("api_key", 'os.environ.get("OPENAI_API_KEY")'),
        ("AWS_SECRET_ACCESS_KEY", 'os.environ["AWS_SECRET_ACCESS_KEY"]'),
    ])
    return [Entry("lookalike:password_from_env", name, expression, raw=True)]


def generate_lookalike_placeholder_uri(rng: Random) -> list[Entry]:
    name, uri, password = rng.choice([
        ("DATABASE_URL", "postgres://user:password@localhost:5432/app", "password"),
        ("DATABASE_URL", "postgresql://postgres:postgres@localhost/postgres", "postgres"),
        ("MONGO_URI", "mongodb+srv://<username>:<password>@cluster0.mongodb.net/app", "<password>"),
        ("REDIS_URL", "redis://:changeme@localhost:6379/0", "changeme"),
        ("MYSQL_URL", "mysql://${DB_USER}:${DB_PASSWORD}@db:3306/app", "${DB_PASSWORD}"),
        ("CELERY_BROKER_URL", "amqp://guest:guest@localhost:5672//", "guest"),
    ])
    return [Entry("lookalike:placeholder_uri_password", name, uri, secret=password)]


def generate_lookalike_token_from_call(rng: Random) -> list[Entry]:
    name, expression = rng.choice([
        ("token", "get_token()"),
        ("api_key", "load_api_key(CONFIG_PATH)"),
        ("github_token", "fetch_github_token(session)"),
        ("secret", 'vault_client.read_secret("kv/app/slack")["data"]["value"]'),
        ("password", 'getpass.getpass("Database password: ")'),
        ("access_token", "credentials.token"),
    ])
    return [Entry("lookalike:token_from_call", name, expression, raw=True)]


STRING_VALUE_FORMATS = ("py", "settings", "ini", "toml", "env", "yaml", "json", "ipynb", "sh", "dockerfile")
REFERENCE_FORMATS = ("yaml", "sh", "env", "dockerfile", "json", "toml", "ini")

LOOKALIKE_GENERATORS: dict[str, KindSpec] = {
    "aws_documented_example": KindSpec(generate_lookalike_aws_documented_example, STRING_VALUE_FORMATS),
    "angle_placeholder": KindSpec(generate_lookalike_angle_placeholder, STRING_VALUE_FORMATS),
    "env_reference": KindSpec(generate_lookalike_env_reference, REFERENCE_FORMATS),
    "template_secret": KindSpec(generate_lookalike_template_secret, ("yaml",)),
    "x_placeholder": KindSpec(generate_lookalike_x_placeholder, STRING_VALUE_FORMATS),
    "changeme": KindSpec(generate_lookalike_changeme, STRING_VALUE_FORMATS),
    "your_key_here": KindSpec(generate_lookalike_your_key_here, STRING_VALUE_FORMATS),
    "git_commit_sha": KindSpec(generate_lookalike_git_commit_url, STRING_VALUE_FORMATS),
    "sha256_hash": KindSpec(generate_lookalike_sha256, STRING_VALUE_FORMATS),
    "md5_hash": KindSpec(generate_lookalike_md5, STRING_VALUE_FORMATS),
    "uuid": KindSpec(generate_lookalike_uuid, STRING_VALUE_FORMATS),
    "base64_non_secret": KindSpec(generate_lookalike_base64_text, STRING_VALUE_FORMATS),
    "github_bad_checksum": KindSpec(generate_lookalike_github_bad_checksum, STRING_VALUE_FORMATS),
    "npm_bad_checksum": KindSpec(generate_lookalike_npm_bad_checksum, STRING_VALUE_FORMATS),
    "wrong_length": KindSpec(generate_lookalike_wrong_length, STRING_VALUE_FORMATS),
    "password_from_env": KindSpec(generate_lookalike_password_from_env, PYTHON_FORMATS),
    "placeholder_uri_password": KindSpec(generate_lookalike_placeholder_uri, STRING_VALUE_FORMATS),
    "token_from_call": KindSpec(generate_lookalike_token_from_call, PYTHON_FORMATS),
}

# --------------------------------------------------------------------------------------
# Key material from openssl
# --------------------------------------------------------------------------------------


def openssl(args: list[str]) -> str:
    result = subprocess.run(["openssl", *args], check=True, capture_output=True, text=True)
    return result.stdout.strip()


# --------------------------------------------------------------------------------------
# Filler: the ordinary code and config around the secrets
# --------------------------------------------------------------------------------------

PROJECTS = [
    "billing-api", "orders-service", "data-pipeline", "ml-experiments", "notify-worker",
    "inventory-sync", "auth-gateway", "report-builder", "etl-jobs", "chat-bot",
    "search-indexer", "payments-core", "webhooks-relay", "analytics-dashboard", "deploy-tools",
]

PYTHON_DOCSTRINGS = [
    "Sync invoices from the billing provider into the warehouse.",
    "Nightly export of order events to object storage.",
    "Small client for the internal reporting API.",
    "Post deployment notifications and collect release metadata.",
    "Helpers shared by the ingestion jobs.",
]

PYTHON_IMPORTS = """\
import argparse
import functools
import json
import logging
import os
import time
import urllib.request
from pathlib import Path

logger = logging.getLogger(__name__)
"""

PYTHON_CONSTANTS = [
    'BASE_URL = "https://api.internal.example/v2"',
    "REQUEST_TIMEOUT = 30",
    "BATCH_SIZE = 200",
    'DATA_DIR = Path(__file__).resolve().parent / "data"',
    'USER_AGENT = "acme-sync/1.8"',
    "MAX_RETRIES = 5",
]

PYTHON_FUNCTIONS = [
    '''\
def fetch_json(url: str, timeout: float = REQUEST_TIMEOUT) -> dict:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)
''',
    '''\
def chunked(items: list, size: int = BATCH_SIZE):
    for start in range(0, len(items), size):
        yield items[start:start + size]
''',
    '''\
def load_settings(path: Path) -> dict:
    if not path.exists():
        logger.warning("settings file %s not found, using defaults", path)
        return {}
    return json.loads(path.read_text())
''',
    '''\
def retry(times: int = 3, delay: float = 1.5):
    def decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            for attempt in range(1, times + 1):
                try:
                    return func(*args, **kwargs)
                except OSError:
                    if attempt == times:
                        raise
                    time.sleep(delay * attempt)
        return wrapper
    return decorator
''',
    '''\
class RateLimiter:
    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.last_call = 0.0

    def wait(self) -> None:
        elapsed = time.monotonic() - self.last_call
        if elapsed < self.interval:
            time.sleep(self.interval - elapsed)
        self.last_call = time.monotonic()
''',
    '''\
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--limit", type=int, default=100)
    return parser.parse_args(argv)
''',
]

PYTHON_MAIN = '''\
def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logger.info("starting run in %s", os.getcwd())


if __name__ == "__main__":
    main()
'''

DJANGO_SETTINGS_HEAD = '''\
"""Django settings for {project}."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["{project}.internal.example", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "{package}",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "{package}.urls"
WSGI_APPLICATION = "{package}.wsgi.application"

# Third-party services
'''

DJANGO_SETTINGS_TAIL = '''
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
'''

SHELL_COMMANDS = [
    'python -m pip install --quiet -r requirements.txt',
    'VERSION="$(git describe --tags --always)"',
    'echo "Deploying ${VERSION:-dev} to ${TARGET_ENV:-staging}"',
    'python -m build --wheel --outdir dist/',
    'rsync -az --delete dist/ "deploy@app-01.internal.example:/srv/app/releases/"',
    'docker build -t "registry.internal.example/app:${VERSION:-latest}" .',
    'find ./tmp -type f -mtime +7 -delete',
    'systemctl --user restart app.service || true',
]

NOTEBOOK_TOPICS = [
    ("churn_analysis", "Churn analysis", "Exploring churn drivers for the last two quarters."),
    ("embedding_eval", "Embedding evaluation", "Compare retrieval quality across embedding models."),
    ("sales_forecast", "Sales forecast", "Weekly forecast experiments with seasonal baselines."),
    ("api_usage", "API usage report", "Pull usage numbers from the provider and chart them."),
]


# --------------------------------------------------------------------------------------
# Renderers: (rng, project, entries) -> (path inside the project, file text)
# --------------------------------------------------------------------------------------


def package_name(project: str) -> str:
    return project.replace("-", "_")


def fill(template: str, value: str) -> str:
    return template.replace("{value}", value)


def python_statement(rng: Random, entry: Entry, allow_code: bool = True) -> str:
    override = entry.code.get("py")
    if allow_code and override and rng.random() < 0.6:
        return fill(override, entry.value)
    if entry.raw:
        return f"{entry.name} = {entry.value}"
    if "\n" in entry.value:
        return f'{entry.name} = """{entry.value}\n"""'
    return f'{entry.name} = "{entry.value}"'


def render_python(rng: Random, project: str, entries: list[Entry]) -> tuple[str, str]:
    package = package_name(project)
    path = rng.choice([f"{package}/config.py", "scripts/sync_orders.py", f"{package}/client.py", "tools/release.py", "main.py"])
    constants = rng.sample(PYTHON_CONSTANTS, k=rng.randint(2, 3))
    functions = rng.sample(PYTHON_FUNCTIONS, k=rng.randint(2, 3))
    statements = "\n".join(python_statement(rng, e) for e in entries)
    text = (
        f'"""{rng.choice(PYTHON_DOCSTRINGS)}"""\n'
        + PYTHON_IMPORTS + "\n"
        + "\n".join(constants) + "\n"
        + statements + "\n\n\n"
        + "\n\n".join(functions) + "\n\n"
        + PYTHON_MAIN
    )
    return path, text


def render_django_settings(rng: Random, project: str, entries: list[Entry]) -> tuple[str, str]:
    package = package_name(project)
    path = rng.choice([f"{package}/settings.py", "config/settings/production.py"])
    head = DJANGO_SETTINGS_HEAD.replace("{project}", project).replace("{package}", package)
    statements = "\n".join(python_statement(rng, e, allow_code=False) for e in entries)
    return path, head + statements + "\n" + DJANGO_SETTINGS_TAIL


def render_ini(rng: Random, project: str, entries: list[Entry]) -> tuple[str, str]:
    path = rng.choice(["app.ini", "config/production.ini", "settings.cfg", "deploy.cfg", "service.ini"])
    section = rng.choice(["credentials", "integrations", "services", "external"])
    keys = "\n".join(f"{e.name.lower()} = {e.value}" for e in entries)
    text = (
        f"# {project} configuration\n"
        "[app]\n"
        f"name = {project}\n"
        "debug = false\n"
        f"port = {rng.choice([8000, 8080, 5000])}\n"
        "workers = 4\n\n"
        f"[{section}]\n"
        f"{keys}\n\n"
        "[logging]\n"
        "level = INFO\n"
        f"file = /var/log/{project}/app.log\n"
    )
    return path, text


def toml_assignment(entry: Entry) -> str:
    if "\n" in entry.value:
        return f"{entry.name.lower()} = '''\n{entry.value}\n'''"
    return f'{entry.name.lower()} = "{entry.value}"'


def render_toml(rng: Random, project: str, entries: list[Entry]) -> tuple[str, str]:
    path = rng.choice(["config.toml", "pyproject.toml", ".streamlit/secrets.toml", "settings.toml"])
    keys = "\n".join(toml_assignment(e) for e in entries)
    if path == "pyproject.toml":
        text = (
            "[project]\n"
            f'name = "{project}"\n'
            'version = "0.9.3"\n'
            'requires-python = ">=3.10"\n'
            'dependencies = ["httpx>=0.27", "pydantic>=2.6"]\n\n'
            "[tool.ruff]\n"
            "line-length = 100\n\n"
            f"[tool.{package_name(project)}.credentials]\n"
            f"{keys}\n\n"
            "[tool.pytest.ini_options]\n"
            'addopts = "-q"\n'
        )
    elif path.startswith(".streamlit"):
        text = f"# Streamlit secrets for {project}\n" f"{keys}\n\n" "[server]\n" "headless = true\n"
    else:
        text = (
            "[app]\n"
            f'name = "{project}"\n'
            'environment = "production"\n'
            f"port = {rng.choice([8000, 8080])}\n\n"
            "[services]\n"
            f"{keys}\n\n"
            "[logging]\n"
            'level = "info"\n'
            "json = true\n"
        )
    return path, text


def env_assignment(entry: Entry) -> str:
    name = entry.name.upper()
    if re.fullmatch(r"[A-Za-z0-9_./:@+=%,-]+", entry.value):
        return f"{name}={entry.value}"
    return f'{name}="{entry.value}"'


def render_env(rng: Random, project: str, entries: list[Entry]) -> tuple[str, str]:
    path = rng.choice([".env", ".env.production", "docker/.env"])
    text = (
        f"# {project} environment\n"
        "APP_ENV=production\n"
        "DEBUG=false\n"
        f"PORT={rng.choice([8000, 8080, 3000])}\n"
        "LOG_LEVEL=info\n\n"
        + "\n".join(env_assignment(e) for e in entries) + "\n\n"
        "SENTRY_ENVIRONMENT=production\n"
        "FEATURE_BULK_EXPORT=true\n"
    )
    return path, text


YAML_INDICATORS = "-?:,[]{}#&*!|>'\"%@`"


def yaml_scalar(value: str) -> str:
    """The value as a plain YAML scalar when that is safe, else double-quoted."""
    needs_quotes = (
        value[0] in YAML_INDICATORS
        or ": " in value
        or " #" in value
        or value.endswith(":")
        or any(c in value for c in "\"'\\\n")
    )
    return json.dumps(value) if needs_quotes else value


def render_yaml(rng: Random, project: str, entries: list[Entry]) -> tuple[str, str]:
    path = rng.choice(["docker-compose.yml", ".github/workflows/deploy.yml", ".gitlab-ci.yml", "config/app.yml"])
    if path == "docker-compose.yml":
        if rng.random() < 0.5:
            env = "\n".join(f"      {e.name.upper()}: {yaml_scalar(e.value)}" for e in entries)
        else:
            env = "\n".join(f"      - {yaml_scalar(e.name.upper() + '=' + e.value)}" for e in entries)
        text = (
            "services:\n"
            "  app:\n"
            "    build: .\n"
            f"    image: registry.internal.example/{project}:latest\n"
            "    ports:\n"
            '      - "8000:8000"\n'
            "    environment:\n"
            f"{env}\n"
            "    depends_on:\n"
            "      - db\n"
            "  db:\n"
            "    image: postgres:16\n"
            "    volumes:\n"
            "      - db-data:/var/lib/postgresql/data\n\n"
            "volumes:\n"
            "  db-data:\n"
        )
    elif path == ".github/workflows/deploy.yml":
        env = "\n".join(f"  {e.name.upper()}: {yaml_scalar(e.value)}" for e in entries)
        text = (
            "name: Deploy\n\n"
            "on:\n"
            "  push:\n"
            "    branches: [main]\n\n"
            "env:\n"
            f"{env}\n\n"
            "jobs:\n"
            "  deploy:\n"
            "    runs-on: ubuntu-latest\n"
            "    steps:\n"
            "      - uses: actions/checkout@v4\n"
            "      - uses: actions/setup-python@v5\n"
            "        with:\n"
            '          python-version: "3.11"\n'
            "      - run: pip install -r requirements.txt\n"
            "      - run: ./scripts/deploy.sh\n"
        )
    elif path == ".gitlab-ci.yml":
        env = "\n".join(f"  {e.name.upper()}: {yaml_scalar(e.value)}" for e in entries)
        text = (
            "stages:\n"
            "  - build\n"
            "  - deploy\n\n"
            "variables:\n"
            f"{env}\n\n"
            "build:\n"
            "  stage: build\n"
            "  image: python:3.11\n"
            "  script:\n"
            "    - pip install -r requirements.txt\n"
            "    - python -m build\n\n"
            "deploy:\n"
            "  stage: deploy\n"
            "  script:\n"
            "    - ./scripts/deploy.sh\n"
            "  only:\n"
            "    - main\n"
        )
    else:
        keys = "\n".join(f"  {e.name.lower()}: {yaml_scalar(e.value)}" for e in entries)
        text = (
            "app:\n"
            f"  name: {project}\n"
            "  debug: false\n"
            "  port: 8080\n\n"
            "integrations:\n"
            f"{keys}\n\n"
            "logging:\n"
            "  level: INFO\n"
            "  format: json\n"
        )
    return path, text


def camel_case(name: str) -> str:
    first, *rest = name.lower().split("_")
    return first + "".join(part.capitalize() for part in rest)


def render_json(rng: Random, project: str, entries: list[Entry]) -> tuple[str, str]:
    path = rng.choice(["config/production.json", "package.json", "appsettings.json"])
    if path == "package.json":
        document = {
            "name": f"@acme/{project}",
            "version": "1.4.2",
            "private": True,
            "scripts": {"start": "node server.js", "build": "tsc -p .", "lint": "eslint ."},
            "config": {camel_case(e.name): e.value for e in entries},
            "dependencies": {"express": "^4.19.2", "dotenv": "^16.4.5"},
        }
    elif path == "appsettings.json":
        document = {
            "Logging": {"LogLevel": {"Default": "Information", "Microsoft.AspNetCore": "Warning"}},
            "AllowedHosts": "*",
            "Services": {e.name.lower(): e.value for e in entries},
        }
    else:
        document = {
            "service": project,
            "port": rng.choice([8000, 8080]),
            "logging": {"level": "info", "json": True},
            "credentials": {e.name.lower(): e.value for e in entries},
            "features": {"bulk_export": True, "new_checkout": False},
        }
    return path, json.dumps(document, indent=2) + "\n"


def notebook_cell(rng: Random, cell_type: str, source: str) -> dict:
    cell = {"cell_type": cell_type, "id": random_chars(rng, HEX, 8), "metadata": {}, "source": source.splitlines(keepends=True)}
    if cell_type == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def render_notebook(rng: Random, project: str, entries: list[Entry]) -> tuple[str, str]:
    slug, title, summary = rng.choice(NOTEBOOK_TOPICS)
    cells = [
        notebook_cell(rng, "markdown", f"# {title}\n\n{summary}"),
        notebook_cell(rng, "code", "import json\nimport os\n\nimport pandas as pd\nimport requests"),
        notebook_cell(rng, "code", "\n".join(python_statement(rng, e) for e in entries)),
        notebook_cell(rng, "code", 'df = pd.read_csv("data/events.csv", parse_dates=["created_at"])\ndf.head()'),
        notebook_cell(rng, "markdown", "## Weekly totals"),
        notebook_cell(rng, "code", 'weekly = df.resample("W", on="created_at")["amount"].sum()\nweekly.plot(figsize=(10, 4))'),
    ]
    notebook = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python", "version": "3.11.7"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return f"notebooks/{slug}.ipynb", json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def shell_statement(rng: Random, entry: Entry) -> str:
    if "\n" in entry.value:
        key_file = entry.context.get("key_file", "deploy_key")
        return (
            'mkdir -p "$HOME/.ssh"\n'
            f"cat > \"$HOME/.ssh/{key_file}\" <<'EOF'\n{entry.value}\nEOF\n"
            f'chmod 600 "$HOME/.ssh/{key_file}"'
        )
    override = entry.code.get("sh")
    if override and rng.random() < 0.5:
        return fill(override, entry.value)
    return f'export {entry.name.upper()}="{entry.value}"'


def render_shell(rng: Random, project: str, entries: list[Entry]) -> tuple[str, str]:
    path = rng.choice(["scripts/deploy.sh", "bin/release.sh", "ci/publish.sh", "scripts/bootstrap.sh"])
    chosen = set(rng.sample(SHELL_COMMANDS, k=rng.randint(3, 5)))
    commands = [command for command in SHELL_COMMANDS if command in chosen]  # keep script order
    text = (
        "#!/usr/bin/env bash\n"
        f"# {project}: build and ship a release\n"
        "set -euo pipefail\n\n"
        'cd "$(dirname "$0")/.."\n\n'
        + "\n".join(shell_statement(rng, e) for e in entries) + "\n\n"
        + "\n".join(commands) + "\n"
    )
    return path, text


def render_dockerfile(rng: Random, project: str, entries: list[Entry]) -> tuple[str, str]:
    path = rng.choice(["Dockerfile", "docker/Dockerfile.worker"])
    lines = [f'{rng.choice(["ENV", "ARG"])} {e.name.upper()}="{e.value}"' for e in entries]
    text = (
        "FROM python:3.11-slim AS runtime\n\n"
        "ENV PYTHONDONTWRITEBYTECODE=1 \\\n"
        "    PYTHONUNBUFFERED=1\n"
        "WORKDIR /app\n\n"
        + "\n".join(lines) + "\n\n"
        "COPY requirements.txt .\n"
        "RUN pip install --no-cache-dir -r requirements.txt\n"
        "COPY . .\n\n"
        "RUN useradd --create-home app\n"
        "USER app\n"
        "EXPOSE 8000\n"
        f'CMD ["gunicorn", "{package_name(project)}.wsgi:application", "--bind", "0.0.0.0:8000"]\n'
    )
    return path, text


def render_gcp_service_account(rng: Random, project: str, entries: list[Entry]) -> tuple[str, str]:
    (entry,) = entries
    facts = entry.context
    email = facts["client_email"]
    document = {
        "type": "service_account",
        "project_id": facts["project_id"],
        "private_key_id": facts["private_key_id"],
        "private_key": entry.value + "\n",
        "client_email": email,
        "client_id": facts["client_id"],
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + email.replace("@", "%40"),
        "universe_domain": "googleapis.com",
    }
    path = rng.choice([f"credentials/{facts['project_id']}-{facts['private_key_id'][:12]}.json", "keys/service-account.json"])
    return path, json.dumps(document, indent=2) + "\n"


def render_pypirc(rng: Random, project: str, entries: list[Entry]) -> tuple[str, str]:
    (entry,) = entries
    text = (
        "[distutils]\n"
        "index-servers =\n"
        "    pypi\n"
        "    internal\n\n"
        "[pypi]\n"
        f"username = {entry.context['username']}\n"
        f"password = {entry.value}\n\n"
        "[internal]\n"
        f"repository = https://packages.{INTERNAL_DOMAIN}/legacy/\n"
        f"username = {rng.choice(['ci-publisher', 'release-bot'])}\n"
    )
    return ".pypirc", text


def render_netrc(rng: Random, project: str, entries: list[Entry]) -> tuple[str, str]:
    blocks = []
    for entry in entries:
        login = entry.context["login"]
        if rng.random() < 0.5:
            blocks.append(f"machine {entry.name}\n  login {login}\n  password {entry.value}\n")
        else:
            blocks.append(f"machine {entry.name} login {login} password {entry.value}\n")
    return ".netrc", "\n".join(blocks)


def render_pip_conf(rng: Random, project: str, entries: list[Entry]) -> tuple[str, str]:
    (entry,) = entries
    path = rng.choice(["pip.conf", ".config/pip/pip.conf", ".pip/pip.conf"])
    text = (
        "[global]\n"
        f"{entry.name} = {entry.value}\n"
        f"trusted-host = packages.{INTERNAL_DOMAIN}\n"
        "timeout = 60\n\n"
        "[install]\n"
        "no-compile = true\n"
    )
    return path, text


RENDERERS: dict[str, Callable[[Random, str, list[Entry]], tuple[str, str]]] = {
    "py": render_python,
    "settings": render_django_settings,
    "ini": render_ini,
    "toml": render_toml,
    "env": render_env,
    "yaml": render_yaml,
    "json": render_json,
    "ipynb": render_notebook,
    "sh": render_shell,
    "dockerfile": render_dockerfile,
    "gcp_service_account": render_gcp_service_account,
    "pypirc": render_pypirc,
    "netrc": render_netrc,
    "pip_conf": render_pip_conf,
}
ONE_BUNDLE_PER_FILE = ("gcp_service_account", "pypirc", "pip_conf")
MAX_BUNDLES_PER_FILE = 3

# --------------------------------------------------------------------------------------
# Corpus assembly
# --------------------------------------------------------------------------------------


def as_written(text: str, file_format: str) -> str:
    """How a string appears in a file of this format."""
    return json.dumps(text)[1:-1] if file_format in JSON_FORMATS else text


def locate_entries(text: str, entries: list[Entry], file_format: str) -> list[tuple[Entry, str, int]]:
    """(entry, secret as written, 1-based line) for each entry, in file order."""
    located = []
    cursor = 0
    for entry in entries:
        value = as_written(entry.value, file_format)
        value_at = text.find(value, cursor)
        if value_at < 0:
            value_at = text.find(value)
        if value_at < 0:
            raise AssertionError(f"{entry.kind}: value not found in rendered {file_format} file")
        secret = as_written(entry.secret, file_format)
        secret_at = text.find(secret, value_at, value_at + len(value))
        if secret_at < 0:
            raise AssertionError(f"{entry.kind}: secret not inside its value")
        line = text.count("\n", 0, secret_at) + 1
        assert secret.split("\n")[0] in text.splitlines()[line - 1]
        located.append((entry, secret, line))
        cursor = value_at + len(value)
    return located


def generate_bundles(rng: Random, table: dict[str, KindSpec], count: int) -> dict[str, list[list[Entry]]]:
    """Bundles grouped by file format, each kind spread over its allowed formats."""
    by_format: dict[str, list[list[Entry]]] = {name: [] for name in RENDERERS}
    for kind, spec in table.items():
        missing = [tool for tool in spec.needs if shutil.which(tool) is None]
        if missing:
            print(f"warning: skipping {kind}: {', '.join(missing)} not found", file=sys.stderr)
            continue
        formats = list(spec.formats)
        rng.shuffle(formats)
        for index in range(count):
            by_format[formats[index % len(formats)]].append(spec.generate(rng))
    return by_format


def group_into_files(rng: Random, bundles: list[list[Entry]], max_per_file: int):
    """Yield the entries of each file: 1..max_per_file bundles whose names don't clash
    (two AWS_ACCESS_KEY_ID in one file would be an invalid INI/TOML/JSON/YAML file)."""
    pending = list(bundles)
    while pending:
        wanted = rng.randint(1, max_per_file)
        chosen: list[list[Entry]] = []
        names_in_file: set[str] = set()
        for bundle in list(pending):
            names = {entry.name.lower() for entry in bundle}
            if len(chosen) < wanted and names_in_file.isdisjoint(names):
                chosen.append(bundle)
                names_in_file |= names
                pending.remove(bundle)
        yield [entry for bundle in chosen for entry in bundle]


def write_corpus(rng: Random, table: dict[str, KindSpec], count: int, out_dir: Path) -> tuple[int, int]:
    if out_dir.exists():
        if any(out_dir.iterdir()) and not (out_dir / "manifest.jsonl").exists():
            raise SystemExit(f"{out_dir} exists and is not a corpus written by this script; refusing to replace it")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)

    manifest = []
    file_number = 0
    for file_format, bundles in generate_bundles(rng, table, count).items():
        rng.shuffle(bundles)
        max_per_file = 1 if file_format in ONE_BUNDLE_PER_FILE else MAX_BUNDLES_PER_FILE
        for entries in group_into_files(rng, bundles, max_per_file):
            file_number += 1
            project = rng.choice(PROJECTS)
            inner_path, text = RENDERERS[file_format](rng, project, entries)
            relative = f"{file_number:03d}-{project}/{inner_path}"
            target = out_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            for entry, secret, line in locate_entries(text, entries, file_format):
                manifest.append({"file": relative, "kind": entry.kind, "secret": secret, "line": line})

    with open(out_dir / "manifest.jsonl", "w", encoding="utf-8") as handle:
        for record in manifest:
            handle.write(json.dumps(record) + "\n")
    return file_number, len(manifest)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, metavar="OUTDIR")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count-per-kind", type=int, default=3, metavar="K")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--lookalikes-only", action="store_true")
    only.add_argument("--planted-only", action="store_true")
    args = parser.parse_args(argv)
    if args.count_per_kind < 1:
        parser.error("--count-per-kind must be at least 1")

    # Separate streams so that --planted-only / --lookalikes-only reproduce the full run's halves.
    if not args.lookalikes_only:
        files, secrets = write_corpus(Random(f"{args.seed}:planted"), KIND_GENERATORS, args.count_per_kind, args.out_dir / "planted")
        print(f"planted: {secrets} secrets in {files} files -> {args.out_dir / 'planted'}")
    if not args.planted_only:
        files, lookalikes = write_corpus(Random(f"{args.seed}:lookalikes"), LOOKALIKE_GENERATORS, args.count_per_kind, args.out_dir / "lookalikes")
        print(f"lookalikes: {lookalikes} look-alikes in {files} files -> {args.out_dir / 'lookalikes'}")


if __name__ == "__main__":
    main()
