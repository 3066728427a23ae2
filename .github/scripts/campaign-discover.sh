#!/usr/bin/env bash
# Which campaigns the send workflow should send: those whose approvals verify for their
# current content and that were not sent at that digest yet (ci-sent/<campaign> on the
# state branch). Prints a JSON array of campaign ids. See docs/github.md.
#
#   campaign-discover.sh            every approved, unsent campaign
#   campaign-discover.sh ID         only ID, if it verifies (to resume or retry it by hand)
set -euo pipefail

branch=${STATE_BRANCH:-campaign-state}
campaign=${CAMPAIGN_BIN:-campaign}
only=${1:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

git fetch --quiet --no-tags --depth=1 origin "+refs/heads/$branch:refs/remotes/origin/$branch" \
  2> /dev/null || true

set +e
"$campaign" verify --all --format json > "$work/verify.json"
rc=$?
set -e
# 1 only means that some campaign is not approved; 2 is a real error
[ "$rc" -le 1 ] || exit "$rc"

picked=()
while read -r id digest; do
  if [ -n "$only" ]; then
    if [ "$id" = "$only" ]; then picked+=("$id"); fi
    continue
  fi
  sent=$(git show "refs/remotes/origin/$branch:ci-sent/$id" 2> /dev/null || true)
  if [ "$sent" != "$digest" ]; then picked+=("$id"); fi
done < <(jq -r '.[] | select(.valid) | "\(.campaign) \(.digest)"' "$work/verify.json")

if [ -n "$only" ] && [ ${#picked[@]} -eq 0 ]; then
  echo "::error::campaign '$only' is unknown or its approvals do not verify" >&2
  "$campaign" verify "$only" >&2 || true
  exit 1
fi
printf '%s\n' "${picked[@]+"${picked[@]}"}" | jq -R . | jq -cs 'map(select(. != ""))'
