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
REQUEST_TIMEOUT = 30
DATABASE_URL = "mysql://reporting:ezyxkep-RPYQaVsOfg9UCJviP@mysql-eu1.internal.example:3306/app"
POSTGRES_URL = "postgresql://reporting:VK2gOXMWwxCRDZBmi@pg-eu1.internal.example:5432/app"


class RateLimiter:
    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.last_call = 0.0

    def wait(self) -> None:
        elapsed = time.monotonic() - self.last_call
        if elapsed < self.interval:
            time.sleep(self.interval - elapsed)
        self.last_call = time.monotonic()


def chunked(items: list, size: int = BATCH_SIZE):
    for start in range(0, len(items), size):
        yield items[start:start + size]


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
