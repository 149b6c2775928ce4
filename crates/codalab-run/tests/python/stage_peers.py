#!/usr/bin/env python3
"""Peers of the bundle staging benchmark: time programs and their peak memory.

benches/staging.rs (cargo bench -p codalab-run --bench staging) runs this with
$ACI_TEST_VENV_PYTHON to measure the programs it compares the worker with.

Subcommands:

  measure -- CMD ARGS... [--then CMD ARGS...]...
            run the commands one after another (like `a && b`: a failing
            command stops the sequence and exits 1) and print one JSON object
            {"seconds": wall time of the whole sequence,
             "peak_rss_kib": largest ru_maxrss of the processes (KiB),
             "steps": [{"argv0", "seconds", "peak_rss_kib"}, ...]}
  pyextract [--timings JSON] URL FILE DEST
            stage a bundle the way the upstream CodaLab worker does, in this
            process: urllib.request.urlretrieve(URL, FILE), then
            zipfile.ZipFile(FILE).extractall(DEST). Meant to run under
            `measure`. --timings JSON writes the seconds of each phase to
            the file JSON.

How `measure` gets each process's own peak: ru_maxrss from os.wait4. A process
started straight from here would report at least this Python process's own
peak (about 11 MiB): Linux carries the peak of the memory a process had before
exec (here, a fork or vfork of this interpreter) into its ru_maxrss. So this
process makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER) and
starts each command as a background job of /bin/sh, which prints the job's pid
and exits; the job, forked from the small shell, is reparented to this process,
execs the command only then, and is reaped here with os.wait4. Its ru_maxrss
then starts from the shell's few hundred KiB, not from this interpreter.

Exit status: 0 done, 1 a command failed or an error (message on stderr), 2 bad
usage.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
THEN = "--then"
# Run by /bin/sh with the command as "$@": start it as a background job that
# waits for stdin (the gate) to close before it execs the command.
LAUNCH = 'exec 3<&0 4>&1 1>&2 0</dev/null; (read _ <&3; exec 3<&- 4>&-; exec "$@") & echo $! >&4'


class Failure(Exception):
    """An error worth one line on stderr."""


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise Failure(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(errno)}")


def run_one(argv: list[str]) -> dict:
    """Run argv to completion as a grandchild; return its wall time and ru_maxrss."""
    start = time.monotonic()
    # The shell's stdin is a gate (fd 3 in the shell), its stdout a pipe that
    # gives us the job's pid (fd 4); the job's output goes to our stderr, so
    # that our stdout carries only JSON. The job waits at the gate until the
    # shell is gone, so it is our child (not the shell's) by the time it can
    # exit.
    gate_r, gate_w = os.pipe()
    try:
        launcher = subprocess.Popen(
            ["/bin/sh", "-c", LAUNCH, "sh", *argv], stdin=gate_r, stdout=subprocess.PIPE
        )
    finally:
        os.close(gate_r)
    try:
        line = launcher.stdout.readline()
        launcher.stdout.close()
        if launcher.wait() != 0 or not line.strip().isdigit():
            raise Failure(f"could not start {argv[0]!r} (launcher exit {launcher.returncode})")
    finally:
        os.close(gate_w)
    pid = int(line)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        what = f"signal {-code}" if code < 0 else f"exit {code}"
        raise Failure(f"{argv[0]!r} failed ({what})")
    return {"argv0": argv[0], "seconds": seconds, "peak_rss_kib": usage.ru_maxrss}


def split_commands(words: list[str]) -> list[list[str]]:
    if words and words[0] == "--":
        words = words[1:]
    commands: list[list[str]] = [[]]
    for word in words:
        if word == THEN:
            commands.append([])
        else:
            commands[-1].append(word)
    if any(not c for c in commands):
        raise Failure(f"empty command (give `measure -- CMD ARGS... [{THEN} CMD ARGS...]`)")
    return commands


def cmd_measure(a: argparse.Namespace) -> None:
    commands = split_commands(a.command)
    become_subreaper()
    start = time.monotonic()
    steps = [run_one(argv) for argv in commands]
    seconds = time.monotonic() - start
    emit(
        {
            "seconds": seconds,
            "peak_rss_kib": max(s["peak_rss_kib"] for s in steps),
            "steps": steps,
        }
    )


def cmd_pyextract(a: argparse.Namespace) -> None:
    # Imported here, so that `measure` stays as small as it can.
    import urllib.request
    import zipfile

    start = time.monotonic()
    urllib.request.urlretrieve(a.url, a.file)
    downloaded = time.monotonic()
    with zipfile.ZipFile(a.file) as z:
        z.extractall(a.dest)
    done = time.monotonic()
    if a.timings:
        with open(a.timings, "w") as f:
            json.dump(
                {"download_seconds": downloaded - start, "extract_seconds": done - downloaded}, f
            )


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="stage_peers.py",
        description=__doc__.split("\n\n", 1)[0],
        epilog="Exit status: 0 ok, 1 error or a command failed, 2 bad usage.",
    )
    sub = p.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
    c = sub.add_parser(
        "measure",
        help="run commands in sequence; print wall time and peak RSS as JSON",
        description=f"Run CMD ARGS..., then each further command given after {THEN}, "
        "stopping at the first failure; print wall time and the largest ru_maxrss.",
    )
    c.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS...")
    c.set_defaults(func=cmd_measure)
    c = sub.add_parser(
        "pyextract",
        help="urlretrieve URL to FILE, then zipfile extractall into DEST",
        description="Stage a bundle as the upstream worker does: "
        "urllib.request.urlretrieve, then zipfile.ZipFile.extractall.",
    )
    c.add_argument("url", metavar="URL")
    c.add_argument("file", metavar="FILE", help="where the zip is downloaded")
    c.add_argument("dest", metavar="DEST", help="folder to extract into")
    c.add_argument(
        "--timings",
        metavar="JSON",
        help="write the seconds of each phase here: "
        '{"download_seconds": ..., "extract_seconds": ...}',
    )
    c.set_defaults(func=cmd_pyextract)
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    try:
        a.func(a)
    except Failure as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
