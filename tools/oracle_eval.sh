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
cd "$(dirname "$0")/.."
CONFIG="$1"
OUT="$2"
shift 2
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
for spec in "$@"; do
  case "$spec" in
    *=*) embed "${spec%%=*}" --checkpoint "${spec#*=}" ;;
    *) echo "oracle_eval: '$spec': give checkpoints as NAME=FILE" >&2; exit 2 ;;
  esac
done
embed random_init --random-init
embed pixel_diff --pixel-diff
echo "== flow"
"$PY" tools/flow_oracle.py flow "$OUT/pixel_diff.json" \
  --out "$OUT/windows-flow.json" ${FLOW_ARGS[@]+"${FLOW_ARGS[@]}"}
echo "== probes"
"$PY" tools/flow_oracle.py probe "$OUT/windows-flow.json" "${cols[@]}" \
  --out "$OUT/oracle.json"
