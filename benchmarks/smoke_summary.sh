# smoke_summary TITLE RESULTS_DIR START END: the Markdown summary of a smoke run (wall-clock, jobs, machine, commit, the
# slowest jobs from Snakemake's benchmark files), sourced by paper_smoke.sh and paper_released_smoke.sh.
smoke_summary() {
  local title=$1 res=$2 start=$3 end=$4
  echo "# $title"
  echo
  echo "$(python3 -c "print(round($end - $start))") s wall, $(find "$res/benchmarks" -name '*.tsv' | wc -l) jobs;" \
       "machine: $(nproc) cores, $(python -c 'import torch, platform; print(torch.cuda.get_device_name() if torch.cuda.is_available() else platform.machine())');" \
       "$(date -u +%F); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo
  echo "Slowest jobs (Snakemake benchmark files, seconds):"
  echo
  for f in $(find "$res/benchmarks" -name '*.tsv'); do echo "$(tail -1 "$f" | cut -f1) ${f#"$res"/benchmarks/}"; done | sort -rn | head -15 | sed 's/^/    /'
}
