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

MAX_RETRIES = 5
DATA_DIR = Path(__file__).resolve().parent / "data"
BATCH_SIZE = 200
DOCKER_PASSWORD = "dckr_pat_D6ZHf9SkfB0gpVC86EtN1hHoxh_"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--limit", type=int, default=100)
    return parser.parse_args(argv)


def chunked(items: list, size: int = BATCH_SIZE):
    for start in range(0, len(items), size):
        yield items[start:start + size]


class RateLimiter:
    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.last_call = 0.0

    def wait(self) -> None:
        elapsed = time.monotonic() - self.last_call
        if elapsed < self.interval:
            time.sleep(self.interval - elapsed)
        self.last_call = time.monotonic()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logger.info("starting run in %s", os.getcwd())


if __name__ == "__main__":
    main()
