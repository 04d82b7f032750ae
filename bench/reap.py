#!/usr/bin/env python3
# `python3 reap.py REPORT COMMAND [ARGS...]`: runs COMMAND (same stdio) and,
# once it has exited, writes to REPORT what only its parent can know exactly:
# its CPU seconds and peak RSS (wait4's rusage) and the bytes it wrote
# (/proc/PID/io wchar, read while it is a zombie: waitid with WNOWAIT), and
# when it started and ended (wall clock in seconds, this wrapper's own
# start-up not counted). Exits with COMMAND's status (128 + signal for a
# signal). COMMAND dies with us (PR_SET_PDEATHSIG): a bench that kills this
# wrapper kills both.
import ctypes
import json
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1

report, command = sys.argv[1], sys.argv[2:]
started = time.time()
pid = os.fork()
if pid == 0:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.execvp(command[0], command)
signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
ended = time.time()
with open(f'/proc/{pid}/io') as io:
    fields = dict(line.split(': ') for line in io.read().splitlines() if line)
_, status, usage = os.wait4(pid, 0)
code = os.waitstatus_to_exitcode(status)
with open(report, 'w') as out:
    json.dump({'started': started, 'ended': ended, 'code': code, 'cpu': usage.ru_utime + usage.ru_stime, 'maxRssKiB': usage.ru_maxrss, 'wchar': int(fields['wchar'])}, out)
sys.exit(code if code >= 0 else 128 - code)
