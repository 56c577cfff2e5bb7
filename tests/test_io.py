"""Atomic writes and the per-part resume of one-job-per-model evaluation."""
import torch

from sgm_bench.io import package_hash, resumable


def test_resumable_reuses_a_result_only_under_the_same_key(tmp_path):
    calls = []

    def compute(v):
        calls.append(v)
        return {"rows": [v], "x": torch.full((2,), float(v))}

    path = tmp_path / "part.pt"
    first = resumable(path, "k1", lambda: compute(1))
    again = resumable(path, "k1", lambda: compute(2))  # same key: the kept value, not recomputed
    assert calls == [1] and again["rows"] == [1] and torch.equal(again["x"], first["x"])
    changed = resumable(path, "k2", lambda: compute(3))  # a changed key recomputes and replaces
    assert calls == [1, 3] and changed["rows"] == [3]
    path.write_bytes(b"truncated")  # a broken file is recomputed, never trusted
    assert resumable(path, "k2", lambda: compute(4))["rows"] == [4] and calls == [1, 3, 4]


def test_package_hash_names_the_code():
    assert len(package_hash()) == 16 and package_hash() == package_hash()
