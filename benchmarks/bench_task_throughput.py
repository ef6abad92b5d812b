"""End-to-end throughput of trivial tasks: 5,000 `/bin/true` tasks added through the 15.x
SDK (create_tasks) to a gunicorn-served batchsite and run by 2 local `runnode` agents,
from the first add to the last completed, beside the same-run rate of spawning the same
processes directly from Python with the same number of slots (issue 3; target ratio
>= 0.5).

The baseline spawns the same processes the same way as an agent (tasks.node.process.spawn):
per task a directory with wd/, stdout.txt and stderr.txt, the command in its own session
in wd/ with a Batch-like environment, as many at a time as the nodes have slots.

Each round is: the baseline, a job of --tasks tasks through the service, the baseline
again; its ratio is the service's rate over the mean of the two baselines around it. The
rounds share one service (new job each); the median ratio is the figure. Nothing is
deleted before the end: ext4 (without a journal, as here) scans past recently deleted
inodes when it allocates new ones, for minutes, so creating 10,000 directories right
after deleting 10,000 costs several times more, and whichever phase came after a deletion
paid for it. Run it with --data-dir on a fresh path, or minutes after the last run, to
see the figures below.

Figures (2026-11-27, 2 CPUs, 2 nodes x 2 slots, nothing else running):
  before this day's work (4d60d9c): 372-460 tasks/s beside 1,330-1,800/s: ratio 0.21-0.35
  now (8462db8): 1,070-1,185 tasks/s beside 1,960-2,290/s: ratio 0.47-0.54 per round,
                 medians of three runs 0.52, 0.52, 0.53; one at a time 0.85-0.87
Where it went: the agents' report+claim transaction (fewer indexes to write, hand-written
statements straight to sqlite3, one SELECT for a report, no Model.__init__), the SQLite
write lock (a queue on a lock file instead of SQLite's sleep-and-retry, agents ahead of
web requests, checkpoints after the commit instead of inside it) and the add path (tasks
built before the lock). What is left is CPU: on 2 cores the agents (~0.8 ms a task,
spawning included), the task processes (~0.55 ms each: exec and the dynamic loader),
gunicorn and the SDK client (~0.4 ms a task together, while adding) share the cores;
spawning directly is one parent process with its children running on the other core.

PostgreSQL (issue 13; DATABASE_URL=postgres://... runs it there, on a fresh test_<db>).
Where the time went (2026-12-01, measured on this machine at load average 10-17, so every
figure below is several times the idle one):
  - Server side it is not the plans: EXPLAIN (ANALYZE, BUFFERS) of each statement of a
    report-and-claim pass (the joined attempt/task/job SELECT, the node's slots, the
    jobs, the task page, the counters' UPDATE) shows 0.06-0.55 ms execution on 2-11
    shared buffer hits (index scans), and planning as long again (0.1-0.36 ms): the
    hand-written statements were sent as text through Django's client-side binding and
    planned every time.
  - Client-observed, the same statements took 1-12 ms each: a round trip is two context
    switches (agent -> backend -> agent), and on a busy 2-core machine each waits for a
    CPU. A pass was 16 statements + BEGIN + COMMIT (3 of them ORM queries, compiled each
    time: the re-reads under FOR UPDATE that only PostgreSQL ran); bench_hot_path.py
    measured 35.0 ms per task for it (SQLite, in process: 3.6 ms at the same load).
  - Locks: every claim and every report took the job row FOR UPDATE SKIP LOCKED, so
    agents of one job took turns on it: a claim that found it held claimed nothing and
    waited for the next poll (0.2 s), a report that found it held was deferred. Every
    report and claim also updated the job's counter row (in the middle of the pass).
What changed: the hot path's statements go to a server-binding psycopg cursor, prepared
once per connection (tasks/tasks/sql.py); a report is one locked SELECT (attempt and
task FOR NO KEY UPDATE, job FOR KEY SHARE, SKIP LOCKED) and `= ANY(array)` instead of
IN lists; the job row is shared (KEY SHARE) by agents and excluded only by the job's own
operations; the counters are summed per pass and written once, last (counts.one_pass).
11 statements a pass; bench_hot_path.py 35.0 -> 15.0 ms per task at load 13-20.
Figures, before (main b24298c) -> after, the same day and load (10-17 for PostgreSQL):
  PostgreSQL 2 nodes x 2 slots, 5,000 tasks: 10 tasks/s, ratio 0.11 -> 18 tasks/s, 0.22
  PostgreSQL 4 nodes x 1 slot: 3.7 tasks/s (stopped after 2,505 tasks in 684 s), ~0.04
                               -> 22 tasks/s, ratio 0.21 (1,000 tasks)
  SQLite 2 x 2: ratio 0.69 (median of 3 rounds of 5,000, load 5-13) -> 0.69 (2,000, load 12)
  SQLite 4 x 1: ratio 0.59 (before only)
What is left is the round trips themselves: with the backend a separate process, a pass
costs ~13 scheduler round trips that SQLite, in process, does not pay; on a loaded
machine that, not the database, bounds the agents (pg_stat_activity shows their backends
"idle in transaction", waiting for the agent, never on a lock).

At a million tasks (2026-12-02, a throwaway PostgreSQL 15 cluster, 1,000,000 tasks in the
job, two thirds active, all created at one instant; EXPLAIN (ANALYZE, BUFFERS) of each
statement of a report-4-and-claim-4 pass, load 12-15): every statement but one stays
small (the report's locked SELECT 0.13 ms on 30 buffer hits, the node's slots 0.07 ms,
the jobs 0.06 ms, the attempts' INSERT 0.15 ms, the counters' UPDATE 0.11 ms). The one is
the claim's task page, WHERE job, state = 'active', NOT lifetime_expired ORDER BY
creation_time, id LIMIT n FOR UPDATE SKIP LOCKED: a sequential scan of the 667,000
active rows and a sort, 4.3 s (28,600 buffers, temp files). The index task_job_state_created
(job, state, creation_time) orders by creation_time only; tasks share a creation time (all
of an Add Task Collection's), so the tie-break on id needs a sort of every tie, and with
ties this large the planner sorts the whole job. An index on (job, state, creation_time,
id) gives the page in index order whatever the ties (proposed for the hot path's owner:
tasks/models.py and attempts.py are not this benchmark's to change). The executemany
UPDATEs (attempts, tasks) were not explained; client-observed they took 2-13 ms each.
The pass sent 11 statements, BEGIN and COMMIT included (as above). The 4.3 s is this
data's worst case (one creation time for a million tasks, as bench_list_tasks.py makes
them too); with a collection's 100 per creation time the planner may take the index and
an incremental sort, which was not measured.

Why the figures fell ~8x after 2026-11-27 (2026-12-02, measured with 8462db8, main
c452a16 and variants interleaved; load average 4-15 from other work, so indicative):
  - The machine. Spawning /bin/true as an agent does (vfork, exec, wait) took 2-6 ms a
    process (a bash loop of /bin/true: 2 ms each), so the direct baseline ran 230-1,140/s
    where it ran 1,960-2,290/s; forking a Python process costs by its size here: 2.7 ms at
    10 MB, 23-25 ms at 50 MB (an agent's). The baseline's code is the same: 8462db8's and
    main's spawn() ran 244-397 and 371-460 spawns/s, interleaved. Running --data-dir under
    /dev/shm changed neither.
  - The agent. Since tasks run as their pool's user (issue 10, c06685f), a root agent's
    Popen(user=...) cannot vfork (CPython only vforks without a user switch) and forked
    the whole agent: 14-25 ms a task where a spawn as root took 2-4 ms. Interleaved,
    SQLite 2x2, 1,000 tasks: 8462db8 101-131 tasks/s, main 23-29; main starting its
    tasks as root 118-247, as their users 52-55. A sampling profile (py-spy --idle) of a
    main agent: 72 % of its time waiting in select() with its slots busy, its tasks not
    yet started (claim to exit: median 41 ms for /bin/true). That, not the database, is
    what bounded both databases' figures last session (81-94 tasks/s on PostgreSQL).
What changed: a root agent starts a task as its user through a small helper process of
its own (tasks/node/user_spawn.py: ~10 MB, it makes the process with clone(CLONE_PARENT),
so it is still the agent's child: pidfd, waitid, wait4 and its CPU times unchanged); a
switch of user costs the helper's fork (~3 ms), not the agent's.
Figures, main (c452a16) -> this change, one round each, interleaved pairs in the same
minutes, load average 3.3-5.3 (other engineers' work; the direct baseline swung 317-1,327/s
within single runs, so the tasks/s are the steadier figure):
  SQLite 2x2 (2,000 tasks): 104, 80 -> 163, 190 tasks/s (ratio 0.14, 0.14 -> 0.47, 0.25)
  SQLite 4x1 (1,500):       85 -> 119 tasks/s (0.10 -> 0.21)
  PostgreSQL 2x2 (1,500):   71, 61, 81 -> 137, 71, 79 tasks/s (0.11, 0.14, 0.12 -> 0.17,
                            0.09, 0.12): not shown to be faster; issue 13's >= 0.4 not met
  PostgreSQL 4x1 (1,000):   44 -> 110 tasks/s (0.06 -> 0.11)
With it, a PostgreSQL agent's profile: ~50 % idle in select(), ~33 % waiting on the server
(Connection.wait), 8 % starting processes through the helper, 4.6 % job preparation's
per-loop queries (JobTasks.tend, two ORM queries on every turn of the loop), 4 % node
orders: on PostgreSQL the round trips, not the spawn, are what is left.

Where the CPU goes (2026-12-02 afternoon, main 8262956; the round's CPU per task, now
printed under each round: the web tier, the agents, PostgreSQL's server processes, the
task processes the agents reaped, this script's SDK client; load average 1-1.7 from the
suites that had just ended, 2,000 tasks, one round each, two runs):
  SQLite 2x2:      736-821 tasks/s, ratio 0.40-0.41: web 0.36-0.42, agents 1.13-1.31,
                   tasks 0.60-0.63, client 0.12-0.14 ms; 2.23-2.46 ms of 2.44-2.72 (wall x CPUs)
  PostgreSQL 2x2:  292-298 tasks/s, ratio 0.15: web 0.44-0.49, agents 2.35-2.38, server
                   2.19-2.21, tasks 0.74-0.76, client 0.28-0.30 ms; 6.07 of 6.72-6.84
  SQLite 4x1:      428 tasks/s, ratio 0.24: agents 2.74 ms a task (one task a pass)
  PostgreSQL 4x1:  314 tasks/s, ratio 0.16: agents 2.98, server 1.90 ms
So on these 2 CPUs both databases are CPU-bound (the CPU used is ~90 % of wall x CPUs):
the rate is 2 CPUs over the CPU a task costs, and the waits (round trips, the write lock,
the vfork until exec) matter only as far as they leave a CPU idle. A task's own process
costs what the direct baseline's do (0.62 ms of its children's CPU a task, measured the
same way); the difference is the agents' and, on PostgreSQL, the server's. The agents'
cost is per pass more than per task: 2.74 ms a task where each pass reports and claims one
(4x1), 1.2 where it takes two (2x2: 1,504 tasks in 775 passes, counted by cProfile).
A CPU profile of an agent (AGENT_PROFILE=path runs each under benchmarks/_cpu_profile.py,
cProfile timed by process_time) shows no single hot spot: of a pass, the claim ~28 %
(reading the rows into model instances, the claim's UPDATE and INSERT), the report ~26 %,
starting the processes ~34 % (task directories walked link-free, the environment encoded
for the native start, clone), the transaction's begin/commit and write lock ~12 %; the
control poll (5 a second: orders, the node's attempts, cleanups) ~9 % of the agent's
CPU. pg_stat_statements on a throwaway cluster (heavily loaded, so read the shares): the
counters' UPDATE waits for the other agent's commit (1.3-2.2 ms a call, the row is
locked from the UPDATE to the COMMIT), the claim's task page 1.4 ms a call (36 buffer hits
for 4 rows: most likely the entries of tasks claimed since the last vacuum), each task UPDATE 0.45
ms (a state change is never a HOT update: 12 indexes, ~12.8 WAL records a row).
What is left for issue 13's ratios (PostgreSQL >= 0.4, i.e. ~2.3 ms of CPU a task in all,
from 6.1; SQLite 0.52, ~1.9 from 2.3) is structural: fewer Python objects and statements a
pass (rows, not model instances, through the claim and the report), or on PostgreSQL the
pass as one server-side call; not a hot spot to remove.

The job's size (2026-12-02, later; pg_stat_statements on a throwaway cluster, quiet):
on PostgreSQL the claim's task page and the report's SELECT cost 0.9 and 0.75 ms a call (140
buffers) with 2 agents at 2,000 tasks, 3.7 and 1.1 ms (415 and 189 buffers) at 6,000, where
one agent alone or an idle job needs 0.03-0.07 ms (19 buffers): each start and end leaves
index entries pointing to dead row versions (no HOT update: the state is indexed), the scans
read them until a VACUUM removes them, and autovacuum comes once a minute; and the report's
KEY SHARE lock on the job row, inside the joined SELECT, met a newer version of that row
(another agent's counters) nearly every time and rechecked the whole join. Now the service's
sweep (which this benchmark runs, as `make run` does) vacuums those tables past
BATCHSITE_VACUUM_DEAD_ROWS dead rows (tasks/operations/vacuum.py) and the report locks its
jobs by primary key in a statement of its own (report SELECT 0.75 -> 0.07 ms). 2 x 2, the
vacuum off (BATCHSITE_VACUUM_DEAD_ROWS=10^9) -> on, same minutes: 2,000 tasks 381 -> 419
tasks/s (ratio 0.18 -> 0.21; server 1.59 -> 1.19 ms a task), 6,000 tasks 256 -> 396 (0.13 ->
0.20; server 3.41 -> 1.40 ms a task).

Per pass or per task (2026-12-03, a fresh machine, nothing else running, load 0.2-2;
bench_hot_path.py, which now prints the client's and the server's CPU per task, and
pg_stat_statements with track_planning on):
  - The prepared statements' plans were chosen by the costs PostgreSQL saw, differently
    from one run to the next: the report's join behind `= ANY(array)` was planned afresh
    on every call (3,000 plans in 3,000 calls, 0.11 ms each), the node's slots and the
    claim's task page on 2,000 of 3,000 calls in one run and 8 in the next; and a generic
    plan made on a new database's empty tables was kept for the connection's life (the
    node's slots: a sequential scan of the attempts, 91 buffers a call after 6,000 tasks,
    where the index reads 3). Now short pk lists are IN lists of a power-of-two length,
    code constants are written into the statements (sql.literal), and the hot path's
    statements are prepared afresh after 1, 2, 4 ... s and then every 2 minutes.
  - update_rows is one UPDATE ... FROM (VALUES ...) on PostgreSQL, and a report's attempts
    and tasks are written by one statement (update_rows_together).
  - What a pass costs, by slots per pass (bench_hot_path.py --slots N, CPU ms a task,
    client + server): 1 slot 1.37 + 1.06, 2 slots 0.74 + 0.69, 4 slots 0.51 + 0.45, 8 slots
    0.33 + 0.26: ~2.0 ms a pass whatever it carries, ~0.35 ms a task on top. Of the fixed
    part: a statement costs ~95 us of CPU (a prepared `SELECT $1` through sql.run: client
    60 us, of which psycopg's execute and fetch 43 us, server 35 us); BEGIN and COMMIT
    ~190 us; the commit's WAL flush ~270 us of the server's (synchronous_commit=off, tried
    and not kept: a claim lost in a crash would run its task twice, took the server from
    0.70 to 0.57 ms a task); a pass sends 9 statements and BEGIN and COMMIT.
    A merge of two statements into one saves ~0.05 ms a task at 2 slots, within the
    benchmark's noise: no one statement is the cost, their number is.
Figures, main at the session's start (868816c) -> now (1fea499), interleaved, two runs of
3 rounds of 2,000 tasks each, load 1.1-2.3, pg_stat_statements not loaded (it was for the
measurements above; with it loaded the same code ran 528-611 tasks/s):
  PostgreSQL 2x2: 473-539 tasks/s, ratio 0.28-0.31 -> 558-594, 0.32-0.35; CPU a task
  (earlier runs, same code): database 0.84-1.06 -> 0.69-0.84 ms, agents 1.33-1.41 -> 1.16-1.33
  PostgreSQL 4x1, 1,500 tasks: 310-353 tasks/s, ratio 0.20-0.22 (now only)
  SQLite 2x2: 903-965, ratio 0.54-0.56 -> 926-1,000, 0.53-0.56 (its path did not change)
  SQLite 4x1: 614-684, ratio 0.41-0.42 (now only)
So issue 13's >= 0.4 on PostgreSQL is not met: at 2 tasks a pass the fixed ~2 ms is 1 ms a
task, and on 2 CPUs that, with the task's own 0.8 ms, the web tier's and the client's,
bounds the rate near 600 tasks/s (0.4 is ~650-700 here). What would move it: passes that
carry more tasks (one agent process serving the local nodes of a machine, one pass for all
their slots), or the pass as one server-side call.

Two smaller levers, measured and not taken (2026-12-04, quiet machine; bench_hot_path.py
at 2 slots a pass: client 0.89-1.19, server 0.79-1.11 ms a task from one run to the next):
  - psycopg's pipeline mode (a pass's statements sent without waiting for each answer, the
    answers read together): 9 prepared trivial statements in a transaction cost client
    0.78-0.97 / server 0.37-0.43 ms pipelined against 0.83-1.10 / 0.50-0.63 one by one.
    Most of a pass's ~3.7 ms is the statements' and the code's own work, not the waits,
    and a pass's statements mostly need the answer before them.
  - Fewer indexes written per state change: with 6 of the task table's 12 indexes dropped
    (the dashboard's sorts and retention's), the server's CPU went 0.91-0.93 -> 0.75-0.79
    ms a task (2 runs each): ~0.15 ms, for indexes the dashboard's 1M-task pages need.
Where a pass's server time goes (same day, pg_stat_statements with track_planning, one
bench_hot_path.py run at 2 slots, 3,000 tasks; execution a call, buffer hits, WAL records):
the report's UPDATE of attempts and tasks 488 us, 97 hits, 37 records; the claim's UPDATE of
tasks 317 us, 63, 26; the attempts' INSERT 123 us, 12 records; the counters' UPDATE 89 us;
the report's SELECT 86 us; the node's slots 55 us; the claim's task page 47 us; the jobs
35 us; 10 foreign-key checks ~40 us in all. The three writes take ~0.93 ms of the pass's 1.3 ms
of execution, mostly index entries: a task's state change is never a HOT update (~13 WAL
records a row), nor is an attempt's report (its outcome is in the (node, outcome) index).
The task page was also planned afresh on 1,167 of 1,499 calls (~0.16 ms each): its limit
was bound, so PostgreSQL costed the generic plan for an unknown limit and kept making
custom plans. The limit is now written into the statement (tasks/sql.py select_models):
40 plans in 1,499 calls, one per renewal.

One process for several nodes, measured and ruled out (2026-12-04 evening, a fresh machine;
PostgreSQL, 4,000 tasks, 2 rounds a run, the shapes interleaved in the same minutes). The
lever proposed above (one agent process serving a machine's local nodes, one pass for all
their slots) makes each pass carry what 1 node x 4 slots carries, so 1 x 4 is its best case:
  2 x 2: 404, 415 tasks/s (CPU used 4.2-4.4 ms a task of 4.8-5.0 wall x CPUs)
  1 x 4: 211, 232 tasks/s (CPU used 5.1-5.7 of 8.6-9.5 wall x CPUs)
  2 x 2: 303, 294; 1 x 4: 205, 224 (the machine slower by then: direct 700 where it was 1,400)
Fewer statements a task do not make up for one process: its spawns, reaps and pass run one
after the other, and while it waits for the server's answers nothing else of it runs; a
third to two fifths of the CPUs stay idle. With two agents one works while the other waits.
On these 2 CPUs 2 x 2 is CPU-bound (about 90 % of wall x CPUs used), so only CPU taken off
a task helps. Earlier today, quiet (direct 1,657-2,007 tasks/s): 2 x 2 at 475-485 tasks/s,
ratio 0.27-0.28, 3.7 ms a task: agents 1.65, database 0.95, tasks 0.67, web 0.2, client 0.2.
A ratio of 0.4 here is ~700 tasks/s, at most ~2.5 ms a task with the cores 90 % busy. The
task's process, the web tier and the SDK client take ~1.1 ms of that, which leaves ~1.45 ms
for agents and server together. SQLite's in-process agents alone take 1.0-1.3.

Usage: .venv/bin/python benchmarks/bench_task_throughput.py [--tasks 5000] [--rounds 3]
           [--shapes 2xN,4x1 | --nodes 2 --slots N] [--data-dir PATH]
(by default 2 agents x N slots, N the CPUs, then 4 agents x 1 slot, each in a run of its
own; --nodes/--slots: that one shape; DATABASE_URL=postgres://... for PostgreSQL;
AGENT_PROFILE=path for each agent's CPU profile)
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from _common import describe_run, setup_django
from _nodes import agent_children_cpu, cpu_used, service


def spawn_directly(count: int, concurrency: int, root: Path) -> float:
    """The baseline: the same processes spawned the same way as an agent does, without the
    service: per task a directory with wd/, stdout.txt and stderr.txt, the command in
    its own session in wd/ with a Batch-like environment, `concurrency` at a time,
    reaped as they exit."""
    from tasks.node.process import close, spawn

    root.mkdir(parents=True, exist_ok=True)
    base = {name: os.environ[name] for name in ("PATH", "LANG", "HOME") if name in os.environ}
    started = time.perf_counter()
    running: dict[int, object] = {}
    launched = 0
    while launched < count or running:
        while launched < count and len(running) < concurrency:
            task_dir = f"{root}/t{launched:05d}"
            os.mkdir(task_dir)
            os.mkdir(f"{task_dir}/wd")
            env = dict(
                base,
                AZ_BATCH_TASK_ID=f"t{launched:05d}",
                AZ_BATCH_TASK_DIR=task_dir,
                AZ_BATCH_TASK_WORKING_DIR=f"{task_dir}/wd",
            )
            child = spawn(
                ["/bin/true"],
                env=env,
                cwd=f"{task_dir}/wd",
                stdout=f"{task_dir}/stdout.txt",
                stderr=f"{task_dir}/stderr.txt",
            )
            running[child.pid] = child
            launched += 1
        pid, status = os.wait()
        child = running.pop(pid, None)
        if child is not None:
            if child.popen is not None:  # Popen's (no native start here): it must not reap it
                child.popen.returncode = os.waitstatus_to_exitcode(status)
            close(child)
    return time.perf_counter() - started


def _cpu() -> dict[str, float]:
    """CPU seconds so far: the web tier, the agents, the database's server processes
    (cpu_used) and the task processes the agents reaped."""
    return {**cpu_used(), "tasks": agent_children_cpu()}


# 2 agents with a slot per CPU: the shape the issues' figures are measured with.
DEFAULT_SHAPE = (2, os.cpu_count() or 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    nodes, slots = DEFAULT_SHAPE
    parser.add_argument("--nodes", type=int, help="one shape: this many agents (with --slots)")
    parser.add_argument("--slots", type=int, help="one shape: slots per agent")
    parser.add_argument(
        "--shapes",
        default=f"{nodes}x{slots},4x1",
        help="agents x slots, comma-separated, each measured in a run of its own "
        "(the default also shows 4 agents of 1 slot contending)",
    )
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--data-dir", default="", help="keep everything here (default: a temporary dir, removed)"
    )
    args = parser.parse_args()
    if args.nodes is None and args.slots is None:
        shapes = [tuple(int(n) for n in shape.split("x")) for shape in args.shapes.split(",")]
        if len(shapes) > 1:
            _each_shape(args, shapes)
            return
        args.nodes, args.slots = shapes[0]
    args.nodes = args.nodes or nodes
    args.slots = args.slots or slots
    if args.data_dir:
        os.environ["BENCH_DATA_DIR"] = args.data_dir
    data = setup_django("throughput")

    from azure.batch import models as m

    from tasks.models import Job

    total_slots = args.nodes * args.slots
    rounds, cpus = [], []
    with service(data, nodes=args.nodes, slots=args.slots) as (client, _account, _pool):
        for r in range(args.rounds):
            before = spawn_directly(args.tasks, total_slots, data / f"direct-{r}-before")
            job_id = f"tp{r}"
            client.create_job(
                m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="local"))
            )
            tasks = [
                m.BatchTaskCreateOptions(id=f"t{i:05d}", command_line="/bin/true")
                for i in range(args.tasks)
            ]
            cpu_before, own_before = _cpu(), time.process_time()
            started = time.perf_counter()
            client.create_tasks(job_id, tasks, max_concurrency=args.threads)
            added = time.perf_counter() - started
            while Job.objects.get(job_id=job_id).completed_count < args.tasks:
                time.sleep(0.02)
            e2e = time.perf_counter() - started
            cpu = {k: v - cpu_before[k] for k, v in _cpu().items()}
            cpu["client"] = time.process_time() - own_before
            cpus.append({k: 1000 * v / args.tasks for k, v in cpu.items()})
            job = Job.objects.get(job_id=job_id)
            assert job.succeeded_count == args.tasks, f"only {job.succeeded_count} succeeded"
            after = spawn_directly(args.tasks, total_slots, data / f"direct-{r}-after")
            rounds.append((args.tasks / e2e, e2e, added, args.tasks / before, args.tasks / after))
    sequential_seconds = spawn_directly(args.tasks, 1, data / "sequential")

    print(
        f"{args.tasks:,} x /bin/true on {args.nodes} nodes x {args.slots} slots ({os.cpu_count()} CPUs), "
        f"{args.rounds} rounds"
    )
    print(f"  {describe_run()}")
    print(
        "  direct = the same processes spawned as an agent spawns them (task dir, wd/, stdout/stderr files),"
    )
    print(f"           {total_slots} at a time, just before and just after the round")
    ratios = []
    for i, (e2e, seconds, added, before, after) in enumerate(rounds, start=1):
        ratio = e2e / ((before + after) / 2)
        ratios.append(ratio)
        print(
            f"  round {i}: add -> completed {e2e:>6,.0f} tasks/s ({seconds:.2f} s, adding {added:.2f} s); "
            f"direct {before:,.0f} / {after:,.0f} tasks/s; ratio {ratio:.2f}"
        )
        used = cpus[i - 1]
        print(
            "           CPU ms a task: "
            + ", ".join(f"{k} {v:.2f}" for k, v in used.items())
            + f"; all {sum(used.values()):.2f} (wall x CPUs {1000 * seconds * (os.cpu_count() or 1) / args.tasks:.2f})"
        )
    sequential = args.tasks / sequential_seconds
    median = sorted(ratios)[len(ratios) // 2]
    median_e2e = sorted(r[0] for r in rounds)[len(rounds) // 2]
    print(
        f"  spawned directly, one at a time: {sequential:,.0f} tasks/s; ratio (median round) "
        f"{median_e2e / sequential:.2f}"
    )
    print(
        f"  ratio end-to-end / direct ({total_slots} at a time), median of {len(ratios)} rounds: {median:.2f}"
        f"   target: >= 0.5"
    )


def _each_shape(args, shapes: list[tuple[int, int]]) -> None:
    """Each shape in a process of its own, one after the other: its own database (a fresh
    test_<db> on PostgreSQL) and data dir, so that neither inherits the other's rows."""
    import subprocess
    import sys

    for nodes, slots in shapes:
        command = [
            sys.executable,
            __file__,
            *("--tasks", str(args.tasks), "--rounds", str(args.rounds)),
            *("--nodes", str(nodes), "--slots", str(slots), "--threads", str(args.threads)),
        ]
        if args.data_dir:
            command += ["--data-dir", str(Path(args.data_dir) / f"{nodes}x{slots}")]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
