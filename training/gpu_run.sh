#!/usr/bin/env bash
# The training run on a lent GPU machine, as ONE command from the repository root, with .train
# carried (python -m training.sources). The same trainer as on the CPU goes on from the committed
# state (training/state/), for a wall-clock budget, and writes into $OUT (the only folder that
# comes back): state.npz in parts of at most 15 MB (files over 16 MiB do not come back; rejoin
# them with `cat OUT/state.npz.part-* > training/state/state.npz`) and train.log.
#
#   bash training/gpu_run.sh
#
# What travels is 64 MiB in all, the repository included (45 MB with the state): carry the
# pictures at 256 px, which the 128 px phase reads (training/README.md, "The GPU run"), and stop
# at the end of that phase:
#   TRAIN_DATA=.train-gpu TRAIN_ITERATIONS=20000 bash training/gpu_run.sh
#
# Rehearsal on a CPU, the same script with a one-minute budget:
#   OUT=/tmp/rehearse-out TRAIN_MINUTES=1 TRAIN_DEVICE=cpu bash training/gpu_run.sh
set -uo pipefail
: "${OUT:?set OUT to the folder the results go to}"
MINUTES=${TRAIN_MINUTES:-7.5}
DEVICE=${TRAIN_DEVICE:-cuda}
DATA=${TRAIN_DATA:-.train}
ITERATIONS=()
[ -n "${TRAIN_ITERATIONS:-}" ] && ITERATIONS=(--iterations "$TRAIN_ITERATIONS")
# The training loop stops itself at the budget; this only stops a hang, leaving the last checkpoint.
LIMIT=$(python3 -c "print(int($MINUTES * 60 + 90))")
LOG="$OUT/train.log"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

{
  echo "== gpu_run.sh $(date -u +%FT%TZ) minutes=$MINUTES device=$DEVICE"
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
BF16=()
[ "$DEVICE" = cuda ] && BF16=(--bf16)

timeout -k 15 "$LIMIT" python3 -m training.train --state training/state --data "$DATA" --device "$DEVICE" \
  "${BF16[@]}" "${ITERATIONS[@]}" --minutes "$MINUTES" --eval-minutes 0 --checkpoint-minutes 1 --log-seconds 30 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
if [ -f training/state/state.npz ]; then
  split -b 15000000 -d training/state/state.npz "$OUT/state.npz.part-"
fi
echo "== exit $rc; $OUT holds:" | tee -a "$LOG"
ls -l "$OUT" | tee -a "$LOG"
exit "$rc"
