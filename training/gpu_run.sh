#!/usr/bin/env bash
# The GPU run of issue 8, as ONE command on the device machine, from the repository root, with
# .train carried (made here by: python -m training.sources). It trains the default model for a
# wall-clock budget and writes into $OUT (the only folder that comes back): weights.npz
# (float16, ~15 MiB, rewritten atomically every minute), training.json and train.log.
# About 8.5 minutes in all with the defaults.
#
#   bash training/gpu_run.sh
#
# Rehearsal on a CPU, the same script with a one-minute budget and small crops:
#   OUT=/tmp/rehearse-out TRAIN_MINUTES=1 TRAIN_DEVICE=cpu TRAIN_BATCH=2 TRAIN_CROP=128 \
#       TRAIN_RESIZE=256 TRAIN_WORKERS=1 bash training/gpu_run.sh
set -uo pipefail
: "${OUT:?set OUT to the folder the results go to}"
MINUTES=${TRAIN_MINUTES:-7.5}
DEVICE=${TRAIN_DEVICE:-cuda}
BATCH=${TRAIN_BATCH:-8}
CROP=${TRAIN_CROP:-256}
RESIZE=${TRAIN_RESIZE:-512}
WORKERS=${TRAIN_WORKERS:-6}
# The training loop stops itself at the budget; this only stops a hang, leaving the last checkpoint.
LIMIT=$(python3 -c "print(int($MINUTES * 60 + 90))")
LOG="$OUT/train.log"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

{
  echo "== gpu_run.sh $(date -u +%FT%TZ) minutes=$MINUTES device=$DEVICE batch=$BATCH crop=$CROP resize=$RESIZE"
  git log -1 --format='commit %H %s' 2>/dev/null || true
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  python3 -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  du -sh .train
} 2>&1 | tee "$LOG"

if [ ! -f .train/vgg16_encoder.npz ]; then
  echo "error: .train/vgg16_encoder.npz is missing: carry .train (made by python -m training.sources)" | tee -a "$LOG"
  exit 2
fi
if [ "$DEVICE" = cuda ] && ! python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  echo "error: no CUDA device visible to torch" | tee -a "$LOG"
  exit 3
fi

timeout -k 15 "$LIMIT" python3 -m training.train \
  --content .train/content --style .train/style --encoder .train/vgg16_encoder.npz --output "$OUT" \
  --minutes "$MINUTES" --batch "$BATCH" --crop "$CROP" --resize "$RESIZE" --workers "$WORKERS" \
  --device "$DEVICE" --bf16 --log-every 100 --checkpoint-seconds 60 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
echo "== exit $rc; $OUT holds:" | tee -a "$LOG"
ls -l "$OUT" | tee -a "$LOG"
exit "$rc"
