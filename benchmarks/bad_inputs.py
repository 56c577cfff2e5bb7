"""Bad-input probes, run as a user would (the CLI and Snakemake in a scratch folder): what the user sees for each, and
whether any file that existed before the probe changed. Writes results/bad_inputs.md.

    python benchmarks/bad_inputs.py
"""
from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SMOKE = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())


def tree_hashes(root: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
            and ".snakemake" not in p.parts and "logs" not in p.parts}


def run(cmd, cwd, env=None) -> tuple[int, str]:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})
    text = (out.stderr + out.stdout).strip().splitlines()
    for i, ln in enumerate(text):  # Snakemake prints the error's name, then the message on the next line
        if ln.startswith(("ConfigError in file", "sgm-bench: cannot start")) and i + 1 < len(text):
            return out.returncode, f"{ln.split(' in file')[0].rstrip(':')}: {text[i + 1].strip()}"[:300]
        if ln.startswith("WorkflowError in file"):  # the schema's refusal: its ValidationError line says what
            why = next((x.strip() for x in text[i + 1:i + 8] if "ValidationError" in x or "does not match" in x),
                       text[i + 1].strip() if i + 1 < len(text) else "")
            return out.returncode, f"WorkflowError (schema): {why}"[:300]
    errors = [ln for ln in text if ln.startswith("sgm-bench: error")]  # the CLI's one line, after any progress
    lines = errors or [ln for ln in text if "error" in ln.lower() or "cannot" in ln.lower() or "sgm-bench" in ln
                       or "must" in ln]
    return out.returncode, (lines[0] if lines else text[-1] if text else "")[:300]


def snake_cfg(tmp: Path, name: str, edit) -> Path:
    cfg = yaml.safe_load(yaml.safe_dump(SMOKE))
    edit(cfg)
    p = tmp / f"{name}.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


class Evil:
    def __reduce__(self):
        return (os.system, ("touch executed-marker",))


def full_disk_train(cli, tmp: Path) -> tuple:
    """`sgm-bench train` into a 256 KiB tmpfs that fills up (needs root to mount it)."""
    full = tmp / "full"
    full.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(full)], capture_output=True).returncode:
        return "", "not probed: mounting a small filesystem needs root"
    try:
        (full / "filler").write_bytes(b"\0" * 200_000)
        return run(cli + ["train", "toy.yaml", "--run-dir", str(full / "run")], tmp)
    finally:
        subprocess.run(["umount", str(full)], capture_output=True)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cli = [sys.executable, "-m", "sgm_bench.cli"]
        snake = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "1"]
        toy = {"data": {"name": "mixture2d", "n_train": 500},
               "model": {"family": "vp", "net": {"name": "mlp", "hidden": 16, "depth": 1}},
               "train": {"steps": 5, "batch_size": 32, "warmup": 1, "ckpt_every": 5, "progress": False}}
        (tmp / "toy.yaml").write_text(yaml.safe_dump(toy))
        subprocess.run(cli + ["train", "toy.yaml", "--run-dir", "run"], cwd=tmp, capture_output=True, timeout=600)
        (tmp / "afile").write_text("")
        (tmp / "evil.pth").write_bytes(pickle.dumps(Evil()))
        (tmp / "random.pth").write_bytes(os.urandom(512))

        def edit(path, **kw):
            def f(cfg):
                node = cfg
                *keys, last = path.split(".")
                for k in keys:
                    node = node[k]
                node[last] = kw["value"]
            return f

        def bad_toy(**over):
            bad_toy.n = getattr(bad_toy, "n", 0) + 1
            p = tmp / f"bad_toy{bad_toy.n}.yaml"
            c = yaml.safe_load(yaml.safe_dump(toy))
            for k, v in over.items():
                c[k] = {**c.get(k, {}), **v}
            p.write_text(yaml.safe_dump(c))
            return p.name

        probes = [
            ("CLI: sampler option not a number (--opt snr=abc)", cli + ["sample", "run/model.pt", "--sampler", "pc", "--opt", "snr=abc", "--out", "o.pt"]),
            ("CLI: --n 0", cli + ["sample", "run/model.pt", "--sampler", "pc", "--n", "0", "--out", "o.pt"]),
            ("CLI: --device cuda without a GPU", cli + ["sample", "run/model.pt", "--sampler", "pc", "--device", "cuda", "--out", "o.pt"]),
            ("CLI: unwritable --out", cli + ["sample", "run/model.pt", "--sampler", "pc", "--out", "/proc/x/o.pt"]),
            ("CLI: unknown sampler", cli + ["sample", "run/model.pt", "--sampler", "heun9", "--out", "o.pt"]),
            ("CLI: inapplicable sampler (annealed_langevin on a VP model)", None),
            ("CLI: missing model file", cli + ["sample", "nope.pt", "--sampler", "pc", "--out", "o.pt"]),
            ("CLI: --run-dir is a file", cli + ["train", "toy.yaml", "--run-dir", "afile"]),
            ("CLI: misspelled loss option (weightin)", cli + ["train", bad_toy(loss={"weightin": "g2"}), "--run-dir", "r1"]),
            ("CLI: misspelled data option (n_trian)", cli + ["train", bad_toy(data={"n_trian": 5}), "--run-dir", "r2"]),
            ("CLI: sigma_max: fifty", cli + ["train", bad_toy(model={"family": "ve", "sde": {"sigma_max": "fifty"}}), "--run-dir", "r3"]),
            ("CLI: learning rate 1e38 (Adam overflows)", cli + ["train", bad_toy(train={"lr": 1e38, "grad_clip": 1e38, "steps": 30}), "--run-dir", "r4"]),
            ("CLI: huge clip, lr 1e12 (gradient norm inf)", cli + ["train", bad_toy(train={"lr": 1e12, "grad_clip": 1e30, "steps": 30}), "--run-dir", "r5"]),
            ("CLI: corrupt model file", None),
        ]
        (tmp / "corrupt.pt").write_bytes(b"\x80\x02truncated")
        probes[5] = (probes[5][0], cli + ["sample", "run/model.pt", "--sampler", "annealed_langevin", "--out", "o.pt"])
        probes[-1] = (probes[-1][0], cli + ["sample", "corrupt.pt", "--sampler", "pc", "--out", "o.pt"])
        wf = [
            ("Snakemake: misspelled data key", edit("datasets.mixture2d.n_trian", value=5)),
            ("Snakemake: unknown sampler", edit("models.vp-mixture2d.samplers", value=["heun9"])),
            ("Snakemake: Euler-Maruyama / ODE on a 10-level NCSN", edit("models.vp-mixture2d.model", value={"family": "ncsn", "net": {"name": "mlp"}})),
            ("Snakemake: 25 steps on a 10-level chain", edit("models.vp-mixture2d", value={"data": "mixture2d", "model": {"family": "ncsn", "net": {"name": "mlp"}}, "train": {"steps": 5}, "samplers": ["pc"]})),
            ("Snakemake: train.lr: abc", edit("models.vp-mixture2d.train.lr", value="abc")),
            ("Snakemake: unknown train option", edit("models.vp-mixture2d.train.stepz", value=5)),
            ("Snakemake: unwritable tracking store", edit("mlflow.tracking_uri", value=f"sqlite:///{tmp}/afile/m.db")),
            ("Snakemake: Inception weights are a code-running pickle", lambda c: (c["evaluation"].update(extractor="inception-v3-compat", inception_weights=str(tmp / "evil.pth")), c.update(requires={"files": [str(tmp / "evil.pth")]}))),
            ("Snakemake: class_conditional on a toy without labels", edit("models.vp-mixture2d.model.class_conditional", value=True)),
            ("Snakemake: a zero-width network (hidden: 0)", edit("models.vp-mixture2d.model.net.hidden", value=0)),
            ("Snakemake: lr written 1e-3 (a string to YAML 1.1): accepted", edit("models.vp-mixture2d.train.lr", value="1e-3")),
            ("Snakemake: a misspelled sampler option (etaa)", edit("sampling.variants.ddim_eta1.options", value={"etaa": 1.0})),
            ("Snakemake: a variant named with an absolute path", lambda c: c["sampling"]["variants"].update({"/tmp/evil": {"sampler": "ode"}})),
            ("Snakemake: an experiment named ../../x", lambda c: c.update(experiments={"../../x": {"experiment": "vp_1d"}})),
            ("Snakemake: a model named ..", lambda c: c["models"].update({"..": c["models"].pop("vp-mixture2d")})),
            ("Snakemake: a file: tracking URI", edit("mlflow.tracking_uri", value="file:///tmp/mlruns")),
            ("Snakemake: sampling.options for an unknown sampler", edit("sampling.options", value={"heun9": {"rho": 7}})),
        ]
        for name, cmd in probes:
            before = tree_hashes(tmp)
            rc, msg = run(cmd, tmp)
            changed = [str(p.relative_to(tmp)) for p, h in before.items() if p.exists() and tree_hashes(tmp).get(p) != h]
            rows.append((name, rc, msg, "none" if not changed else ", ".join(changed)))
        for name, f in wf:
            path = snake_cfg(tmp, "".join(c if c.isalnum() else "_" for c in name.split(":")[1].strip())[:20], f)
            before = tree_hashes(tmp)
            onstart = any(w in name for w in ("weights", "store", "URI"))  # the preflight runs only in a real run
            rc, msg = run(snake + ["--quiet" if onstart else "-n", "--configfile", str(path)], tmp)
            changed = [str(p.relative_to(tmp)) for p, h in before.items() if p.exists() and tree_hashes(tmp).get(p) != h]
            rows.append((name, rc, msg, "none" if not changed else ", ".join(changed)))
        rows.append(("CLI: train on a full disk", *full_disk_train(cli, tmp), "none"))
        dup = tmp / "dup.yaml"
        dup.write_text((REPO / "config" / "smoke.yaml").read_text().replace("models:\n", "models:\n  vp-mixture2d: {data: mixture2d, model: {family: ve}, train: {}}\n", 1))
        rc, msg = run(snake + ["-n", "--configfile", str(dup)], tmp)
        rows.append(("Snakemake: a model key given twice in the YAML", rc, msg, "none"))
        bomb = tmp / "bomb.yaml"  # nine levels of nine aliases: 9^9 strings when expanded
        bomb.write_text((REPO / "config" / "smoke.yaml").read_text() + "\nbomb:\n" + "\n".join(
            ["  a0: &a0 [lol]"] + [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]) + "\n")
        rc, msg = run(snake + ["-n", "--configfile", str(bomb)], tmp)
        rows.append(("Snakemake: a YAML alias bomb", rc, msg, "none"))
        rows.append(("(code-running pickle executed?)", "", "no" if not (tmp / "executed-marker").exists() else "YES", ""))
    lines = ["# Bad-input probes", "", f"`python benchmarks/bad_inputs.py` ({sys.platform}); exit code, the first line the user "
             "sees, and which pre-existing files changed.", "", "| input | exit | what the user sees | files changed |",
             "|---|---|---|---|"]
    lines += [f"| {n} | {rc} | {m.replace('|', '/')} | {c} |" for n, rc, m, c in rows]
    out = REPO / "results" / "bad_inputs.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
