#!/usr/bin/env bash
# Datastore harness: on the pinned real release files, in one run and interleaved (the machine
# is noisy), times
#   plain      a scan without a datastore (the baseline),
#   first      a first scan into a new datastore,
#   unchanged  a rescan of the same files with that datastore (nothing changed),
#   touched    a rescan after every file's mtime changed (each file read and hashed again,
#              every finding reused from its blob),
# each ROUNDS times (default 3), and prints medians and the ratios first/plain and
# plain/unchanged.
#
#   benches/datastore.sh [FILES_DIR] [ROUNDS]   (default: target/corpus/files, fetched if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-target/corpus/files}
rounds=${2:-3}
if [ ! -d "$files" ] || [ -z "$(ls -A "$files" 2>/dev/null)" ]; then
  python3 corpora/fetch.py "$files"
fi
cargo build --release -q -p keysweep-cli
bin=$PWD/target/release/keysweep
"$bin" rules list > /dev/null   # compile and cache the database outside the timing
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat "$files"/* > /dev/null   # warm the page cache

scan() {  # datastore (or "") -> seconds
  local t0 t1
  t0=$(date +%s.%N)
  if [ -n "$1" ]; then
    "$bin" scan -q -j 2 --exit-zero -f jsonl -o /dev/null --datastore "$1" "$files"
  else
    "$bin" scan -q -j 2 --exit-zero -f jsonl -o /dev/null "$files"
  fi
  t1=$(date +%s.%N)
  awk "BEGIN { print $t1 - $t0 }"
}

declare -a plain first unchanged touched
for ((i = 0; i < rounds; i++)); do
  db="$work/round$i.db"
  plain+=("$(scan "")")
  first+=("$(scan "$db")")
  unchanged+=("$(scan "$db")")
  find "$files" -type f -exec touch {} +
  touched+=("$(scan "$db")")
done
size=$(du -k "$work/round0.db" | cut -f1)

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
p=$(median "${plain[@]}"); f=$(median "${first[@]}"); u=$(median "${unchanged[@]}"); t=$(median "${touched[@]}")
printf 'files: %s (%s)\n' "$(ls "$files" | wc -l)" "$(du -sh "$files" | cut -f1)"
printf '%-10s median %8.3f s   runs: %s\n' plain "$p" "${plain[*]}" first "$f" "${first[*]}" \
  unchanged "$u" "${unchanged[*]}" touched "$t" "${touched[*]}"
printf 'datastore size: %.1f MB\n' "$(awk "BEGIN { print $size / 1024 }")"
printf 'first scan with a datastore / without: %.3f\n' "$(awk "BEGIN { print $f / $p }")"
printf 'unchanged rescan speed-up over the first scan: %.1fx (over a plain scan: %.1fx)\n' "$(awk "BEGIN { print $f / $u }")" "$(awk "BEGIN { print $p / $u }")"
printf 'touched rescan speed-up over a plain scan: %.1fx\n' "$(awk "BEGIN { print $p / $t }")"
