"""Rule import_released: a released checkpoint as this model's model file, and the record of where it came from."""
import json
import time

from sgm_bench.bench import setup_job
from sgm_bench.errors import CheckpointError
from sgm_bench.io import save_json, save_text
from sgm_bench.plan import build_plan
from sgm_bench.released import checkpoint_file, import_checkpoint
from sgm_bench.train import load_checkpoint

setup_job(snakemake.threads, snakemake.log[0], snakemake)
start = time.time()
cfg = build_plan(snakemake.config).models[snakemake.wildcards.model]
ckpt = cfg["checkpoint"]
src = checkpoint_file(ckpt)
out = import_checkpoint(src, ckpt["format"], snakemake.output.model, ckpt.get("config"))
state = load_checkpoint(out, mmap=True)
spec = json.loads(state["spec"])
if any(spec[k] != cfg["model"][k] for k in ("family", "sde", "param")):  # a diffusers scheduler unlike the plan's
    out.unlink()
    raise CheckpointError(f"{src}: its process ({spec['family']}, {spec['sde']}, {spec['param']}) is not the one "
                          f"the workflow planned from its configuration ({cfg['model']}); check the folder's files")
save_text("step,loss,grad_norm\n", snakemake.output.log_csv)  # nothing trained here
save_json({"released": json.loads(state["released"]), "steps": state["step"], "config_hash": state["config_hash"],
           "parameters": sum(v.numel() for v in state["ema"].values()), "seconds": time.time() - start,
           "started": start, "finished": time.time(), "device": "cpu", "device_name": "import"},
          snakemake.output.stats)
