#!/usr/bin/env bash
# Corpus harness: scan the pinned real release files with keysweep (2 threads) and, in the
# same run, decompress every one of them to /dev/null one at a time (`unzip -p`, `tar -xO`).
# Prints wall time, CPU time and peak RSS of both, and the ratio.
#
#   benches/corpus.sh [FILES_DIR]      (default: target/corpus/files, fetched if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-target/corpus/files}
if [ ! -d "$files" ] || [ -z "$(ls -A "$files" 2>/dev/null)" ]; then
  python3 corpora/fetch.py "$files"
fi
cargo build --release -q -p keysweep-cli
bin=target/release/keysweep
"$bin" rules list > /dev/null   # compile and cache the database outside the timing

baseline() {
  for f in "$files"/*; do
    case "$f" in
      *.whl|*.zip|*.egg) unzip -p "$f" > /dev/null 2>&1 || true ;;
      *.tar.gz|*.tgz) tar -xzOf "$f" > /dev/null 2>&1 || true ;;
      *.tar.bz2) tar -xjOf "$f" > /dev/null 2>&1 || true ;;
      *.tar.xz) tar -xJOf "$f" > /dev/null 2>&1 || true ;;
    esac
  done
}
export -f baseline; export files

measure() {  # label, command...
  local label=$1; shift
  /usr/bin/time -f "$label %e %U %S %M" "$@" 2>&1 >/dev/null | tail -1
}
cat "$files"/* > /dev/null   # warm the page cache
b=$(measure baseline bash -c baseline)
k=$(measure keysweep "$bin" scan -q -j 2 --exit-zero --format jsonl -o /dev/null "$files")
echo "$b" "$k" | awk '{
  printf "%-9s wall %6.2f s  cpu %6.2f s  rss %7.1f MB\n", $1, $2, $3+$4, $5/1024;
  printf "%-9s wall %6.2f s  cpu %6.2f s  rss %7.1f MB\n", $6, $7, $8+$9, $10/1024;
  printf "ratio keysweep/baseline (wall): %.2f\n", $7/$2 }'
