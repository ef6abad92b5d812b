"""The `slurm` node provider ("pilot" mode): each node of a pool is one Slurm job running
that node's agent (`manage.py runnode`), so Slurm owns the machines, their allocation,
containment (proctrack/cgroup) and failure detection, and batchsite stays the Batch
control plane. It drives Slurm through its CLI (sbatch, squeue, scancel), as Nextflow and
PSI/J do: pyslurm cannot build against Debian's Slurm.

start    `sbatch --exclusive --no-requeue -J <name> --signal=B:TERM@<s> --wrap "exec python
         manage.py runnode ..."` with only the environment the agent needs, and
         BATCHSITE_NODE_IP read from the Slurm node's NodeAddr inside the job.
stop     graceful: `scancel --batch --signal=TERM`, to the agent alone (the job script
         execs it): it stops its tasks, requeues them, takes its node offline and exits 0,
         and the job ends COMPLETED with nothing left for Slurm to kill. (A plain scancel,
         as an administrator would type it, also SIGTERMs only the batch shell on Slurm
         22.05, then SIGKILLs whatever is left after KillWait: hence KillWait longer than
         the agent's grace.) A job not running yet is cancelled. Otherwise:
         `scancel --signal=KILL`, every process of the job at once (through the job's
         cgroup: what a task daemonised dies too); a pending job is cancelled by it.
running  `squeue --me -t all`: this instance's jobs in a live state.

The job name carries the node: `batchsite:<instance>:<account>:<pool>:<node>` (parts
%-quoted), so a job maps to its node and back with no memory, and `<instance>` (from the
database and the data directory) keeps two batchsite instances sharing a cluster — or two
test runs — from ever seeing each other's nodes.

Deployment options (NodeLaunch.options, from the vmSize table) are Slurm's own words:
partition, account, qos, time, sbatch_args (a list, appended as given), and where things
are on the compute nodes: python, project_dir, data_dir, log_dir (`""`: no log), export
(names of further environment variables the agents need, e.g. for an S3 task-file storage).
"""

from __future__ import annotations

import math
import os
import shlex
import subprocess
from pathlib import Path
from urllib.parse import quote, unquote

from django.conf import settings

from .base import NodeLaunch, NodeProvider, ProviderError, RunningNode
from .environment import database_url, instance_key, runnode_argv

# Batch's PoolResizeErrorCodes: what a pool's resizeErrors entry says went wrong.
ALLOCATION_FAILED = "AllocationFailed"
REMOVE_NODES_FAILED = "RemoveNodesFailed"

PREFIX = "batchsite"
# Job states in which a node's agent runs or will run. COMPLETING is one: a cancelled job
# is COMPLETING while Slurm still signals its processes (for up to KillWait), and its
# agent may still be requeueing its tasks then. CANCELLED, NODE_FAIL and the rest are ends.
QUEUED_STATES = {
    "PENDING",
    "CONFIGURING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESV_DEL_HOLD",
}
LIVE_STATES = QUEUED_STATES | {
    "RUNNING",
    "COMPLETING",
    "SUSPENDED",
    "STOPPED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
}
# What a task of a node sees of the agent's own environment (tasks.node.process): the
# agent gets these from the process that submits its job, as Slurm's default --export=ALL
# would give them.
PASSED_THROUGH = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
)
NODE_SETTINGS = (
    "BATCHSITE_NODE_POLL_SECONDS",
    "BATCHSITE_NODE_HEARTBEAT_SECONDS",
    "BATCHSITE_NODE_LOST_SECONDS",
    "BATCHSITE_NODE_KILL_GRACE_SECONDS",
    "BATCHSITE_NODE_PUBLISH_SECONDS",
)
# BATCHSITE_ACCOUNT_URL: the AZ_BATCH_ACCOUNT_URL a task with an authentication token calls
# (tasks.api.tokens), which on another host is not the submitting host's 127.0.0.1.
FROM_ENVIRONMENT = (
    "BATCHSITE_TASK_FILES_BACKEND",
    "BATCHSITE_TASK_FILES_OPTIONS",
    "BATCHSITE_LOG_LEVEL",
    "BATCHSITE_ACCOUNT_URL",
)
# Slurm may send --signal's signal up to 60 s early (its event resolution), so the agent
# gets that much more than its grace before a time limit.
SIGNAL_MARGIN_SECONDS = 60
OPTIONS = {
    "partition": str,
    "account": str,
    "qos": str,
    "time": str,
    "sbatch_args": list,
    "python": str,
    "project_dir": str,
    "data_dir": str,
    "log_dir": str,
    "export": list,
}
# The first part of a node's job script: NodeAddr is the address Slurm reaches the node at;
# resolved, it is the node's IP for ipAddress and AZ_BATCH_HOST_LIST.
NODE_ADDRESS = (
    'addr=$(scontrol show node -o "$SLURMD_NODENAME" 2>/dev/null | tr " " "\\n" | sed -n "s/^NodeAddr=//p"); '
    'ip=$(getent ahostsv4 "$addr" 2>/dev/null | awk "NR==1 {print \\$1}"); '
    'if [ -n "${ip:-$addr}" ]; then export BATCHSITE_NODE_IP="${ip:-$addr}"; fi'
)
# scancel's answers for a job that is already over: stopping it again is not an error.
GONE = ("Invalid job id specified", "already completing or completed")


def job_name(instance: str, account: str, pool_id: str, node_id: str) -> str:
    return ":".join(
        [PREFIX, instance, *(quote(part, safe="") for part in (account, pool_id, node_id))]
    )


def parse_job_name(name: str, instance: str) -> tuple[str, str, str] | None:
    """(account, pool id, node id) of one of this instance's job names, else None."""
    parts = name.split(":")
    if len(parts) != 5 or parts[0] != PREFIX or parts[1] != instance:
        return None
    return unquote(parts[2]), unquote(parts[3]), unquote(parts[4])


class SlurmProvider(NodeProvider):
    name = "slurm"

    def __init__(
        self,
        *,
        instance: str | None = None,
        environment: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        # `instance`: this batchsite's key in job names (default: from the database and the
        # data directory); `environment`: extra variables for every agent (tests use short
        # intervals); every CLI call gets `timeout` (with slurmctld down each waits ~9 s).
        self.instance = instance or instance_key()
        self.environment = dict(environment or {})
        self.timeout = timeout

    # --- the interface -------------------------------------------------------------------

    def start(self, launch: NodeLaunch) -> str:
        """Submit the node's job, or return the job already queued or running for it."""
        options = _options(launch.options)
        name = job_name(self.instance, launch.account, launch.pool_id, launch.node_id)
        for handle, state, _ in self._jobs([f"--name={name}"], code=ALLOCATION_FAILED):
            if state in LIVE_STATES:
                return handle
        argv, env = self._submission(launch, name, options)
        out = self._cli(argv, code=ALLOCATION_FAILED, env=env)
        handle = out.strip().split(";")[0]
        if not handle.isdigit():
            raise ProviderError(
                ALLOCATION_FAILED, f"sbatch answered {out.strip()!r}, not a job id."
            )
        return handle

    def stop(self, handle: str, *, graceful: bool) -> None:
        """graceful: SIGTERM to the agent alone (a pending job is cancelled); otherwise
        SIGKILL to every process of the job. A job that is over already is not an error."""
        if not handle.isdigit():
            raise ProviderError(REMOVE_NODES_FAILED, f"{handle!r} is not a Slurm job id.")
        if not graceful:
            self._scancel(["--signal=KILL", handle])
            return
        try:
            states = [
                state for _, state, _ in self._jobs([f"--jobs={handle}"], code=REMOVE_NODES_FAILED)
            ]
        except ProviderError as e:
            if not any(gone in e.message for gone in GONE):
                raise
            states = []  # Slurm has forgotten it (MinJobAge): long over
        if "RUNNING" in states:
            self._scancel(["--batch", "--signal=TERM", handle])
        elif any(state in LIVE_STATES for state in states):
            # A job that has not started takes no signal (scancel would retry for minutes):
            # cancel it, no agent runs yet. A suspended one gets Slurm's own cancel.
            self._scancel([handle])

    def running(self) -> list[RunningNode]:
        """This instance's jobs that run, or will run, an agent."""
        nodes = []
        for handle, state, name in self._jobs(["--me"], code=ALLOCATION_FAILED):
            parsed = parse_job_name(name, self.instance)
            if parsed is None or state not in LIVE_STATES:
                continue
            account, pool_id, node_id = parsed
            nodes.append(
                RunningNode(
                    account=account,
                    pool_id=pool_id,
                    node_id=node_id,
                    handle=handle,
                    pending=state in QUEUED_STATES,
                )
            )
        return nodes

    # --- Slurm ---------------------------------------------------------------------------

    def _submission(
        self, launch: NodeLaunch, name: str, options: dict
    ) -> tuple[list[str], dict[str, str]]:
        """sbatch's argv and environment for the node's job."""
        project_dir = options.get("project_dir") or str(settings.BASE_DIR)
        data_dir = options.get("data_dir") or str(settings.DATA_DIR)
        log_dir = options.get("log_dir", str(Path(data_dir) / "slurm"))
        env = self._environment(data_dir, options.get("export", []))
        # The agent's own grace, as it will read it, plus Slurm's margin.
        notice = math.ceil(float(env["BATCHSITE_NODE_KILL_GRACE_SECONDS"])) + SIGNAL_MARGIN_SECONDS
        argv = [
            "sbatch",
            "--parsable",
            "--exclusive",
            "--no-requeue",
            "--nodes=1",
            f"--job-name={name}",
            f"--signal=B:TERM@{notice}",
            f"--chdir={project_dir}",
            "--export=ALL",
            "--open-mode=append",
            f"--output={self._log_file(log_dir, launch)}",
        ]
        for option in ("partition", "account", "qos", "time"):
            if options.get(option):
                argv.append(f"--{option}={options[option]}")
        argv += options.get("sbatch_args", [])
        # The script holds no secret (`scontrol write batch_script` shows it): those travel
        # in the job's environment.
        argv.append(f"--wrap={_job_script(launch, options.get('python'), project_dir)}")
        return argv, env

    def _environment(self, data_dir: str, export: list[str]) -> dict[str, str]:
        """The job's whole environment (--export=ALL of exactly this): what the agent
        needs and nothing else of this process (its keys, the secret key)."""
        env = {
            name: os.environ[name]
            for name in (*PASSED_THROUGH, *FROM_ENVIRONMENT, *export)
            if name in os.environ
        }
        env.update({name: str(getattr(settings, name)) for name in NODE_SETTINGS})
        env["DATABASE_URL"] = settings.BATCHSITE_SLURM_DATABASE_URL or database_url()
        env["BATCHSITE_DATA_DIR"] = data_dir
        env.update(self.environment)
        if "SLURM_CONF" in os.environ:  # for sbatch itself
            env["SLURM_CONF"] = os.environ["SLURM_CONF"]
        return env

    @staticmethod
    def _log_file(log_dir: str, launch: NodeLaunch) -> str:
        """The agent's output, one file per node (appended to across restarts). Slurm fails
        a job whose output directory is missing, so it is made here: the log directory must
        be shared with the compute nodes, or "" for none."""
        if not log_dir:
            return "/dev/null"
        directory = Path(log_dir) / launch.account / launch.pool_id
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ProviderError(
                ALLOCATION_FAILED,
                f"The Slurm log directory {directory} cannot be made: {e}. "
                "Set the vmSize option log_dir to a directory the compute nodes share, "
                'or to "" for no log.',
            ) from None
        return str(directory / f"{launch.node_id}.log")

    def _jobs(self, selection: list[str], *, code: str) -> list[tuple[str, str, str]]:
        """(job id, state, name) of the jobs squeue selects, finished ones included."""
        out = self._cli(
            ["squeue", "--noheader", "--states=all", "--format=%i|%T|%j", *selection], code=code
        )
        jobs = []
        for line in out.splitlines():
            parts = line.split("|", 2)
            if len(parts) == 3:
                jobs.append((parts[0].strip(), parts[1].strip(), parts[2].strip()))
        return jobs

    def _scancel(self, args: list[str]) -> None:
        """Run scancel; a job that is over already is not an error."""
        try:
            self._cli(["scancel", *args], code=REMOVE_NODES_FAILED)
        except ProviderError as e:
            if not any(gone in e.message for gone in GONE):
                raise

    def _cli(self, argv: list[str], *, code: str, env: dict[str, str] | None = None) -> str:
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                env=env,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise ProviderError(
                code,
                f"Slurm's {argv[0]} is not installed here (not on PATH): the slurm "
                "node provider drives Slurm through its commands.",
            ) from None
        except subprocess.TimeoutExpired:
            raise ProviderError(
                code,
                f"Slurm's {argv[0]} did not answer within {self.timeout:g} s: is slurmctld up?",
            ) from None
        # scancel answers some errors with status 0 on stderr ("already completed").
        said = " ".join(line.strip() for line in done.stderr.splitlines() if line.strip())
        if done.returncode != 0 or "error" in said:
            if done.returncode == 0 and any(gone in said for gone in GONE):
                return done.stdout
            raise ProviderError(
                code, f"Slurm's {argv[0]} failed (exit {done.returncode}): {said or 'no message'}"
            )
        return done.stdout


def _options(options: dict) -> dict:
    """The vmSize table's options for this provider, checked: a wrong one is the site's
    mistake, told to the pool as a resize error, not a crash of the reconciler."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ProviderError(
            ALLOCATION_FAILED,
            f"Unknown slurm provider option(s) {', '.join(unknown)}: "
            f"the options are {', '.join(OPTIONS)}.",
        )
    for key, kind in OPTIONS.items():
        value = options.get(key)
        if value is None:
            continue
        if not isinstance(value, kind) or (
            kind is list and not all(isinstance(v, str) for v in value)
        ):
            what = "a list of strings" if kind is list else "a string"
            raise ProviderError(
                ALLOCATION_FAILED, f"The slurm provider option {key} must be {what}."
            )
    return options


def _job_script(launch: NodeLaunch, python: str | None, project_dir: str) -> str:
    """The job's script (sbatch --wrap, run by /bin/sh): the node's address, then the
    agent in the shell's place, so a signal for the batch step reaches the agent alone."""
    argv = runnode_argv(
        account=launch.account,
        pool_id=launch.pool_id,
        node_id=launch.node_id,
        slots=launch.slots,
        is_dedicated=launch.is_dedicated,
    )
    # The same command, with the interpreter and checkout the compute nodes have.
    argv[0:2] = [python or argv[0], str(Path(project_dir) / "manage.py")]
    return f"{NODE_ADDRESS}; exec {shlex.join(argv)}"
