#!/usr/bin/env bash
# The training run on a lent GPU machine, as ONE command from the repository root, with the
# pictures carried (training/README.md, "The GPU run"). The same trainer as on the CPU goes on
# from the committed state (training/state/) for a wall-clock budget, and writes into $OUT (the
# only folder that comes back) each state in parts of at most 15 MB (files over 16 MiB do not come
# back; rejoin them with `cat OUT/state.npz.part-* > training/state/state.npz`) and the logs.
#
#   bash training/gpu_run.sh                       # the run itself: $OUT/state.npz.part-*
#   bash training/gpu_run.sh NAME[:KEY=VALUE,...] ...
#
# With arguments, each NAME is a fork of the committed state (python -m training.fork new, KEY=VALUE
# as its --set), and all of them train at once on the one GPU: at the run's sizes each process is
# bound by its own Python and kernel launches, not by the GPU. Each comes back as
# $OUT/NAME.npz.part-* and $OUT/NAME.log, to be compared here (python -m training.fork eval)
# and adopted. Two forks' states (25 MB each) are what fits in what comes back (64 MiB).
#
# What travels is 64 MiB in all, the repository included (40 MB with the state): carry the
# pictures at 256 px, which the 128 px phase reads; --one-phase stops each run where that phase ends.
#   TRAIN_DATA=.train-gpu bash training/gpu_run.sh base b16:schedule.0.batch=16,identity_samples=4
#
# Rehearsal on a CPU, the same script with a one-minute budget:
#   OUT=/tmp/rehearse-out TRAIN_MINUTES=1 TRAIN_DEVICE=cpu bash training/gpu_run.sh
set -uo pipefail
: "${OUT:?set OUT to the folder the results go to}"
MINUTES=${TRAIN_MINUTES:-7.5}
DEVICE=${TRAIN_DEVICE:-cuda}
DATA=${TRAIN_DATA:-.train}
THREADS=${TRAIN_THREADS:-4}
ONE_PHASE=${TRAIN_ONE_PHASE:-1}  # 0: the data holds the pictures of every phase (training/README.md)
FORKS=${TRAIN_FORKS:-/tmp/gpu-forks}
# The training loop stops itself at the budget; this only stops a hang, leaving the last checkpoint.
LIMIT=$(python3 -c "print(int($MINUTES * 60 + 90))")
LOG="$OUT/train.log"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

{
  echo "== gpu_run.sh $(date -u +%FT%TZ) minutes=$MINUTES device=$DEVICE forks: ${*:-none}"
  git log -1 --format='commit %H %s' 2>/dev/null || true
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  python3 -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  du -sh "$DATA" 2>/dev/null
} 2>&1 | tee "$LOG"

if [ ! -d "$DATA/content" ] || [ ! -d "$DATA/style" ]; then
  echo "error: $DATA/content and $DATA/style are missing: carry them (made by python -m training.sources; smaller: training.prepare --short-side 256)" | tee -a "$LOG"
  exit 2
fi
if [ "$DEVICE" = cuda ] && ! python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  echo "error: no CUDA device visible to torch" | tee -a "$LOG"
  exit 3
fi
FLAGS=(--data "$DATA" --device "$DEVICE" --threads "$THREADS" --minutes "$MINUTES" --eval-minutes 0
       --checkpoint-minutes 1 --log-seconds 30)
[ "$ONE_PHASE" = 1 ] && FLAGS+=(--one-phase)
[ "$DEVICE" = cuda ] && FLAGS+=(--bf16)
[ -n "${TRAIN_ITERATIONS:-}" ] && FLAGS+=(--iterations "$TRAIN_ITERATIONS")

# name:state folder:log, one a process
RUNS=()
if [ $# -eq 0 ]; then
  RUNS=("state:training/state:$LOG")
else
  for spec in "$@"; do
    name=${spec%%:*}
    sets=()
    if [[ $spec == *:* ]]; then
      IFS=, read -ra pairs <<< "${spec#*:}"
      for pair in "${pairs[@]}"; do sets+=(--set "$pair"); done
    fi
    rm -rf "${FORKS:?}/$name"
    python3 -m training.fork new "$FORKS/$name" "${sets[@]}" 2>&1 | tee -a "$LOG" || exit 4
    : > "$OUT/$name.log"
    RUNS+=("$name:$FORKS/$name:$OUT/$name.log")
  done
fi

PIDS=()
for r in "${RUNS[@]}"; do
  IFS=: read -r name folder log <<< "$r"
  timeout -k 15 "$LIMIT" python3 -m training.train --state "$folder" "${FLAGS[@]}" >> "$log" 2>&1 &
  PIDS+=($!)
done
rc=0
for pid in "${PIDS[@]}"; do wait "$pid" || rc=$?; done

for r in "${RUNS[@]}"; do
  IFS=: read -r name folder log <<< "$r"
  tail -n 3 "$log" | sed "s/^/$name: /" | tee -a "$LOG"
  if [ -f "$folder/state.npz" ]; then
    split -b 15000000 -d "$folder/state.npz" "$OUT/$name.npz.part-"
  fi
done
echo "== exit $rc; $OUT holds:" | tee -a "$LOG"
ls -l "$OUT" | tee -a "$LOG"
exit "$rc"
