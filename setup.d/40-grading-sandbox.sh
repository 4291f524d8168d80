#!/usr/bin/env bash
# Grading a class safely (docs/grading.md): bubblewrap for the sandboxed kernel, util-linux's
# setpriv/prlimit, and PostgreSQL (a shared gradebook for parallel grading; the tests start a private
# server with initdb/pg_ctl). Then installs the `rnn-sandbox` kernel spec into the venv.
# Safe to run twice: apt-get runs only for what is missing, `apt-get update` only if that fails.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(bubblewrap util-linux postgresql)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); elif command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
        echo "grading: need root (or sudo) to install ${missing[*]} with apt-get" >&2; exit 1; fi
    export DEBIAN_FRONTEND=noninteractive
    install() { "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; }
    echo "grading: installing ${missing[*]}"
    if ! install; then "${SUDO[@]}" apt-get update -q; install; fi
else
    echo "grading: ${packages[*]} already installed"
fi
# Debian's postgresql package starts a cluster service; the course does not need it running.
# The grader also needs a writable cgroup hierarchy (v2 with memory+pids, or v1) to limit each kernel as
# a whole; without one it refuses to grade (COURSEGRADE_NO_CGROUP=1 goes on with per-process limits).
[ -d /sys/fs/cgroup ] || echo "grading: WARNING: no /sys/fs/cgroup: grading will refuse (see docs/grading.md)" >&2
# The kernel spec starts the launcher isolated (python -I) by its absolute path: install it again
# whenever the course folder moves.
.venv/bin/python -m coursegrade --install-kernel
