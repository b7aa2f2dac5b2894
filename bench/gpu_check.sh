#!/usr/bin/env bash
# Figure 4 of the benchmarks: clients sharing one GPU (resources.client-gpus).
#
# Run on a machine with an NVIDIA GPU, from a clone set up with scripts/install.sh
# (with a CUDA build of torch), in under 8 minutes:
#     bash bench/gpu_check.sh [OUT_DIR]
# It reports whether torch sees CUDA, then runs the quickstart job (Fashion-MNIST,
# CNN, 10 clients, DP-SGD) for 5 rounds twice: one client per GPU (client-gpus = 1)
# and four per GPU (client-gpus = 0.25). For each it prints the median time per
# round and the most processes nvidia-smi saw on the GPU at once (clients + the driver).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/fedsim-gpu-check}
FEDSIM=${FEDSIM:-.venv/bin/fedsim}
PYTHON=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"

"$PYTHON" -c 'import torch; ok = torch.cuda.is_available(); print("torch", torch.__version__, "| CUDA", ok, "|", torch.cuda.get_device_name(0) if ok else "no GPU"); raise SystemExit(0 if ok else 3)' \
  || { echo "no CUDA GPU visible to torch: nothing to measure"; exit 3; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

for share in 1 0.25; do
  log="$OUT/smi-$share.log"
  : > "$log"
  ( while true; do nvidia-smi --query-compute-apps=pid --format=csv,noheader >> "$log" 2>/dev/null || true; echo "--" >> "$log"; sleep 0.5; done ) &
  poller=$!
  start=$(date +%s)
  rm -rf "$OUT/run-$share"  # a run cut off by the timeout below would block the next try
  timeout 200 "$FEDSIM" run scenarios/quickstart.toml --out "$OUT/run-$share" \
    --set resources.client-gpus="$share" --set resources.client-cpus=1 \
    --set federation.rounds=5 --set audit.enabled=false > "$OUT/run-$share.log" 2>&1 || echo "run with client-gpus=$share failed: see $OUT/run-$share.log"
  kill "$poller" 2>/dev/null || true
  wall=$(( $(date +%s) - start ))
  "$PYTHON" - "$OUT/run-$share" "$log" "$share" "$wall" <<'PY'
import csv, json, statistics, sys
from pathlib import Path
run, log, share, wall = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
samples, current = [], set()
for line in log.read_text().splitlines():
    if line == "--":
        samples.append(len(current)); current = set()
    elif line.strip():
        current.add(line.strip())
summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
rounds = [float(r["round_s"]) for r in csv.DictReader((run / "rounds.csv").open())][2:] if (run / "rounds.csv").exists() else []
print(
    f"client-gpus {share}: CUDA visible to the run {summary.get('environment', {}).get('cuda')}, "
    f"median round {statistics.median(rounds) if rounds else float('nan'):.2f} s, "
    f"at most {max(samples, default=0)} processes on the GPU at once (nvidia-smi; the driver, "
    "which evaluates the global model there, is one of them), "
    f"accuracy {100 * summary.get('final_accuracy', float('nan')):.1f} %, wall {wall} s"
)
PY
done
