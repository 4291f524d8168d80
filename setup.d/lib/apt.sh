# Shared by the setup.d steps that install Debian packages (sourced, not run as a step):
#   apt_install NAME "WHO NEEDS IT" "SIZE" PACKAGE...
# installs what is missing of PACKAGE... with apt-get (as root, or through sudo), running
# `apt-get update` only when the package lists cannot provide them. Where it cannot install (no
# dpkg-query/apt-get: not Debian or Ubuntu; or no root and no sudo) it prints a warning saying what
# will not work, and returns 0: these packages serve tests or the PDF, not the course itself.
apt_install() {
    local name=$1 needed_by=$2 size=$3
    shift 3
    local packages=("$@") missing=() p
    if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
        echo "$name: WARNING: no dpkg-query/apt-get here (not Debian or Ubuntu): install ${packages[*]}" \
             "or their equivalents yourself; until then $needed_by will not work." >&2
        return 0
    fi
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "$name: ${packages[*]} already installed"
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "$name: WARNING: need root (or sudo) to install ${missing[*]} with apt-get; skipped," \
                 "so $needed_by will not work until they are installed." >&2
            return 0
        fi
    fi
    echo "$name: installing ${missing[*]} with apt-get ($size to download; apt shows its progress)"
    if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
        echo "$name: apt-get update, then again"
        "${sudo[@]}" apt-get update
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
    fi
}
