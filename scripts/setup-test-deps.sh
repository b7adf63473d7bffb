#!/usr/bin/env bash
# setup-test-deps.sh — install REAL, independently written Varlink/userdb/NSS
# clients on a Debian 12 (bookworm) host where systemd is NOT PID 1, so that a
# Rust reimplementation of systemd-machined's Varlink API, a userdb Varlink
# service and an NSS hosts module can be tested against them.
#
# Idempotent: every step checks whether its result is already there.
# Run as root.  Needs only the Debian / PyPI / crates.io registries.
#
# What it installs
#   * debootstrap (host, bookworm package)
#   * tini (host, bookworm package): what `cargo bench -p berth-supervisor` compares with
#   * /opt/trixie: Debian 13 "trixie" minbase chroot with systemd 257:
#       systemd (varlinkctl, userdbctl), systemd-container (machinectl,
#       systemd-nspawn, systemd-machined), systemd-userdbd, libnss-mymachines,
#       libnss-systemd, dbus
#     (tests/tests/pid1.rs boots it as a container with its systemd-nspawn, on an overlay)
#     trixie is ONLY used inside the chroot; it is never added to the host's
#     apt sources (that would upgrade the host).
#   * /usr/local/bin/t257 — runs a binary from /opt/trixie directly on the host
#     with the chroot's dynamic loader + libraries (no chroot, no bind mounts,
#     sees the host's /run).  Wrappers built on it:
#       varlinkctl (only if the host has none), varlinkctl-257, userdbctl-257
#   * host: systemd-userdbd + libnss-systemd (bookworm, systemd 252; this
#     pulls a 252.x point-release upgrade of the host's systemd packages)
#   * host: gcc, libc6-dev, binutils, python3 (the NSS module's tests compile a
#     C driver, run nm/objdump on the module and resolve names from python)
#   * /opt/varlink-py: python venv with PyPI `varlink` (server library + CLI:
#       /opt/varlink-py/bin/python -m varlink.cli ...)
#   * ~/.cargo/bin/varlink: crates.io `varlink-cli` (Rust CLI)
#   * ~/.cargo/bin/cargo-nextest, ~/.cargo/bin/cargo-fuzz and the nightly toolchain (the fuzz
#     targets of fuzz/, run by scripts/fuzz)
#
# Adapted from the team kit's tools/real-clients-setup.sh; Berth's tests need all of it.
set -euo pipefail

TRIXIE=/opt/trixie
MIRROR=http://deb.debian.org/debian
VENV=/opt/varlink-py
export DEBIAN_FRONTEND=noninteractive

log() { printf '\n=== %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

# Safety: never let trixie into the host's apt sources.
if grep -rqsE '^[^#]*\b(trixie|testing)\b' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; then
    echo "refusing: host apt sources mention trixie/testing" >&2
    exit 1
fi

# ---------------------------------------------------------------------------
log "1. host packages: debootstrap, systemd-userdbd, libnss-systemd, C toolchain, python3, tini"
# apt-get update once (apt-cache needs it too); cheap when lists are fresh.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
    apt-get update -q
fi
need=()
for p in debootstrap systemd-userdbd libnss-systemd iproute2 gcc libc6-dev binutils python3 tini; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    # systemd-userdbd depends on the exact systemd version: this may upgrade
    # systemd/libsystemd0/libnss-systemd to the newest bookworm point release.
    apt-get install -y -q "${need[@]}"
fi
# nss-systemd must be in the passwd/group lines (Debian's default already has
# "files systemd" there; only add it if missing, keep a backup).
if ! grep -qE '^passwd:.*\bsystemd\b' /etc/nsswitch.conf || ! grep -qE '^group:.*\bsystemd\b' /etc/nsswitch.conf; then
    cp -n /etc/nsswitch.conf /etc/nsswitch.conf.real-clients.bak
    sed -i -E '/^(passwd|group):/{/\bsystemd\b/!s/$/ systemd/}' /etc/nsswitch.conf
    echo "added 'systemd' to passwd/group in /etc/nsswitch.conf (backup: /etc/nsswitch.conf.real-clients.bak)"
fi

# ---------------------------------------------------------------------------
log "2. trixie chroot at $TRIXIE (systemd 257)"
# bookworm's debootstrap knows trixie (scripts/trixie -> sid) and
# debian-archive-keyring 2023.3+deb12u2 has the trixie keys.
# Took ~30 s on the 2-core sandbox (265 MB).
if [ ! -x "$TRIXIE/usr/bin/varlinkctl" ]; then
    # a half-finished earlier run leaves debootstrap/ behind: start over
    if [ -d "$TRIXIE" ] && [ ! -x "$TRIXIE/usr/bin/varlinkctl" ]; then
        if findmnt -rn -o TARGET | grep -q "^$TRIXIE/"; then
            echo "$TRIXIE has mounts below it; unmount first" >&2; exit 1
        fi
        rm -rf "$TRIXIE"
    fi
    time debootstrap --variant=minbase \
        --include=systemd,systemd-container,systemd-userdbd,libnss-mymachines,libnss-systemd,dbus \
        trixie "$TRIXIE" "$MIRROR"
fi
chroot "$TRIXIE" varlinkctl --version | head -1
chroot "$TRIXIE" userdbctl --version | head -1
# chroot's nsswitch.conf (trixie default): passwd/group "files systemd",
# hosts "files mymachines dns" — nothing to change.

# ---------------------------------------------------------------------------
log "3. /usr/local/bin/t257 + wrappers (run trixie binaries on the host)"
cat > /usr/local/bin/t257 <<EOF
#!/bin/sh
# Run a binary from the trixie chroot directly on the host, using the chroot's
# dynamic loader and libraries (host glibc 2.36 is too old for trixie binaries).
# Example: t257 $TRIXIE/usr/bin/varlinkctl info /run/some.sock
T=$TRIXIE
exec "\$T/usr/lib64/ld-linux-x86-64.so.2" \\
    --library-path "\$T/usr/lib/x86_64-linux-gnu/systemd:\$T/usr/lib/x86_64-linux-gnu" "\$@"
EOF
chmod 755 /usr/local/bin/t257
for tool in varlinkctl userdbctl; do
    printf '#!/bin/sh\n# systemd 257 %s from %s, run on the host via t257\nexec /usr/local/bin/t257 %s/usr/bin/%s "$@"\n' \
        "$tool" "$TRIXIE" "$TRIXIE" "$tool" > "/usr/local/bin/$tool-257"
    chmod 755 "/usr/local/bin/$tool-257"
done
# The bookworm host has no varlinkctl at all (it appeared in systemd 255).
if ! command -v varlinkctl >/dev/null 2>&1 || [ "$(command -v varlinkctl)" = /usr/local/bin/varlinkctl ]; then
    ln -sf varlinkctl-257 /usr/local/bin/varlinkctl
fi
varlinkctl-257 --version | head -1
userdbctl-257 --version | head -1

# ---------------------------------------------------------------------------
log "4. python varlink (PyPI) in $VENV"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || { apt-get install -y -q python3-venv && /usr/bin/python3 -m venv "$VENV"; }
fi
"$VENV/bin/python" -c 'import varlink' 2>/dev/null || "$VENV/bin/pip" install -q varlink
"$VENV/bin/pip" show varlink | sed -n 's/^Version: /python varlink /p'

# ---------------------------------------------------------------------------
log "5. Rust varlink-cli (crates.io) -> ~/.cargo/bin/varlink"
# cargo install takes ~35 s on the 2-core sandbox.
export PATH="$HOME/.cargo/bin:$PATH"
command -v varlink >/dev/null 2>&1 || cargo install varlink-cli
varlink --version

# ---------------------------------------------------------------------------
log "6. cargo-nextest (the test runner)"
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest

# ---------------------------------------------------------------------------
log "7. cargo-fuzz and the nightly toolchain (scripts/fuzz; only fuzz/ builds with nightly)"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
cargo +nightly fuzz --version

log "done"
