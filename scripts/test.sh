#!/usr/bin/env bash
# Runs netext's whole test suite: vet, every package's tests, then each fuzz
# target for a bounded time. As root, tests that need root run in throwaway
# network namespaces; otherwise they skip, unless NETEXT_REQUIRE_ROOT_TESTS=1
# makes them fail instead (CI sets it).
#
# Environment:
#   NETEXT_FUZZTIME   time per fuzz target (default 15s; 0 skips fuzzing)
#   NETEXT_TEST_ARGS  extra arguments for `go test` (for example -race)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

fuzztime=${NETEXT_FUZZTIME:-15s}

echo "== go vet"
go vet ./...

echo "== go test"
# shellcheck disable=SC2086
go test -count=1 -timeout 12m ${NETEXT_TEST_ARGS:-} ./...

if [ "$fuzztime" != "0" ]; then
	echo "== fuzz ($fuzztime per target)"
	# Every `func FuzzXxx(` in a _test.go file is a target.
	grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r file; do
		pkg=./$(dirname "${file#./}")
		for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
			echo "-- $pkg $target"
			go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
		done
	done
fi
