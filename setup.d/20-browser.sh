#!/usr/bin/env bash
# Headless Chromium (Debian's own build) for tests/test_browser.py, and a CJK font so that the
# bilingual glossary renders in it. Safe to run twice: installs only what is missing, and runs
# `apt-get update` only when the package lists cannot provide it.
set -euo pipefail

# Only the instructor's setup runs this (students follow README.md's "For students"). Where it cannot
# install (no Debian/apt-get, or no root), it says so and lets the rest of the setup go on: only
# tests/test_browser.py needs the browser, and it says what is missing when it runs.
skip() {
    echo "browser: WARNING: $1" >&2
    echo "browser: skipped; tests/test_browser.py will fail until /usr/bin/chromium exists (the rest works)." >&2
    exit 0
}
command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
    || skip "no dpkg-query/apt-get here (not Debian or Ubuntu): install Chromium and a CJK font yourself."

packages=(chromium chromium-driver fonts-noto-cjk)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "browser: ${packages[*]} already installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    skip "need root (or sudo) to install ${missing[*]} with apt-get."
fi

export DEBIAN_FRONTEND=noninteractive
install() { "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; }
echo "browser: installing ${missing[*]} with apt-get (a download of about 180 MB; apt shows its progress)"
if ! install; then
    echo "browser: apt-get update, then again"
    "${SUDO[@]}" apt-get update
    install
fi
