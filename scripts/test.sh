#!/usr/bin/env bash
# `npm test`: build, typecheck, lint and test every package (nx), against the
# real services (the vitest global setup brings up what is missing). When the
# run fails, the failing tests and errors are printed again at the very end,
# so the cause is in the last lines of a long CI log.
set -uo pipefail
cd "$(dirname "$0")/.."
log="$(mktemp -t dataflow-test.XXXXXX.log)"
trap 'rm -f "$log"' EXIT
npx nx run-many -t build,typecheck,lint,test --outputStyle=stream "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
  echo
  echo "=== npm test failed (exit $rc); what failed, again ==="
  sed 's/\x1b\[[0-9;]*m//g' "$log" \
    | grep -E ' FAIL | ×|✗|AssertionError|Error: |error TS[0-9]+|[0-9]+:[0-9]+ +error |Failed tasks|^- @dataflow/' \
    | grep -v '✓' | tail -80
fi
exit "$rc"
