#!/usr/bin/env bash
# Keep the state folder (ledger, suppression list, audit log and its chain head) on a
# dedicated branch between workflow runs. See docs/github.md ("State between runs").
#
#   campaign-state.sh restore          fetch the branch into $STATE_DIR
#   campaign-state.sh save MESSAGE     commit $STATE_DIR as the branch's next commit and push
#
# The suppression list may hold addresses, so the folder is stored encrypted
# (state.tar.enc, AES-256-GCM with CAMPAIGN_DATA_KEY via `campaign data encrypt`); only
# ci-sent/<campaign> (the digest each campaign was last sent at) is kept in clear, for
# the workflow to read without the key. One commit per save, never force-pushed: the
# history is an independent record of every earlier state. Protect the branch (no force
# push, no deletion). Restoring refuses when the branch is missing unless
# INITIALIZE_STATE=true, because sending without the ledger of earlier sends could send
# a message twice.
set -euo pipefail

branch=${STATE_BRANCH:-campaign-state}
dir=${STATE_DIR:-.campaign}
campaign=${CAMPAIGN_BIN:-campaign}
remote_ref="refs/remotes/origin/$branch"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

case "${1:-}" in
  restore)
    if git ls-remote --exit-code --heads origin "$branch" > /dev/null; then
      git fetch --no-tags --depth=1 origin "+refs/heads/$branch:$remote_ref"
      git archive "$remote_ref" | tar -x -C "$work"
      "$campaign" data decrypt "$work/state.tar.enc" "$work/state.tar"
      rm -rf "$dir"
      mkdir -p "$dir"
      tar -x -C "$dir" -f "$work/state.tar"
      echo "restored $dir from $branch at $(git rev-parse --short "$remote_ref")"
    elif [ "${INITIALIZE_STATE:-false}" = "true" ]; then
      mkdir -p "$dir"
      echo "state branch $branch does not exist: starting with an empty state (initialize-state)"
    else
      echo "::error title=state missing::the state branch '$branch' does not exist. If nothing was ever sent from this repository, run the send workflow by hand with initialize-state; otherwise restore the branch first: sending without the ledger could send a message twice."
      exit 1
    fi
    ;;
  save)
    message=${2:-"state after run ${GITHUB_RUN_ID:-local}"}
    mkdir -p "$work/tree"
    tar -C "$dir" -cf "$work/state.tar" .
    "$campaign" data encrypt "$work/state.tar" "$work/tree/state.tar.enc"
    if [ -d "$dir/ci-sent" ]; then
      cp -R "$dir/ci-sent" "$work/tree/ci-sent"
    fi
    if [ -n "${STATE_COPY:-}" ]; then
      # a second, encrypted copy (kept as an artifact) in case the push below fails
      cp "$work/tree/state.tar.enc" "$STATE_COPY"
    fi
    export GIT_INDEX_FILE="$work/index"
    git --work-tree="$work/tree" add --all --force .
    tree=$(git write-tree)
    parent=$(git rev-parse -q --verify "$remote_ref" || true)
    export GIT_AUTHOR_NAME="campaign-state[bot]" GIT_COMMITTER_NAME="campaign-state[bot]"
    export GIT_AUTHOR_EMAIL="campaign-state@users.noreply.github.com"
    export GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
    commit=$(git commit-tree "$tree" ${parent:+-p "$parent"} -m "$message")
    # a plain push: it fails rather than overwrite a state another run saved meanwhile
    git push --quiet origin "$commit:refs/heads/$branch"
    git update-ref "$remote_ref" "$commit"
    echo "saved $dir to $branch at ${commit:0:12}"
    ;;
  *)
    echo "usage: $0 restore | save MESSAGE" >&2
    exit 2
    ;;
esac
