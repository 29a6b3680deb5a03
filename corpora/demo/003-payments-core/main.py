"""Nightly export of order events to object storage."""
import argparse
import functools
import json
import logging
import os
import time
import urllib.request
from pathlib import Path

logger = logging.getLogger(__name__)

USER_AGENT = "acme-sync/1.8"
BASE_URL = "https://api.internal.example/v2"
SLACK_WEBHOOK_URL = "https://hooks.slack.com/services/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"
DATABRICKS_API_TOKEN = "dapib1edca354d003906f1a2a585fb2153e8"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--limit", type=int, default=100)
    return parser.parse_args(argv)


def fetch_json(url: str, timeout: float = REQUEST_TIMEOUT) -> dict:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logger.info("starting run in %s", os.getcwd())


if __name__ == "__main__":
    main()
