#!/usr/bin/env bash
# Checks that README.md's code cannot drift from the code that CI compiles and runs: a fenced block
# right after a line `<!-- snippet: PATH -->` must equal the file PATH byte for byte, every C++
# block must carry such a line, and every examples/snippets/*.cpp must be quoted.
# Usage: scripts/check_readme.sh [README]   (default: README.md)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readme="${1:-README.md}"
blocks="$(mktemp -d)"
trap 'rm -rf "$blocks"' EXIT

# Writes each quoted block to $blocks/<n> and lists "<n> <line> <path>" on stdout; lists
# "unquoted <line>" for a C++ block without a snippet line.
awk -v out="$blocks" '
  /^<!-- snippet: .* -->$/ { path = $3; marker = NR; next }
  !inside && /^```/ {
    inside = 1
    language = substr($0, 4)
    if (path != "" && marker == NR - 1) {
      n++; file = out "/" n; printf "" > file
      print n, NR, path
    } else {
      file = ""
      if (language == "cpp" || language == "c++") print "unquoted", NR
    }
    path = ""
    next
  }
  inside && /^```$/ { inside = 0; if (file != "") close(file); next }
  inside && file != "" { print > file }
  { path = "" }
' "$readme" >"$blocks/index"

failures=0
quoted=()
while read -r n line path; do
  if [ "$n" = unquoted ]; then
    echo "$readme:$line: a C++ block without a '<!-- snippet: PATH -->' line before it" >&2
    failures=$((failures + 1))
  elif [ ! -f "$path" ]; then
    echo "$readme:$line: quotes $path, which does not exist" >&2
    failures=$((failures + 1))
  elif ! diff -u --label "$path" --label "$readme:$line" "$path" "$blocks/$n" >&2; then
    echo "$readme:$line: the block differs from $path (diff above)" >&2
    failures=$((failures + 1))
  else
    quoted+=("$path")
  fi
done <"$blocks/index"

for snippet in examples/snippets/*.cpp; do
  if ! printf '%s\n' "${quoted[@]}" | grep -qxF "$snippet"; then
    echo "$readme: does not quote $snippet (each snippet is README code)" >&2
    failures=$((failures + 1))
  fi
done

if [ "$failures" -ne 0 ]; then
  echo "check_readme: $failures problem(s) in $readme" >&2
  exit 1
fi
echo "check_readme: ${#quoted[@]} blocks of $readme equal their files"
