#!/usr/bin/env bash
# No C source or header under dp/ cp/ include/ lib/ bench/ tests/ is longer
# than MAX_LINES (1,500): a file past that is several modules in one and
# should be split along its seams (the README's layout). Prints every
# offender with its line count and fails.
#
# Usage: file_size.sh SOURCE_ROOT
set -euo pipefail
ROOT=$1
MAX_LINES=1500

cd "$ROOT"
bad=0 checked=0
# wc prints "COUNT NAME" per file and a "COUNT total" line per batch
while read -r n f; do
	[ "$f" = total ] && continue
	f=${f#./}
	checked=$((checked + 1))
	if [ "$n" -gt "$MAX_LINES" ]; then
		echo "too long: $f: $n lines (at most $MAX_LINES; split it along its seams)"
		bad=1
	fi
done < <(find dp cp include lib bench tests -type f \( -name '*.c' -o -name '*.h' \) -print0 |
	xargs -0 -r wc -l)

# A find that matched nothing (wrong root) must not pass.
[ "$checked" -gt 100 ] || { echo "only $checked files found under $ROOT"; exit 1; }
echo "$checked files checked, limit $MAX_LINES lines"
exit "$bad"
