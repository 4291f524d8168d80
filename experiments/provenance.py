"""Provenance of an experiment's results: command, git commit, date, machine, versions.

One module for every script in ``experiments/``. A script that runs as ``python experiments/NAME.py`` finds
it on ``sys.path`` (its own folder comes first); a script loaded from its file by a chapter or a test puts
its folder on ``sys.path`` before importing it (see the top of each script).

Each script keeps the layout of its own record, because the chapters read those keys:
``adding_gated.py`` and ``ch06_adding_rnn.py`` write ``date`` and a ``versions`` block; ``reber.py`` and
``char_lm.py`` write :func:`lm_record` (``date_utc``, ``git_dirty``, versions inside ``machine``), and
share their command line and the writing of their results: :func:`lm_command_line`, :func:`lm_run`.
The pieces here only depend on the standard library, so a numpy-only script does not import torch.
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git(*args):
    """The output of ``git ARGS`` run in the repository root, stripped; ``""`` when git fails or is absent."""
    try:
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def git_commit(path=None):
    """``HEAD``'s hash, or ``unknown`` outside git; with ``path``, ``+dirty`` appended if that file differs
    from ``HEAD``. Take it when the run starts: others may commit meanwhile."""
    head = git("rev-parse", "HEAD")
    if not head:
        return "unknown"
    if path is not None and git("status", "--porcelain", "--", str(Path(path).resolve())):
        return head + "+dirty"
    return head


def git_dirty():
    """Whether any tracked file of the checkout differs from ``HEAD``."""
    return bool(git("status", "--porcelain", "--untracked-files=no"))


def command(argv, interpreter="python"):
    """The command line that reruns ``argv`` (script path first), each argument shell-quoted."""
    return " ".join([interpreter, *(shlex.quote(a) for a in argv)])


def utc_now():
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def machine(**extra):
    """Host name, platform, processor and CPU count, followed by the ``extra`` entries."""
    return {"hostname": platform.node(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), **extra}


def versions(*modules):
    """Python's version, then each module's ``__version__`` under the module's name."""
    return {"python": platform.python_version(), **{m.__name__: m.__version__ for m in modules}}


def lm_record(argv=None):
    """The record of ``reber.py`` and ``char_lm.py`` (without ``seconds``, which the caller adds):
    command (``sys.argv`` when ``argv`` is None), git commit and whether the tree had changes, date, machine."""
    import numpy as np
    import torch

    argv = sys.argv if argv is None else argv
    return {"command": command(argv, interpreter=Path(sys.executable).name),
            "git_commit": git_commit(),
            "git_dirty": git_dirty(),
            "date_utc": utc_now(),
            "machine": machine(torch_threads=torch.get_num_threads(), **versions(torch, np))}


def lm_command_line(argv, doc, full, tiny, out, tiny_help, *, override):
    """The command line of ``reber.py`` and ``char_lm.py``, parsed from ``argv`` (``sys.argv[1:]`` when None).

    ``--tiny`` (the test's configuration), ``--out`` (default ``out``), ``--threads`` (torch CPU threads),
    ``--NAME`` for ``override = (NAME, help)`` (an integer that replaces that entry of the configuration) and
    ``--no-progress``; the description is the first line of the script's ``doc``.
    Returns ``(args, config)``: config is a copy of ``tiny`` or ``full`` with ``--NAME`` applied."""
    name, name_help = override
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help=tiny_help)
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: shared machine)")
    parser.add_argument(f"--{name}", type=int, help=name_help)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    config = dict(tiny if args.tiny else full)
    if getattr(args, name) is not None:
        config[name] = getattr(args, name)
    return args, config


def lm_run(run, config, args, script, argv=None, ensure_ascii=True):
    """Run ``run(config, progress=...)`` on ``args.threads`` torch threads and write its result to ``args.out``
    as JSON, with the :func:`lm_record` taken before the run (``script`` and ``argv`` make its command) and
    the seconds the run took under ``"provenance"``. Returns the result."""
    import torch

    torch.set_num_threads(args.threads)
    record = lm_record(None if argv is None else [script, *argv])  # the commit the run starts from
    t0 = time.perf_counter()
    result = run(config, progress=not args.no_progress)
    result["provenance"] = {**record, "seconds": round(time.perf_counter() - t0, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=ensure_ascii) + "\n")
    return result
