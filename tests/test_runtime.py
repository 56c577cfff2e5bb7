"""A workflow job keeps freed tensor memory: repeated U-Net forwards stop faulting pages in (runtime.py)."""
import subprocess
import sys

import pytest

from sgm_bench.runtime import keep_freed_memory

# 20 forwards of the default digits U-Net at n = 250 in a fresh process after `setup_job`, as an evaluation job makes
# them. Measured over 8 hash seeds: 250-1 000 page faults with the allocator setting, 47 000-145 000 without.
FORWARDS = """
import resource, torch
from sgm_bench.job import setup_job
from sgm_bench.models import build_model
setup_job(1)
unet = {"name": "unet", "ch": 16, "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": []}  # the default's
net = build_model("vp", (1, 8, 8), unet).eval()
x, t = torch.randn(250, 1, 8, 8), torch.full((250,), 0.5)
with torch.no_grad():
    for _ in range(3): net.score(x, t)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20): net.score(x, t)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not keep_freed_memory(), reason="the C library is not glibc: its allocator is left as it is")
def test_a_job_reuses_freed_memory_instead_of_faulting_it_in_again():
    out = subprocess.run([sys.executable, "-c", FORWARDS], capture_output=True, text=True, check=True)
    faults = int(out.stdout.split()[-1])
    assert faults <= 5000, f"{faults} page faults in 20 forwards after setup_job: freed memory goes back to the kernel"
