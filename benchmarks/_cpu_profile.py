"""Run a command line's Python script under cProfile timed by the process's CPU time
(time.process_time), not the wall clock: where an agent's CPU goes, without its waits
(select, the write lock, a vfork until the child execs). Writes the stats to argv[1].

Usage: python benchmarks/_cpu_profile.py OUT script.py [args...]
(bench_*.py with AGENT_PROFILE=path runs each agent under it: path.0, path.1, ...)
"""

import cProfile
import runpy
import sys
import time

if __name__ == "__main__":
    out, script = sys.argv[1], sys.argv[2]
    sys.argv = sys.argv[2:]
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        profile.disable()
        profile.dump_stats(out)
