#!/usr/bin/env bash
# Headless Chromium (Debian's own build) for tests/test_browser.py, and a CJK font so that the
# bilingual glossary renders in it. Safe to run twice: installs only what is missing, and runs
# `apt-get update` only when the package lists cannot provide it.
set -euo pipefail

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
    echo "browser: need root (or sudo) to install ${missing[*]} with apt-get" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
install() { "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; }
echo "browser: installing ${missing[*]}"
if ! install; then
    "${SUDO[@]}" apt-get update -q
    install
fi
