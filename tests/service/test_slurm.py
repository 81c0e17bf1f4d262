"""Snakemake on a real one-node SLURM cluster (Debian's slurm-wlm and munge; .ci/run installs
them): the workflow's SLURM profile submits a complete study of the tiny configuration, from
raw data to its evaluation and CAMs, as SLURM jobs, and they build the same files as a local run.

The cluster is private to the test: munged, slurmctld and slurmd start on free ports, with
their key, sockets, state, spool, pid and log files in a temporary folder, and stop at the end.
No accounting daemon runs, so job status comes from ``squeue`` (the plugin's ``squeue`` status
mode, SLURM keeping finished jobs for ``MinJobAge`` = one day), not from ``sacct``.

As on a cluster, a job sees nothing of the submitting shell but the work folder: Snakemake submits
from an empty scratch folder (``--directory`` names the work folder), and a ``TaskProlog`` drops
every variable of the job's environment but the login ones (PATH, HOME, locale, SLURM_*), as at
sites whose jobs start from a clean login environment (``sbatch --export=NONE``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cxr.layout import Layout
from cxr.plan import Sizing, load

pytestmark = [pytest.mark.service, pytest.mark.workflow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scancel", "srun", "scontrol")
#: The study run through SLURM: NIH's synthetic miniature to one model, its evaluation and CAMs.
STUDY, STAGE, COLUMN, DATASET, PRESET, SCHEME = (
    "tiny_multilabel", "main", "split", "nih", "tiny_eq", "official",
)  # fmt: skip
#: Variables a job keeps (the TaskProlog unsets the rest), as a login shell on a node has them.
LOGIN_VARIABLES = "SLURM_*|SLURMD_*|PATH|HOME|USER|LOGNAME|SHELL|LANG|LC_*|TZ|TMPDIR|TERM|PWD"


def _which(name: str) -> str | None:
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


def _missing() -> list[str]:
    return [name for name in (*DAEMONS, *CLIENTS) if _which(name) is None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


class Cluster:
    """munged, slurmctld and slurmd of a one-node cluster under ``root``, on free ports."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host = socket.gethostname()
        self.conf = root / "slurm.conf"
        self.munge_socket = root / "munge" / "munge.socket.2"
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = {
            "PATH": f"{root / 'bin'}:{BIN}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "SLURM_CONF": str(self.conf),
            "LANG": "C.UTF-8",
        }

    # --- setup -------------------------------------------------------------------------------

    def write(self) -> None:
        for folder in ("munge", "state", "spool", "log", "bin"):
            (self.root / folder).mkdir(mode=0o700)
        # The plugin's job step clears SLURM_CONF (it keeps only the job's identity) before its
        # srun, which then looks for /etc/slurm/slurm.conf; a real cluster has its config there
        # (or serves it), this private one tells srun where it is.
        shim = self.root / "bin" / "srun"
        shim.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {_which("srun")} "$@"\n')
        shim.chmod(0o755)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        prolog = self.root / "task_prolog.sh"
        prolog.write_text(
            "#!/bin/sh\n"
            "# A job starts from a login environment, not from the submitting shell's.\n"
            "env | sed -n 's/^\\([A-Za-z_][A-Za-z0-9_]*\\)=.*/\\1/p' | while read -r name; do\n"
            f'  case "$name" in {LOGIN_VARIABLES}) ;; *) echo "unset $name" ;; esac\n'
            "done\n"
        )
        prolog.chmod(0o755)
        cpus = os.cpu_count() or 1
        memory = int(_memory_mb() * 0.8)
        log = self.root / "log"
        self.conf.write_text(
            f"""# A one-node cluster for cxr's tests (tests/service/test_slurm.py)
ClusterName=cxrtest
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
StateSaveLocation={self.root / "state"}
SlurmdSpoolDir={self.root / "spool"}
SlurmctldPidFile={self.root / "slurmctld.pid"}
SlurmdPidFile={self.root / "slurmd.pid"}
SlurmctldLogFile={log / "slurmctld.log"}
SlurmdLogFile={log / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
TaskProlog={prolog}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=86400
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=cxr Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
"""
        )

    def start(self) -> None:
        self.write()
        self._spawn(
            "munged",
            "--foreground", "--force",
            f"--key-file={self.root / 'munge' / 'munge.key'}",
            f"--socket={self.munge_socket}",
            f"--pid-file={self.root / 'munge' / 'munged.pid'}",
            f"--seed-file={self.root / 'munge' / 'munged.seed'}",
            f"--log-file={self.root / 'log' / 'munged.log'}",
        )  # fmt: skip
        self._wait(self.munge_socket.exists, "munged's socket")
        self._spawn("slurmctld", "-D", "-i", "-f", str(self.conf))
        self._spawn("slurmd", "-D", "-f", str(self.conf), "-N", self.host)
        self._wait(lambda: self.run("sinfo", "-h", "-o", "%t").strip() == "idle", "an idle node")

    def _spawn(self, name: str, *args: str) -> None:
        out = (self.root / "log" / f"{name}.out").open("w")
        self.processes[name] = subprocess.Popen(
            [_which(name), *args], env=self.env, stdout=out, stderr=subprocess.STDOUT
        )

    def _wait(self, ready, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited ({process.returncode}):\n{self.logs()}")
            try:
                if ready():
                    return
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"no {what} after {timeout} s:\n{self.logs()}")

    # --- use and teardown ---------------------------------------------------------------------

    def run(self, *cmd: str) -> str:
        return subprocess.run(
            cmd, env=self.env, capture_output=True, text=True, check=True, timeout=30
        ).stdout

    def jobs(self) -> list[dict[str, str]]:
        """Every job the cluster knows (finished ones for MinJobAge): id, name, state, CPUs,
        memory (MB), time limit and comment (the plugin's: rule and wildcards)."""
        fields = ("id", "name", "state", "cpus", "memory", "limit", "comment")
        out = self.run("squeue", "--states=all", "-h", "-o", "%i|%j|%T|%C|%m|%l|%k")
        return [dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines()]

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted((self.root / "log").glob("*"))
        )

    def stop(self) -> None:
        """Cancel what still runs, then stop every daemon this cluster started."""
        if "slurmctld" in self.processes:
            subprocess.run(
                ["scancel", "--full", "--partition=cxr"], env=self.env, check=False, timeout=30
            )
        for name in reversed(list(self.processes)):
            process = self.processes.pop(name)
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A running one-node SLURM cluster, stopped after the module's tests."""
    missing = _missing()
    if missing:
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} not found): apt-get install "
                    "slurm-wlm munge, as .ci/run does")  # fmt: skip
    if os.geteuid() != 0:
        pytest.skip("a private slurmd must run as root (it starts jobs as their user)")
    cluster = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def submit(
    cluster: Cluster, workdir: Path, submit_dir: Path, *args: str
) -> subprocess.CompletedProcess:
    """Snakemake with the SLURM profile, run from ``submit_dir`` on the work folder, with what
    this one-node cluster needs beyond the profile: no account, squeue status, threads and no
    GPUs for its 2 cores."""
    cmd = [
        str(BIN / "snakemake"),
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--workflow-profile", str(REPO / "workflow" / "profiles" / "slurm"),
        "--jobs", "4",
        "--slurm-no-account",
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "1",
        "--set-threads", "synth=1", "preprocess=1", "train=1", "cam=1",
        "--set-resources", "train:gpu=0", "cam:gpu=0", "cam_compare:gpu=0",
        "--latency-wait", "5",
        "--retries", "0",
        *args,
    ]  # fmt: skip
    env = {**cluster.env, "HOME": str(submit_dir), "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(cmd, cwd=submit_dir, env=env, capture_output=True, text=True, check=False)


# --- the comparison with the local run ----------------------------------------------------------

LAYOUT = Layout()
MODEL = LAYOUT.model(STUDY, STAGE, COLUMN)
#: Files of the study that must be byte for byte the local run's: data, splits, checks.
EXACT = [
    f"{LAYOUT.ingest_index(DATASET)}",
    f"{LAYOUT.preprocessed(DATASET, PRESET)}/images.npy",
    f"{LAYOUT.preprocessed(DATASET, PRESET)}/index.parquet",
    f"{LAYOUT.preprocessed(DATASET, PRESET)}/stats.json",
    LAYOUT.duplicates(DATASET),
    LAYOUT.split_table(DATASET, SCHEME),
    LAYOUT.leakage_report(DATASET, SCHEME),
    f"{LAYOUT.evaluation(STUDY, STAGE, COLUMN)}/roc.csv",
]
#: Tables equal to the local run's to float rounding (training sums in another order when the
#: BLAS threads differ); columns that time the run are left out.
TABLES = [
    (f"{MODEL}/history.csv", ("seconds", "data_wait_share")),
    (f"{MODEL}/predictions/test.parquet", ()),
    (f"{MODEL}/predictions/val.parquet", ()),
    (f"{LAYOUT.evaluation(STUDY, STAGE, COLUMN)}/metrics.csv", ()),
    (f"{LAYOUT.cam(STUDY, STAGE, COLUMN)}/localisation.csv", ()),
]
#: JSON files equal to the local run's, to float rounding, but for ...
DOCUMENTS = [
    LAYOUT.train_metrics(STUDY, STAGE, COLUMN),
    f"{LAYOUT.evaluation(STUDY, STAGE, COLUMN)}/metrics.json",
]
#: ... the keys, at any depth, of the MLflow run and of timings.
VOLATILE = {"run_id", "training_s"}


def _table(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def _same(a: object, b: object, where: str) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for key in a.keys() - VOLATILE:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-9, nan_ok=True), where
    else:
        assert a == b, where


#: The comments of the canary's SLURM jobs (the last test's).
CANARY_JOBS = ("rule_from_the_shell", "rule_declared")

# --- the tests -------------------------------------------------------------------------------


def test_a_study_runs_as_slurm_jobs_and_builds_what_a_local_run_builds(
    cluster: Cluster, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    import torch

    # the local run of the whole tiny workflow (CXR_PROBE_WORLD: one already built, as for
    # the probe's tests)
    built = Path(os.environ.get("CXR_PROBE_WORLD") or request.getfixturevalue("built"))

    workdir, submit_dir = tmp_path / "work", tmp_path / "submit"
    workdir.mkdir()
    submit_dir.mkdir()
    params = yaml.safe_load((REPO / "tests" / "workflow" / "params.yaml").read_text())
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    targets = [
        LAYOUT.train_metrics(STUDY, STAGE, COLUMN),
        LAYOUT.cam(STUDY, STAGE, COLUMN),
        LAYOUT.leakage_report(DATASET, SCHEME),
    ]
    started = time.monotonic()
    proc = submit(cluster, workdir, submit_dir, *targets)
    took = time.monotonic() - started
    logs = "\n".join(p.read_text()[-2000:] for p in sorted(workdir.glob("logs/**/*.log")))
    assert proc.returncode == 0, f"{proc.stderr[-6000:]}\n{logs}\n{cluster.logs()}"
    print(f"the study through SLURM: {took:.0f} s")

    # every job of the run was a SLURM job, and completed
    steps = re.findall(r"(\d+) of (\d+) steps \(100%\) done", proc.stderr)
    assert steps, proc.stderr[-3000:]
    total = int(steps[-1][1])
    jobs = [job for job in cluster.jobs() if not job["comment"].startswith(CANARY_JOBS)]
    assert len(jobs) == total, jobs
    assert {job["state"] for job in jobs} == {"COMPLETED"}, jobs
    rules = {job["comment"].split("_wildcards_")[0].removeprefix("rule_") for job in jobs}
    assert rules == {
        "synth", "ingest", "preprocess", "duplicates", "split", "check_leakage",
        "train", "evaluate", "cam", "train_summary",
    }, jobs  # fmt: skip
    # each asked SLURM for what the rule declares (cxr.plan.resources)
    sizing = Sizing(load(params))
    train = next(job for job in jobs if job["comment"].startswith("rule_train_wildcards"))
    job = {"study": STUDY, "stage": STAGE, "column": COLUMN}
    assert train["memory"] == f"{sizing.mem_mb('train', **job)}M"
    assert train["limit"] == f"{sizing.runtime('train', **job)}:00"
    assert train["cpus"] == "1"

    # the same files as the local run of the whole tiny workflow
    for name in EXACT:
        assert (workdir / name).read_bytes() == (built / name).read_bytes(), name
    for name, timings in TABLES:
        ours, theirs = (
            _table(root / name).drop(columns=list(timings)) for root in (workdir, built)
        )
        pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=1e-6, obj=name)
    for name in DOCUMENTS:
        ours, theirs = (json.loads((root / name).read_text()) for root in (workdir, built))
        _same(ours, theirs, name)
    ours, theirs = (
        torch.load(root / MODEL / "model.pt", map_location="cpu", weights_only=True)
        for root in (workdir, built)
    )
    assert ours.keys() == theirs.keys()
    for key in ours:
        np.testing.assert_allclose(ours[key].numpy(), theirs[key].numpy(), rtol=1e-5, atol=1e-7)


#: A workflow of two jobs: one reads a variable of the shell that runs Snakemake, one only what
#: the workflow declares.
CANARY = """
rule all:
    input:
        "shell.txt",
        "declared.txt",


rule from_the_shell:
    output:
        "shell.txt",
    resources:
        mem_mb=100,
    shell:
        'echo "${{CXR_SUBMIT_SHELL_ONLY:?not set in the job}}" > {output}'


rule declared:
    output:
        "declared.txt",
    params:
        value="declared in the workflow",
    resources:
        mem_mb=100,
    shell:
        'echo "{params.value}" > {output}'
"""


def test_a_job_that_reads_the_submitting_shell_fails(cluster: Cluster, tmp_path: Path) -> None:
    """A job relying on a variable of the submitting shell works locally and fails on SLURM,
    where its neighbour that reads only what the workflow declares still works."""
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(CANARY)
    env = {**cluster.env, "HOME": str(tmp_path), "CXR_SUBMIT_SHELL_ONLY": "only in this shell"}
    local = tmp_path / "local"
    local.mkdir()
    cmd = [str(BIN / "snakemake"), "--snakefile", str(snakefile), "--cores", "2"]
    proc = subprocess.run(cmd, cwd=local, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (local / "shell.txt").read_text() == "only in this shell\n"

    on_slurm = tmp_path / "slurm"
    on_slurm.mkdir()
    cmd = [
        str(BIN / "snakemake"), "--snakefile", str(snakefile), "--executor", "slurm",
        "--jobs", "2", "--keep-going", "--slurm-no-account", "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "1", "--latency-wait", "2",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=on_slurm, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode != 0, proc.stderr[-3000:]
    assert not (on_slurm / "shell.txt").exists()
    assert (on_slurm / "declared.txt").read_text() == "declared in the workflow\n"
    states = {job["comment"].split("_wildcards")[0]: job["state"] for job in cluster.jobs()}
    assert states["rule_from_the_shell"] == "FAILED", states
    assert states["rule_declared"] == "COMPLETED", states
    logs = "".join(p.read_text() for p in on_slurm.glob(".snakemake/slurm_logs/**/*.log"))
    assert "CXR_SUBMIT_SHELL_ONLY: not set in the job" in logs, logs
