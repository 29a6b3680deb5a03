"""Helpers shared by the ingestion jobs."""
import argparse
import functools
import json
import logging
import os
import time
import urllib.request
from pathlib import Path

logger = logging.getLogger(__name__)

BASE_URL = "https://api.internal.example/v2"
BATCH_SIZE = 200
SIGNING_KEY = """-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAaAAAABNlY2RzYS
1zaGEyLW5pc3RwMjU2AAAACG5pc3RwMjU2AAAAQQRzAD4TYHSCNQBlWYGeSpZ69SMLH7R5
cmsHEa65W0iUVaGEklK+gJUpU2LvUEy2FsmCxkk+1nCMR7GuG2cTHYPLAAAAqPzTeyP803
sjAAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHMAPhNgdII1AGVZ
gZ5Klnr1IwsftHlyawcRrrlbSJRVoYSSUr6AlSlTYu9QTLYWyYLGST7WcIxHsa4bZxMdg8
sAAAAgHdK0X0VuHY8EGk+IpV1fk7tY3zeGpKRRRueWkDduicIAAAALb3BzQGJhc3Rpb24B
AgMEBQ==
-----END OPENSSH PRIVATE KEY-----
"""
mail_client = SendGridAPIClient("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")


def fetch_json(url: str, timeout: float = REQUEST_TIMEOUT) -> dict:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--limit", type=int, default=100)
    return parser.parse_args(argv)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logger.info("starting run in %s", os.getcwd())


if __name__ == "__main__":
    main()
