#!/bin/sh
# Unpack every release file in DEST_FILES into DEST_TREE/<file name>/.
# Usage: corpora/unpack.sh DEST_FILES DEST_TREE
set -eu
[ $# -eq 2 ] || { echo "usage: $0 DEST_FILES DEST_TREE" >&2; exit 2; }
mkdir -p "$2"
for f in "$1"/*; do
    out="$2/$(basename "$f")"
    case "$f" in
        *.whl|*.zip) mkdir -p "$out" && unzip -q -o "$f" -d "$out" ;;
        *.tar.gz|*.tgz) mkdir -p "$out" && tar -xzf "$f" -C "$out" ;;
        *.tar.bz2) mkdir -p "$out" && tar -xjf "$f" -C "$out" ;;
        *) echo "skip $f" >&2 ;;
    esac
done
