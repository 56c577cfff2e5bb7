"""A workflow job keeps freed tensor memory: a repeated step stops faulting pages in (runtime.py)."""
import subprocess
import sys

import pytest

from sgm_bench.runtime import keep_freed_memory

STEP = """
import resource, sys, torch
{setup}
x = torch.ones(250, 16, 8, 8)  # a digits U-Net activation at n = 250
def step():  # allocations of a few sizes, freed at the end of the step, as in a forward pass
    a = x * 2; b = torch.cat([a, a], 1); c = b * 3; return c.sum()
for _ in range(3): step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50): step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(setup: str) -> int:
    out = subprocess.run([sys.executable, "-c", STEP.format(setup=setup)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not keep_freed_memory(), reason="the C library is not glibc: its allocator is left as it is")
def test_a_job_reuses_freed_memory_instead_of_faulting_it_in_again():
    faults = page_faults("from sgm_bench.bench import setup_job; setup_job(1)")  # what every workflow job runs first
    assert faults <= 50, f"{faults} page faults in 50 steps after setup_job: freed memory goes back to the kernel"
