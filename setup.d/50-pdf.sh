#!/usr/bin/env bash
# TeX Live for the PDF of the book (`make pdf`; Jupyter Book's pdflatex builder, run with xelatex so
# that the glossary's Chinese renders with the Noto CJK font of 20-browser.sh): Debian's packages,
# about 160 MB to download and 1.5 minutes to install. Safe to run twice: installs only what is
# missing. Without apt or root it warns and lets the setup go on (only the PDF needs it).
set -euo pipefail
source "$(dirname "$0")/lib/apt.sh"
apt_install pdf "make pdf (and the PDF test in tests/test_publish.py)" "about 160 MB" \
    texlive-xetex texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended \
    texlive-lang-chinese latexmk xindy fonts-freefont-otf fonts-noto-cjk
