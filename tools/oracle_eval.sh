#!/usr/bin/env bash
# oracle_eval.sh: what models of real footage know about its motion, against
# OpenCV optical flow (tools/flow_oracle.py), beside both baselines.
#
#   tools/oracle_eval.sh CONFIG OUTDIR NAME=CHECKPOINT [NAME=CHECKPOINT ...]
#
# For every window of the config's packed footage (data.source = shards,
# both splits), embeds it with each checkpoint, with the untrained network
# (random_init) and as the pixel-difference baseline (pixel_diff), forwards
# and reversed; computes the flow targets once; fits ridge and kNN probes on
# the training-split windows and reports R^2 on the held-out ones.
# Writes OUTDIR/NAME.{npy,json} (and -rev.npy), OUTDIR/windows-flow.json and
# OUTDIR/oracle.json; prints the tables. Extra embed options (e.g. --stride 2,
# --fps 10) go in RC_EMBED_ARGS; extra flow options (--footage DIR, --method
# farneback) in RC_FLOW_ARGS.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
# paths as given, resolved before moving to the repository root
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
CONFIG="$(abspath "$1")"
OUT="$(abspath "$2")"
shift 2
specs=()
for spec in "$@"; do
  case "$spec" in
    random_init=*|pixel_diff=*)
      echo "oracle_eval: '${spec%%=*}' is the name of a baseline; call the checkpoint something else" >&2
      exit 2 ;;
    *=*) specs+=("${spec%%=*}=$(abspath "${spec#*=}")") ;;
    *) echo "oracle_eval: '$spec': give checkpoints as NAME=FILE" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
BIN="${RECOMPOSE:-build/recompose}"
PY="${RC_PYTHON:-/usr/bin/python3}"
read -r -a EMBED_ARGS <<<"${RC_EMBED_ARGS:-}"
read -r -a FLOW_ARGS <<<"${RC_FLOW_ARGS:-}"
mkdir -p "$OUT"
cols=()
embed() { # name, then the weights option(s)
  local name="$1"
  shift
  echo "== embed $name"
  "$BIN" embed "$CONFIG" "$@" --out "$OUT/$name" --split all --rev \
    ${EMBED_ARGS[@]+"${EMBED_ARGS[@]}"}
  cols+=("$name=$OUT/$name")
}
for spec in ${specs[@]+"${specs[@]}"}; do
  embed "${spec%%=*}" --checkpoint "${spec#*=}"
done
embed random_init --random-init
embed pixel_diff --pixel-diff
echo "== flow"
"$PY" tools/flow_oracle.py flow "$OUT/pixel_diff.json" \
  --out "$OUT/windows-flow.json" ${FLOW_ARGS[@]+"${FLOW_ARGS[@]}"}
echo "== probes"
"$PY" tools/flow_oracle.py probe "$OUT/windows-flow.json" "${cols[@]}" \
  --out "$OUT/oracle.json"
