#!/usr/bin/env python3
r"""Fetch the pinned corpus of real release files, or rebuild its lock.

    fetch.py DEST [--lock corpora/popular.lock.tsv] [--limit N]
    fetch.py --update-lock DEST [--names corpora/popular.names] [--lock ...]

--update-lock keeps every row already in the lock and resolves only the
names-file entries not yet locked: an entry NAME [==VERSION] [:sdist] is
locked when the lock has a row of that name, kind (wheel or sdist) and
version (for an entry without ==VERSION: any version no other entry of that
name and kind pins). A new entry gets its newest release, or VERSION; one
that fails to download is skipped. To move an entry to a newer release,
delete its row first.

Files come through `pip download`, so the index is whatever pip is
configured to use (PIP_INDEX_URL, pip.conf); no index is named here.
Sdists are downloaded with --no-build-isolation, so pip prepares their
metadata with the build backends installed next to this interpreter
(setuptools, hatchling, flit-core, poetry-core, pdm-backend, ...), e.g.

    python3 -m venv V && V/bin/pip install setuptools wheel hatchling hatch-vcs \
        hatch-fancy-pypi-readme flit-core poetry-core pdm-backend setuptools-scm
    V/bin/python corpora/fetch.py DEST
"""
import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = "name\tversion\tfilename\tsha256"
# Wheels are chosen for CPython 3.11 on manylinux x86_64, whatever machine runs this.
TARGET = ["--python-version", "3.11", "--implementation", "cp"] + [
    a for m in range(36, 4, -1) for a in ("--platform", f"manylinux_2_{m}_x86_64")
] + ["--platform", "manylinux2014_x86_64", "--platform", "manylinux2010_x86_64",
     "--platform", "manylinux1_x86_64"]
JOBS = 4
# the line of pip's output that says why a download failed
WHY = re.compile(r"([\w.]*Error|ERROR|error): (?!metadata-generation-failed|subprocess-exited)")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pip_download(name, version, sdist, dest):
    """Download one release file of NAME into DEST; return its path or raise."""
    spec = f"{name}=={version}" if version else name
    kind = ["--no-binary=:all:"] if sdist else ["--only-binary=:all:", *TARGET]
    with tempfile.TemporaryDirectory(dir=dest, prefix=".tmp-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps",
               "--no-build-isolation", *kind, "-d", tmp, spec]
        run = subprocess.run(cmd, capture_output=True, text=True)
        files = list(Path(tmp).iterdir())
        if run.returncode or len(files) != 1:
            lines = [l.strip() for l in (run.stderr + run.stdout).splitlines()] or ["no file"]
            why = [l for l in lines if WHY.match(l)] or lines
            raise RuntimeError(why[-1])
        return Path(shutil.move(files[0], Path(dest) / files[0].name))


def version_of(filename):
    if filename.endswith(".whl"):
        return filename.split("-")[1]
    stem = filename.removesuffix(".zip").removesuffix(".tar.gz").removesuffix(".tar.bz2")
    return stem.rsplit("-", 1)[1]


def read_lock(path):
    lines = Path(path).read_text().splitlines()
    if not lines or lines[0] != HEADER:
        sys.exit(f"{path}: first line must be {HEADER!r}")
    return [dict(zip(HEADER.split("\t"), l.split("\t"))) for l in lines[1:] if l]


def fetch(dest, lock, limit):
    rows = read_lock(lock)[:limit]

    def one(row):
        path = Path(dest) / row["filename"]
        if path.exists() and sha256(path) == row["sha256"]:
            return "ok"
        try:
            got = pip_download(row["name"], row["version"],
                               not row["filename"].endswith(".whl"), dest)
        except RuntimeError as e:
            return f"FAIL {row['filename']}: {e}"
        if got.name != row["filename"]:
            got.unlink()
            return f"FAIL {row['filename']}: pip chose {got.name}"
        if sha256(got) != row["sha256"]:
            got.unlink()
            return f"FAIL {row['filename']}: sha256 mismatch"
        return "new"

    with ThreadPoolExecutor(JOBS) as pool:
        results = list(pool.map(one, rows))
    for r in results:
        if r.startswith("FAIL"):
            print(r, file=sys.stderr)
    print(f"{results.count('ok')} present, {results.count('new')} downloaded, "
          f"{len(results) - results.count('ok') - results.count('new')} failed")
    return 1 if any(r.startswith("FAIL") for r in results) else 0


def update_lock(dest, names, lock):
    old = read_lock(lock) if Path(lock).exists() else []
    wanted = []
    for line in Path(names).read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            version = next((w[2:] for w in words if w.startswith("==")), None)
            wanted.append((words[0], version, ":sdist" in words))
    locked, pinned = {}, {}  # (name, sdist) -> versions in the lock / pinned by an entry
    for r in old:
        locked.setdefault((r["name"], not r["filename"].endswith(".whl")), set()).add(r["version"])
    for name, version, sdist in wanted:
        if version:
            pinned.setdefault((name, sdist), set()).add(version)

    def is_locked(name, version, sdist):
        have = locked.get((name, sdist), set())
        return version in have if version else bool(have - pinned.get((name, sdist), set()))

    todo = [w for w in wanted if not is_locked(*w)]

    def one(item):
        name, version, sdist = item
        try:
            path = pip_download(name, version, sdist, dest)
        except RuntimeError as e:
            print(f"skip {name}{'==' + version if version else ''}{' :sdist' * sdist}: {e}",
                  file=sys.stderr)
            return None
        print(f"got {path.name}", file=sys.stderr)
        return name, version_of(path.name), path.name, sha256(path)

    with ThreadPoolExecutor(JOBS) as pool:
        got = list(pool.map(one, todo))
    rows = sorted({tuple(r.values()) for r in old} | {r for r in got if r})
    Path(lock).write_text("\n".join([HEADER] + ["\t".join(r) for r in rows]) + "\n")
    print(f"{got.count(None)} of {len(todo)} new entries skipped; "
          f"{len(rows)} files locked in {lock}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", help="directory for the downloaded files")
    ap.add_argument("--lock", default=HERE / "popular.lock.tsv")
    ap.add_argument("--names", default=HERE / "popular.names")
    ap.add_argument("--limit", type=int, default=None, help="only the first N lock rows")
    ap.add_argument("--update-lock", action="store_true",
                    help="keep the lock's rows and add the names-file entries not yet locked")
    args = ap.parse_args()
    Path(args.dest).mkdir(parents=True, exist_ok=True)
    if args.update_lock:
        return update_lock(args.dest, args.names, args.lock)
    return fetch(args.dest, args.lock, args.limit)


if __name__ == "__main__":
    sys.exit(main())
