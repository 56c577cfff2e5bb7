"""Rule import_released: a released checkpoint as this model's model file, and the record of where it came from."""
import json
import time

from sgm_bench.errors import CheckpointError
from sgm_bench.io import save_json, save_text
from sgm_bench.job import start
from sgm_bench.released import checkpoint_file, import_checkpoint
from sgm_bench.train import load_checkpoint

spec = start(snakemake).models[snakemake.wildcards.model]
started = time.time()
ckpt = spec.checkpoint
src = checkpoint_file(ckpt)
out = import_checkpoint(src, ckpt["format"], snakemake.output.model, ckpt.get("config"))
state = load_checkpoint(out, mmap=True)
own = json.loads(state["spec"])
if any(own[k] != spec.model[k] for k in ("family", "sde", "param")):  # a diffusers scheduler unlike the plan's
    out.unlink()
    raise CheckpointError(f"{src}: its process ({own['family']}, {own['sde']}, {own['param']}) is not the one "
                          f"the workflow planned from its configuration ({spec.model}); check the folder's files")
save_text("step,loss,grad_norm\n", snakemake.output.log_csv)  # nothing trained here
save_json({"released": json.loads(state["released"]), "steps": state["step"], "config_hash": state["config_hash"],
           "parameters": sum(v.numel() for v in state["ema"].values()), "seconds": time.time() - started,
           "started": started, "finished": time.time(), "device": "cpu", "device_name": "import"},
          snakemake.output.stats)
