#!/usr/bin/env bash
# The paper configuration's code paths (exact networks, samplers, Inception metrics, likelihood, guidance) for a few
# steps on generated CIFAR-shaped data: config/paper.yaml + the config/paper_smoke.yaml overlay. Writes untrained
# Inception weights first when the real ones are absent (FID / IS / KID then mean nothing). Records the wall-clock and
# the slowest jobs in results/benchmarks/paper_smoke_<device>.md.
# Usage: bash benchmarks/paper_smoke.sh [cpu|cuda] [cores]
set -euo pipefail
cd "$(dirname "$0")/.."
device=${1:-cpu}
cores=${2:-all}
weights=work/paper_smoke/inception-untrained.pth
[[ -f $weights ]] || python -c "from sgm_bench.metrics.fidelity import write_untrained_inception as w; w('$weights')"
start=$(date +%s.%N)
snakemake --cores "$cores" --configfile config/paper.yaml config/paper_smoke.yaml --config device="$device" \
  > "/tmp/sgm_bench_paper_smoke_$device.log" 2>&1
end=$(date +%s.%N)
source benchmarks/smoke_summary.sh
smoke_summary "Paper configuration smoke run (\`config/paper.yaml\` + \`config/paper_smoke.yaml\`), device $device" \
  results/paper_smoke "$start" "$end" | tee "results/benchmarks/paper_smoke_$device.md"
