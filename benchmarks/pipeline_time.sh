#!/usr/bin/env bash
# Wall-clock of the whole default pipeline from a clean state (results/default and work/default removed), with the
# machine named. Writes results/benchmarks/pipeline_default.md. Usage: bash benchmarks/pipeline_time.sh [cores]
set -euo pipefail
cd "$(dirname "$0")/.."
cores=${1:-all}
rm -rf results/default work/default
start=$(date +%s.%N)
snakemake --cores "$cores" --quiet > /tmp/sgm_bench_pipeline.log 2>&1
end=$(date +%s.%N)
mkdir -p results/benchmarks
{
  echo "Default pipeline (\`snakemake --cores $cores\`, clean state): $(python3 -c "print(round($end - $start))") s wall"
  echo "Machine: $(nproc) cores, $(python3 -c 'import platform; print(platform.processor() or platform.machine())'), $(free -g | awk '/Mem/{print $2}') GiB; $(date -u +%F)"
  echo
  echo "Slowest jobs (Snakemake benchmark files, seconds):"
  echo
  for f in $(find results/default/benchmarks -name '*.tsv'); do echo "$(tail -1 "$f" | cut -f1) ${f#results/default/benchmarks/}"; done | sort -rn | head -15 | sed 's/^/    /'
} | tee results/benchmarks/pipeline_default.md
