#!/usr/bin/env bash
# Lint: gofmt, go vet, staticcheck. Runs all three, fails if any reports a finding.
# Env: STATICCHECK (path to a staticcheck binary, skips the lookup/install).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

STATICCHECK_PKG=honnef.co/go/tools/cmd/staticcheck@v0.8.2   # the release that supports Go 1.26
failed=()

echo "--- gofmt -l"
# Tracked plus untracked-but-not-ignored .go files (so uncommitted files are checked too),
# excluding testdata.
mapfile -t files < <(
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files --cached --others --exclude-standard -- '*.go'
  else
    find . -name '*.go' -not -path './.git/*' | sed 's|^\./||'
  fi | grep -Ev '(^|/)testdata/' | sort -u | while read -r f; do [[ -f $f ]] && echo "$f"; done
)
if ((${#files[@]})); then
  unformatted=$(gofmt -l "${files[@]}")
  if [[ -n $unformatted ]]; then
    echo "these files need gofmt -w:"; echo "$unformatted"
    failed+=(gofmt)
  fi
fi

echo "--- go vet ./..."
go vet ./... || failed+=("go vet")

echo "--- staticcheck ./..."
sc=${STATICCHECK:-}
if [[ -z $sc ]]; then
  gobin=$(go env GOBIN); gopath=$(go env GOPATH); gobin=${gobin:-${gopath%%:*}/bin}
  if command -v staticcheck >/dev/null; then
    sc=$(command -v staticcheck)
  elif [[ -x $gobin/staticcheck ]]; then
    sc=$gobin/staticcheck
  else
    echo "installing $STATICCHECK_PKG"
    go install "$STATICCHECK_PKG"
    sc=$gobin/staticcheck
  fi
fi
echo "using $("$sc" -version 2>/dev/null || echo "$sc")"
"$sc" ./... || failed+=(staticcheck)

if ((${#failed[@]})); then
  echo "lint FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "lint OK"
