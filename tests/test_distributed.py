"""Training under a multi-process launch, as on a machine with several GPUs: here torchrun starts
two CPU processes that talk over gloo, running the same code NCCL processes on GPUs would."""

import json
import os
import subprocess
import sys
from pathlib import Path

from steep.cli import main
from steep.models import load_model


def torchrun(project: Path, command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes, one core each
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "steep", command,
                           str(project / "steep.yaml")], capture_output=True, text=True, timeout=900, env=env, cwd=project)


def test_train_under_torchrun_runs_on_every_process_and_writes_its_outputs_once(project, tiny_model):
    config = project / "steep.yaml"
    # batches of 40 rows of up to 128 tokens are over the activation budget: those steps run in parts,
    # with the gradients synchronized once per step (ReplayTrainer.training_step)
    config.write_text(config.read_text().replace("batch_size: 8, save_steps", "batch_size: 40, save_steps"))
    run = project / "runs" / "t"

    launched = torchrun(project, "train")
    # the stages before train are one process's work: the launch says so and writes nothing of them
    assert launched.returncode != 0, launched.stderr[-3000:]  # torchrun's own status: a process failed
    assert "stage synth has to run, but in a launch of 2 processes only train runs: run `steep curate" in launched.stderr
    assert not (run / "synth" / "done.json").exists()

    assert main(["curate", str(config)]) == 0
    launched = torchrun(project, "train")
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert launched.stderr.count("trained model in") == 2  # both processes trained
    summary = json.loads((run / "train" / "done.json").read_text())["summary"]
    assert summary["split_batches"] > 0 and summary["tokens_trained"] > 0
    assert not (run / "train" / "checkpoints").exists()
    tuned = load_model(tiny_model, adapter=Path(summary["output"]))
    base = load_model(tiny_model)
    changed = [n for n, p in base.named_parameters() if not (p == tuned.get_parameter(n)).all()]
    assert changed, "the merged adapter leaves every weight as it was"

    launched = torchrun(project, "run")  # eval too is one process's work
    assert launched.returncode != 0 and "stage eval has to run" in launched.stderr and "`steep run CONFIG` after it" in launched.stderr
    assert json.loads((run / "train" / "done.json").read_text())["summary"] == summary  # the launch found train done
