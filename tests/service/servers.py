"""Fixtures of the MLflow-server and DVC-remote tests: real servers on loopback, private ports
and private folders. A test module imports the fixtures it uses (this is no conftest.py: a
second conftest module would shadow the root one for every ``from conftest import``): as
``from servers import s3_store_fixture``, which provides ``s3_store``. Each server starts once
per importing module and stops at its end, with a check that none of the processes it started
is left:

- ``postgres``: a throwaway PostgreSQL cluster (Debian's ``postgresql``: ``initdb`` as the
  postgres user when run as root, a private port and socket folder);
- ``s3_store``: an S3-compatible store (moto's server, in memory);
- ``mlflow_server``: ``mlflow server`` on a PostgreSQL database, artifacts in the S3 store;
- ``built_tree``: the tiny workflow's built tree (or ``CXR_PROBE_WORLD``) and a function that
  copies it, files linked as the ``world`` fixture links them.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
#: Dummy keys: the store on loopback accepts any.
S3_KEYS = {
    "AWS_ACCESS_KEY_ID": "cxr-tests",
    "AWS_SECRET_ACCESS_KEY": "cxr-tests-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
#: Files copied, not linked, from the built tree: the MLflow store is changed in place.
COPIED = re.compile(r"(^|/)mlflow\.db[^/]*$")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _group_alive(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(int(stat.parent.name))
    return alive


def wait_http(url: str, proc: subprocess.Popen | None, timeout: float, log: Path) -> None:
    """Wait until ``url`` answers (any HTTP status); fail with the log if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{url}: the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"{url}: no answer in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@dataclass
class Service:
    """A server process started in a session of its own, so that its children stop with it."""

    name: str
    proc: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, name: str, cmd: list[str], env: dict[str, str], log: Path) -> Service:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return cls(name, proc, log)

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL after 15 s; fail if any process is left."""
        pgid = self.proc.pid  # the leader of its own session
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=0.2)
                if self.proc.poll() is not None and not _group_alive(pgid):
                    return
        left = _group_alive(pgid)
        assert not left, f"{self.name}: processes {left} still running after SIGKILL"


# --- PostgreSQL --------------------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server's bin folder (Debian's layout, else PATH)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: [int(n) for n in p.parts[-3].split(".") if n.isdigit()],
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass(frozen=True)
class Postgres:
    """A running throwaway cluster: superuser ``postgres``, trusted on loopback only."""

    port: int
    bin: Path
    as_user: tuple[str, ...]  # runuser prefix when the tests run as root
    version: str

    def run(self, *cmd: str) -> str:
        """Run one of the cluster's programs (createdb, psql, ...) and return its output."""
        args = [*self.as_user, str(self.bin / cmd[0]), *cmd[1:]]
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{' '.join(cmd)}: {done.stdout}{done.stderr}"
        return done.stdout

    def create_database(self, name: str) -> str:
        """A new database; its SQLAlchemy URL (psycopg2, as MLflow's server wants)."""
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="module", name="postgres")
def postgres_fixture() -> Iterator[Postgres]:
    """A PostgreSQL cluster made for this session in a private folder under /tmp (readable by
    the postgres user, which pytest's own temp folder is not), on a private port and socket."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server not installed (Debian package postgresql: .ci/run installs it)"
        )
    as_user: tuple[str, ...] = ()
    owner = None
    if os.geteuid() == 0:  # initdb refuses root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user for initdb")
        as_user = ("runuser", "-u", "postgres", "--")
    root = Path(tempfile.mkdtemp(prefix="cxr-pg-"))
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data, port = root / "data", free_port()
    version = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    cluster = Postgres(port, bin_dir, as_user, version)
    started = False
    try:
        cluster.run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync",
                    "-E", "UTF8", "--locale=C")  # fmt: skip
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        cluster.run("pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "log"), "-w",
                    "-t", "60", "start")  # fmt: skip
        started = True
        yield cluster
    finally:
        pid_file = data / "postmaster.pid"
        pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
        if started:
            cluster.run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop")
        shutil.rmtree(root, ignore_errors=True)
        if pid is not None:
            assert not _alive(pid), f"PostgreSQL {pid} still running after pg_ctl stop"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- S3 ----------------------------------------------------------------------------------------


@dataclass
class S3Store:
    """An S3-compatible store on loopback: its endpoint and the environment that reaches it."""

    endpoint: str
    version: str
    env: dict[str, str] = field(default_factory=dict)

    def bucket(self, name: str) -> str:
        """Create the bucket ``name``; its ``s3://`` URL."""
        import boto3

        s3 = boto3.client("s3", endpoint_url=self.endpoint, **_boto_keys())
        s3.create_bucket(Bucket=name)
        return f"s3://{name}"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key of ``bucket`` under ``prefix``."""
        import boto3

        s3 = boto3.client("s3", endpoint_url=self.endpoint, **_boto_keys())
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _boto_keys() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_KEYS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_KEYS["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_KEYS["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(scope="module", name="s3_store")
def s3_store_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Store]:
    """moto's S3 server (in memory) on a private port of 127.0.0.1."""
    server = BIN / "moto_server"
    if not server.exists():
        pytest.skip("moto[server] is not installed (pip install -e '.[dev]' pins it)")
    from importlib.metadata import version

    folder = tmp_path_factory.mktemp("s3")
    port = free_port()
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(folder), **S3_KEYS}
    service = Service.start(
        "moto_server", [str(server), "-H", "127.0.0.1", "-p", str(port)], env, folder / "log"
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_http(endpoint, service.proc, 30, service.log)
        yield S3Store(endpoint, f"moto {version('moto')}", {**S3_KEYS})
    finally:
        service.stop()


# --- MLflow ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MlflowServer:
    """A tracking server: its URI, the database behind it and where its artifacts go."""

    uri: str
    backend: str
    artifacts: str
    bucket: str


@pytest.fixture(scope="module", name="mlflow_server")
def mlflow_server_fixture(
    postgres: Postgres, s3_store: S3Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """``mlflow server`` on loopback: runs in PostgreSQL, artifacts proxied to S3."""
    folder = tmp_path_factory.mktemp("mlflow_server")
    backend = postgres.create_database("mlflow")
    bucket = "cxr-mlflow"
    artifacts = f"{s3_store.bucket(bucket)}/artifacts"
    port = free_port()
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(folder),
        "MLFLOW_S3_ENDPOINT_URL": s3_store.endpoint,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **s3_store.env,
    }
    cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", backend,
           "--artifacts-destination", artifacts, "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1"]  # fmt: skip
    service = Service.start("mlflow server", cmd, env, folder / "log")
    try:
        uri = f"http://127.0.0.1:{port}"
        wait_http(f"{uri}/health", service.proc, 120, service.log)
        yield MlflowServer(uri, backend, artifacts, bucket)
    finally:
        service.stop()


# --- the tiny workflow's outputs ---------------------------------------------------------------


def _link_or_copy(src: str, dst: str) -> None:
    if COPIED.search(src):
        shutil.copy2(src, dst)
    else:
        os.link(src, dst)  # outputs and their marks are replaced by rename, never edited in place


@pytest.fixture(scope="module", name="built_tree")
def built_tree_fixture(request: pytest.FixtureRequest) -> tuple[Path, Callable[..., Path]]:
    """The tiny workflow's built tree (``CXR_PROBE_WORLD`` names one already built) and a
    function ``copy(dst, link=True)`` making a private copy of it without .snakemake, logs or
    the MLflow store (files hard-linked, or copied where a tool may change them in place)."""
    built = Path(os.environ.get("CXR_PROBE_WORLD") or request.getfixturevalue("built"))
    ignore = shutil.ignore_patterns(".snakemake", "logs", "mlflow.db*", ".mlflow.db*", "mlruns")

    def copy(dst: Path, link: bool = True) -> Path:
        how = _link_or_copy if link else shutil.copy2
        shutil.copytree(built, dst, symlinks=True, copy_function=how, ignore=ignore)
        return dst

    return built, copy
