#!/usr/bin/env bash
# test_slurm_requeue.sh: tools/slurm/train.sbatch continues a preempted run
# by itself. The job script runs here with stub srun and scontrol on PATH
# (srun runs the command once, as one rank; scontrol records what it was
# asked) and the SLURM_* variables a job sees:
#  - first submission into an empty RUN_DIR: a fresh run; SIGUSR1 mid-run
#    (Slurm's warning before the time limit) stops it with a checkpoint,
#    the script asks for `scontrol requeue JOBID` and ends 0;
#  - the requeued job (the same script, the same arguments) resumes from
#    the checkpoint and ends 0 with nothing more asked of scontrol;
#  - its last checkpoint holds bitwise the tensors of an uninterrupted run;
#  - a run that fails (a bad --set) passes its exit status on, no requeue.
set -u
BIN=${RC_BIN:?RC_BIN not set}
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
tmp=$(mktemp -d /tmp/rc_slurm_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"
cat > "$tmp/bin/srun" <<'STUB'
#!/usr/bin/env bash
# srun stub: drop srun's own options, run the command as the only task
while [ $# -gt 0 ] && [ "${1#--}" != "$1" ]; do shift; done
exec "$@"
STUB
cat > "$tmp/bin/scontrol" <<STUB
#!/usr/bin/env bash
echo "\$*" >> "$tmp/scontrol.calls"
STUB
chmod +x "$tmp/bin/srun" "$tmp/bin/scontrol"
export PATH="$tmp/bin:$PATH" RECOMPOSE_BIN="$BIN"
export SLURM_JOB_ID=4242 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS_PER_NODE=1
export SLURM_NTASKS=1 SLURM_CPUS_PER_TASK=2

STEPS=300
small=(--set data.image_size=32 --set model.conv_channels=8,16,16
       --set model.conv_kernels=5,3,3 --set model.conv_strides=2,2,2
       --set model.feature_dim=16 --set model.hidden=16 --set model.embed_dim=8
       --set train.batch=4 --set train.warmup=2 --set train.threads=2
       --set train.log_every=1 --set train.checkpoint_every=1000
       --set train.steps=$STEPS)
data_of() { # tensor bytes of a safetensors file (after length and header)
  local n
  n=$(od -An -t u8 -N8 "$1" | tr -d ' ')
  tail -c +$((9 + n)) "$1"
}
job() { bash tools/slurm/train.sbatch configs/tiny.ini "$tmp/run" "${small[@]}" "$@"; }

# first submission, warned mid-run
job > "$tmp/job1.log" 2>&1 &
jobpid=$!
for _ in $(seq 1 500); do
  [ -s "$tmp/run/metrics.jsonl" ] && break
  sleep 0.02
done
pid=$(pgrep -f -n "recompose train configs/tiny.ini --out $tmp/run") \
  || fail "the job's trainer is not running"
[ -n "${pid:-}" ] && kill -USR1 "$pid"
wait "$jobpid"; st=$?
[ "$st" -eq 0 ] || { cat "$tmp/job1.log"; fail "stopped job ended $st, expected 0"; }
[ "$(cat "$tmp/scontrol.calls" 2>/dev/null)" = "requeue 4242" ] \
  || fail "expected 'scontrol requeue 4242', got '$(cat "$tmp/scontrol.calls" 2>/dev/null)'"
grep -q "recompose: step " "$tmp/job1.log" || fail "the job log shows no progress line"
ck=$(ls "$tmp/run"/ckpt-*.safetensors 2>/dev/null | tail -1)
[ -n "$ck" ] && [ "$ck" != "$tmp/run/ckpt-$(printf %08d $STEPS).safetensors" ] \
  || fail "no mid-run checkpoint ($ck)"

# the requeued job: the same script goes on from the checkpoint
job > "$tmp/job2.log" 2>&1 || { cat "$tmp/job2.log"; fail "requeued job failed"; }
grep -q "resumed from $ck" "$tmp/job2.log" || fail "the requeued job did not resume from $ck"
[ "$(wc -l < "$tmp/scontrol.calls")" -eq 1 ] || fail "a finished job asked for another requeue"
last="$tmp/run/ckpt-$(printf %08d $STEPS).safetensors"
"$BIN" train configs/tiny.ini --out "$tmp/straight" --quiet "${small[@]}" \
  > "$tmp/straight.log" 2>&1 || { cat "$tmp/straight.log"; fail "uninterrupted run"; }
cmp -s <(data_of "$last") <(data_of "$tmp/straight/ckpt-$(printf %08d $STEPS).safetensors") \
  || fail "the requeued run's final tensors differ from an uninterrupted run's"

# a failing run passes its status on and is not requeued
job --set train.lr=fast > "$tmp/job3.log" 2>&1; st=$?
[ "$st" -eq 1 ] || fail "a failing job ended $st, expected 1"
[ "$(wc -l < "$tmp/scontrol.calls")" -eq 1 ] || fail "a failed job was requeued"

if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo ok
