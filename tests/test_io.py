"""Atomic writes and the per-part resume of one-job-per-model evaluation."""
import torch

from sgm_bench.io import content_digest, package_hash, resumable, set_aside_unreadable


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


def test_resumable_recomputes_a_saved_value_edited_under_the_same_key(tmp_path, capsys):
    """A hostile probe: a cached evaluation rewritten with the same key and a false SW2 is not trusted."""
    path = tmp_path / "part.pt"
    resumable(path, "k", lambda: {"rows": [{"sw": 0.42}], "x": torch.ones(3)})
    saved = torch.load(path, weights_only=True)
    saved["value"]["rows"][0]["sw"] = 0.001
    torch.save(saved, path)
    assert resumable(path, "k", lambda: {"rows": [{"sw": 0.42}], "x": torch.ones(3)})["rows"][0]["sw"] == 0.42
    assert "does not match its digest" in capsys.readouterr().err
    saved = torch.load(path, weights_only=True)
    saved["value"]["x"][0] = 7.0  # a changed tensor element too
    torch.save(saved, path)
    assert float(resumable(path, "k", lambda: {"rows": [], "x": torch.zeros(3)})["x"][0]) == 0.0
    assert content_digest({"a": torch.tensor(1.0), "b": [1, "x"]}) == content_digest({"b": [1, "x"], "a": torch.tensor(1.0)})
    assert content_digest(torch.tensor([1.0])) != content_digest(torch.tensor([1.0], dtype=torch.float64))


def test_an_unreadable_json_result_is_set_aside_not_deleted(tmp_path, capsys):
    good, bad = tmp_path / "metrics" / "m" / "samplers.json", tmp_path / "train" / "m" / "train_stats.json"
    good.parent.mkdir(parents=True)
    bad.parent.mkdir(parents=True)
    good.write_text('{"rows": []}')
    bad.write_text('{"rows": [{"fid": 1')
    assert set_aside_unreadable(tmp_path) == [bad]
    assert good.exists() and not bad.exists() and bad.with_name("train_stats.json.unreadable").exists()
    assert "not valid JSON" in capsys.readouterr().err and set_aside_unreadable(tmp_path) == []
