#!/usr/bin/env bash
# Every GPU row that waits for a GPU, in one short lease (about 9 minutes on one H100):
#   1. SAM's perturbation under bf16 at the Qwen2-1.5B shape (docs/sam.md, #18), beside
#   2. the fair test at GPU scale, src/knowlearn/configs/fair-gpu.yaml (docs/results.md, #14).
# What comes back lands in $OUT: the logs, the bf16 table, the experiment's report and a
# tarball of its run directory without weights (`knowlearn report` remakes tables and plots).
#   OUT=/tmp/gpu bash bench/gpu_session.sh
# CPU dry run at tiny size (what the test suite runs):
#   OUT=/tmp/gpu SAM_SHAPE=default BUDGET=300 FAIR_OVERRIDES="data.people=10 ..." bash bench/gpu_session.sh
set -u
OUT=${OUT:-/tmp/gpu-session}
BUDGET=${BUDGET:-540}            # seconds for the whole script
SAM_SHAPE=${SAM_SHAPE:-qwen2-1.5b}
RUN=${RUN:-/tmp/fair-gpu}
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
ls -la "$OUT"; echo "total $(( $(date +%s) - start )) s"
