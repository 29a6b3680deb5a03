"""Small client for the internal reporting API."""
import argparse
import functools
import json
import logging
import os
import time
import urllib.request
from pathlib import Path

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
BASE_URL = "https://api.internal.example/v2"
BATCH_SIZE = 200
TESTPYPI_TOKEN = "pypi-AgENdGVzdC5weXBpLm9yZwIkMTQ1NDdiNTYtYTM5Yy00ZTIwLTljYjUtMjllMDgyOTE5OTA4AAI7eyJ2ZXJzaW9uIjogMSwgInBlcm1pc3Npb25zIjogeyJwcm9qZWN0cyI6IFsiYWNtZS11dGlscyJdfX0AAAYg_Vkkv6rcgr6AJH2ErRFtb1tHg7ZkIqD7BgNb4G_dUwE"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--limit", type=int, default=100)
    return parser.parse_args(argv)


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
