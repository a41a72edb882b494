#!/usr/bin/env bash
# Regenerates the reference part of docs/config.md (between the BEGIN/END GENERATED
# markers) from `zeroth config docs`. The test "docs/config.md contains the current
# generated reference" fails until this is run after adding or changing a config key.
#
# usage: scripts/update-config-docs.sh [path/to/zeroth]   (default: build/zeroth)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/build/zeroth}"
doc="$root/docs/config.md"
begin='<!-- BEGIN GENERATED: scripts/update-config-docs.sh -->'
end='<!-- END GENERATED -->'
if [[ ! -x "$bin" ]]; then
  echo "update-config-docs: '$bin' is not an executable zeroth binary (build it, or pass its path)" >&2
  exit 2
fi
grep -qxF "$begin" "$doc" && grep -qxF "$end" "$doc" || {
  echo "update-config-docs: $doc lacks the lines '$begin' and '$end'" >&2
  exit 2
}
generated="$(mktemp)"
trap 'rm -f "$generated" "$doc.tmp"' EXIT
"$bin" config docs > "$generated"
awk -v begin="$begin" -v end="$end" -v gen="$generated" '
  $0 == begin { print; while ((getline line < gen) > 0) print line; skip = 1; next }
  $0 == end { skip = 0 }
  !skip { print }
' "$doc" > "$doc.tmp"
mv "$doc.tmp" "$doc"
echo "updated $doc"
