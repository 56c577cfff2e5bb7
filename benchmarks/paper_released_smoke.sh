#!/usr/bin/env bash
# The released configuration's code paths (import of score_sde and diffusers checkpoints, every sampler, Inception
# metrics, likelihood, paper tables) on CPU with reduced random-weight stand-ins: config/paper_released.yaml + the
# config/paper_released_smoke.yaml overlay. Writes untrained Inception weights and a reduced diffusers DDPM folder
# first. Records the wall-clock and the slowest jobs in results/benchmarks/paper_released_smoke_cpu.md.
# Usage: bash benchmarks/paper_released_smoke.sh [cores]
set -euo pipefail
cd "$(dirname "$0")/.."
cores=${1:-all}
weights=work/paper_smoke/inception-untrained.pth
[[ -f $weights ]] || python -c "from sgm_bench.metrics.fidelity import write_untrained_inception as w; w('$weights')"
standin=work/paper_released_smoke/ddpm-standin
[[ -d $standin ]] || python -c "from sgm_bench.released import diffusers_standin as d; d('$standin', size=16)"
start=$(date +%s.%N)
snakemake --cores "$cores" --configfile config/paper_released.yaml config/paper_released_smoke.yaml \
  > /tmp/sgm_bench_paper_released_smoke.log 2>&1
end=$(date +%s.%N)
source benchmarks/smoke_summary.sh
smoke_summary "Released configuration smoke run (\`config/paper_released.yaml\` + \`config/paper_released_smoke.yaml\`), CPU" \
  results/paper_released_smoke "$start" "$end" | tee results/benchmarks/paper_released_smoke_cpu.md
