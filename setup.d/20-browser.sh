#!/usr/bin/env bash
# Headless Chromium (Debian's own build) for tests/test_browser.py, and a CJK font so that the
# bilingual glossary renders in it (and in the PDF). Safe to run twice: installs only what is missing.
# Only the instructor's setup runs this (students follow README.md's "For students"); without apt or
# root it warns and lets the setup go on (tests/test_browser.py then says what is missing).
set -euo pipefail
source "$(dirname "$0")/lib/apt.sh"
apt_install browser "tests/test_browser.py" "about 180 MB" chromium chromium-driver fonts-noto-cjk
