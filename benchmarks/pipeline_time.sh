#!/usr/bin/env bash
# Wall-clock of the whole default pipeline from a clean state (results/default and work/default removed before each
# run), with the machine named: every run's figure and their median. Writes results/benchmarks/pipeline_default.md.
# Usage: bash benchmarks/pipeline_time.sh [cores] [runs]      (defaults: all, 3)
set -euo pipefail
cd "$(dirname "$0")/.."
cores=${1:-all}
runs=${2:-3}
walls=()
for i in $(seq "$runs"); do
  rm -rf results/default work/default
  start=$(date +%s.%N)
  snakemake --cores "$cores" --quiet > "/tmp/sgm_bench_pipeline_$i.log" 2>&1
  end=$(date +%s.%N)
  walls+=("$(python3 -c "print(round($end - $start))")")
  echo "run $i: ${walls[-1]} s" >&2
done
mkdir -p results/benchmarks
{
  echo "Default pipeline (\`snakemake --cores $cores\`, clean state), $runs run(s): ${walls[*]} s wall; median $(IFS=,; python3 -c "import statistics; print(round(statistics.median([${walls[*]}])))") s"
  echo "Machine: $(nproc) cores, $(python3 -c 'import platform; print(platform.processor() or platform.machine())'), $(free -g | awk '/Mem/{print $2}') GiB; $(date -u +%F); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo
  echo "Slowest jobs of the last run (Snakemake benchmark files, seconds):"
  echo
  for f in $(find results/default/benchmarks -name '*.tsv'); do echo "$(tail -1 "$f" | cut -f1) ${f#results/default/benchmarks/}"; done | sort -rn | head -15 | sed 's/^/    /'
} | tee results/benchmarks/pipeline_default.md
