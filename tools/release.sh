#!/usr/bin/env bash
# Leaderboard release (issue 12): every registered method on MIT-BIH, with its ablations at `small`, from ONE commit.
#
#   tools/release.sh COMMIT [DATA_ROOT]
#
# Checks COMMIT out in a separate worktree (../kdnas-release-<short hash>) and runs from there, writing records into
# this checkout's results/, so every record's provenance names COMMIT whatever is committed here meanwhile (records,
# docs). Seed by seed: budget `small` seeds 0-4 with the ablation variants, then `tiny` seeds 0-2 without them (the
# ablations are read at the main budget; at `tiny` they would double its cost), profile `quick`, two 1-thread
# workers. Resumable: a record already made at COMMIT is kept; every method with a record of another commit is rerun
# (with its variants at `small`; --no-resume), even where its settings did not change, so every record names COMMIT.
# Afterwards, on an idle machine: `python -m benchmark latency results/mitbih` and
# `python -m benchmark leaderboard --release --readme README.md`.
set -euo pipefail
commit=$(git rev-parse --verify "${1:?usage: tools/release.sh COMMIT [DATA_ROOT]}^{commit}")
here=$(git rev-parse --show-toplevel)
data_root=$(cd "${2:-$here/../shared/data}" && pwd)
tree="$here/../kdnas-release-${commit:0:7}"
[ -d "$tree" ] || git -C "$here" worktree add --detach "$tree" "$commit"
[ "$(git -C "$tree" rev-parse HEAD)" = "$commit" ] || { echo "$tree is not at $commit" >&2; exit 2; }
cd "$tree"
export OMP_NUM_THREADS=1
common=(--dataset mitbih --profile quick --workers 2 --no-latency-step --data-root "$data_root"
        --results-dir "$here/results")

other_commits() {  # budget seed -> comma list of the methods with a record (or a variant's) of another commit
  # Only labels COMMIT still runs count: a leftover of a removed variant must not restart its whole method.
  python - "$here/results" "$1" "$2" "$commit" <<'PY'
import json, pathlib, sys
from benchmark.catalog import method_catalog, variant_name
results, budget, seed, commit = sys.argv[1:]
labels = {m.name for m in method_catalog()} | {f"{m.name}[{variant_name(a)}]" for m in method_catalog() for a in m.ablations}
methods = set()
for path in pathlib.Path(results, "mitbih", "inter-patient", budget, "quick").glob(f"*/seed{seed}.json"):
    if path.parent.name in labels and json.loads(path.read_text()).get("provenance", {}).get("git_commit") != commit:
        methods.add(path.parent.name.split("[")[0])
print(",".join(sorted(methods)))
PY
}

one_seed() {  # budget seed [--ablations]
  local older
  older=$(other_commits "$1" "$2")
  if [ -n "$older" ]; then  # rerun them (and their variants), whether or not their settings changed
    python -m benchmark run --methods "$older" ${3:-} --budget "$1" --seeds "$2" --no-resume "${common[@]}"
  fi
  python -m benchmark run --methods all ${3:-} --budget "$1" --seeds "$2" "${common[@]}"
}

for seed in 0 1 2 3 4; do one_seed small "$seed" --ablations; done
for seed in 0 1 2; do one_seed tiny "$seed"; done
