#!/usr/bin/env bash
# Every GPU row that waits for a GPU, in one short lease (about 9 minutes on one H100, then a
# second call of about 4):
#   1. SAM's perturbation under bf16 at the Qwen2-1.5B shape (docs/sam.md, #18), beside
#   2. the fair test at GPU scale, src/knowlearn/configs/fair-gpu.yaml (docs/results.md, #14);
#   3. after both, alone on the card: training throughput at the presets' shapes vs Trainer
#      and TRL (bench/presets_shapes.py, #17), in PRESETS_S seconds past BUDGET (0: skipped).
# What comes back lands in $OUT: the logs, the bf16 table, the experiment's report and a
# tarball of its run directory without weights (`knowlearn report` remakes tables and plots).
#   OUT=/tmp/gpu bash bench/gpu_session.sh
# Step 3's TRL arm needs trl and datasets, which the card's image lacks: carry them as wheels
# (`carry: [".whl"]`, the folder ignored by .git/info/exclude), made here with
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
# Without them its rows read "not installed" and the other arms run.
# CPU dry run at tiny size (what the test suite runs):
#   OUT=/tmp/gpu SAM_SHAPE=default BUDGET=300 FAIR_OVERRIDES="data.people=10 ..." \
#     PRESETS_ARGS="--device cpu --model tiny --steps 1 --rounds 1 --batch 2 --accum 2" bash bench/gpu_session.sh
set -u
OUT=${OUT:-/tmp/gpu-session}
BUDGET=${BUDGET:-540}            # seconds for the whole script
SAM_SHAPE=${SAM_SHAPE:-qwen2-1.5b}
RUN=${RUN:-/tmp/fair-gpu}
# Seconds for step 3 after BUDGET's steps (its defaults take ~4 min). 0 by default: one call
# of the device tool may run 600 s, so run step 3 as a second call of its own, which skips
# steps 1-2:  OUT=/tmp/gpu2 PRESETS_ONLY=1 PRESETS_S=280 bash bench/gpu_session.sh  (timeout_s 300)
PRESETS_S=${PRESETS_S:-0}
PRESETS_ONLY=${PRESETS_ONLY:-0}
PRESETS_ARGS=${PRESETS_ARGS:---device cuda --model qwen2-1.5b}
# parallel=16: every (arm, seed) of fair-gpu at once, one CPU core each; two of them build the bases
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
start=$(date +%s)
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  python3 -c "import platform, torch, transformers, accelerate; print(platform.machine(), 'torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__, 'cuda', torch.cuda.is_available())"
  nproc
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

if [ "$PRESETS_ONLY" = 1 ]; then BUDGET=0; else
timeout 200 python3 bench/sam_bf16.py --shape "$SAM_SHAPE" --out "$OUT/results_sam_bf16.md" \
  > "$OUT/sam_bf16.log" 2>&1 &
bf16=$!

# shellcheck disable=SC2086  # FAIR_OVERRIDES is a list of key=value words
timeout $((BUDGET - 45)) python3 -m knowlearn run --config fair-gpu "out=$RUN" "parallel=${PARALLEL:-16}" \
  ${FAIR_OVERRIDES:-} 2>&1 | tee "$OUT/fair-gpu.log" | grep -v '^\[' 
echo "knowlearn run: exit ${PIPESTATUS[0]} after $(( $(date +%s) - start )) s"
if [ ! -f "$RUN/report.md" ] && [ -f "$RUN/experiment.json" ]; then
  timeout 30 python3 -m knowlearn report "$RUN" > "$OUT/report.log" 2>&1  # the seeds and arms done
fi
cp "$RUN/report.md" "$OUT/" 2>/dev/null
tar czf "$OUT/fair-gpu-run.tar.gz" -C "$(dirname "$RUN")" \
  --exclude='*.safetensors' --exclude='*.bin' --exclude='*.pt' --exclude='checkpoint*' \
  --exclude='cache' --exclude='data' --exclude='tokenizer' --exclude='init' \
  --exclude='predictions.jsonl' "$(basename "$RUN")" 2>/dev/null  # what `knowlearn report` reads: < 16 MiB
wait "$bf16"; echo "sam_bf16: exit $?"
cat "$OUT/results_sam_bf16.md" 2>/dev/null || tail -5 "$OUT/sam_bf16.log"
fi  # PRESETS_ONLY

# 3. Last, so it cannot push steps 1-2 out of BUDGET, and alone on the card (its timings):
# it gets what is left of BUDGET + PRESETS_S, and runs only if that is at least 60 s. The
# table is rewritten after each round, so a timeout still leaves the rounds done.
left=$(( BUDGET + PRESETS_S - ($(date +%s) - start) ))
if [ "$PRESETS_S" -gt 0 ] && [ "$left" -ge 60 ]; then
  if ls .whl/trl-*.whl >/dev/null 2>&1 && ! python3 -c "import trl" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
      .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
  fi
  # shellcheck disable=SC2086  # PRESETS_ARGS is a list of words
  timeout "$left" python3 bench/presets_shapes.py $PRESETS_ARGS --out "$OUT/results_presets.md" \
    > "$OUT/presets_shapes.log" 2>&1
  echo "presets_shapes: exit $? ($left s allowed)"
  cat "$OUT/results_presets.md" 2>/dev/null || tail -5 "$OUT/presets_shapes.log"
else
  echo "presets_shapes: skipped ($left s left of BUDGET + PRESETS_S)"
fi
ls -la "$OUT"; echo "total $(( $(date +%s) - start )) s"
