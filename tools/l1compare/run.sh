#!/usr/bin/env bash
# Measures internal/l1 against the old hand-written cache and the cache
# libraries the issue named, in one run (BENCHMARKS.md, Part 3). A module of
# its own, so that the libraries never become dependencies of tokencache.
# internal/l1 cannot be imported from here: its source is copied in for the
# run and removed afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
trap 'rm -f l1copy_test.go' EXIT
sed 's/^package l1$/package l1compare/' ../../internal/l1/l1.go > l1copy_test.go
go test -run '^$' -bench . -benchmem -count "${COUNT:-6}" .
