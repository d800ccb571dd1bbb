#!/usr/bin/env bash
# Run the test suite in one virtualenv and write a one-line summary.
#
#   [LABEL=name] scripts/run-pytest.sh VENV SUMMARY_FILE [pytest args...]
#
# Exits with pytest's exit code, except that "no tests collected" (5) is turned into 1:
# a run that tested nothing is a failure.
set -uo pipefail

venv=$1
summary_file=$2
shift 2

py="$venv/bin/python"
label="${LABEL:-${venv#.venv-}} (airflow $("$py" -c 'import importlib.metadata as m; print(m.version("apache-airflow"))'))"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

start=$(date +%s)
"$py" -m pytest "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
elapsed=$(( $(date +%s) - start ))

count() {
    # last pytest result line, e.g. "==== 12 passed, 1 skipped in 3.45s ===="
    local n
    n=$(grep -E '^=+ .*(passed|failed|error|skipped|no tests ran|deselected).* in [0-9.]+s' "$log" \
        | tail -n 1 | grep -oE "[0-9]+ $1" | grep -oE '^[0-9]+' || true)
    echo "${n:-0}"
}
passed=$(count passed)
failed=$(count failed)
errors=$(count 'errors?')
skipped=$(count skipped)

if [ "$rc" -eq 5 ]; then
    echo "ERROR: pytest collected no tests in $venv" >&2
    rc=1
fi
if [ "$rc" -eq 0 ]; then verdict=OK; else verdict="FAILED (exit $rc)"; fi

printf '%-34s %s passed, %s failed, %s errors, %s skipped in %ss: %s\n' \
    "$label:" "$passed" "$failed" "$errors" "$skipped" "$elapsed" "$verdict" > "$summary_file"
printf '%s %s %s %s %s\n' "$rc" "$passed" "$failed" "$errors" "$skipped" > "$summary_file.counts"
cat "$summary_file"
exit "$rc"
