#!/bin/sh
# sigforge installer: run from the install media on a box with no network. See README-OPERATOR.md on the media and
# docs/install.md. POSIX sh; needs only coreutils (sha256sum, cp, mktemp), tar with gzip, and, for a systemd
# install, useradd, runuser and systemctl. No network is used.
#
#   sh install.sh [--prefix DIR] [--no-systemd] [--port N] [--yes-fingerprint HEX] [--media DIR] [--python PY]
#
# --python PY: install the release into a virtual environment of the site's own Python (3.11 or newer) from the
# media's wheelhouse (hash-locked, no network) instead of the frozen binary; the frozen binary still verifies the media.
#
# Order: copy the media files to a private local directory and check them (SHA256SUMS; parts are joined), unpack the
# release binary from the bundle into a throwaway directory (the bootstrap), show the trust root's fingerprint and
# have the operator confirm it, verify the whole bundle against that root and unpack it (every byte checked), and
# only then install: release + `current` link, config, data dir, trust root, database, toolchains, services, and a
# health check. Nothing is installed before the bundle has been verified.
set -eu
umask 022

PREFIX=/
SYSTEMD=auto
PORT=8470
YES_FP=
PYTHON=
MEDIA=$(cd "$(dirname "$0")" && pwd -P)

die() { echo "install.sh: error: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }
usage() {
  sed -n '6p' "$0" | sed 's/^#  *//'
  exit 2
}

while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || usage; PREFIX=$2; shift 2 ;;
    --no-systemd) SYSTEMD=no; shift ;;
    --port) [ $# -ge 2 ] || usage; PORT=$2; shift 2 ;;
    --yes-fingerprint) [ $# -ge 2 ] || usage; YES_FP=$2; shift 2 ;;
    --media) [ $# -ge 2 ] || usage; MEDIA=$(cd "$2" && pwd -P); shift 2 ;;
    --python) [ $# -ge 2 ] || usage; PYTHON=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "install.sh: unknown option $1" >&2; usage ;;
  esac
done
case $PORT in ''|*[!0-9]*) die "--port needs a number" ;; esac
if [ -n "$PYTHON" ]; then
  "$PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
    die "--python $PYTHON: not a Python 3.11 or newer with venv and ensurepip (Debian: python3-venv)"
fi
mkdir -p "$PREFIX" || die "cannot create the prefix $PREFIX"
PREFIX=$(cd "$PREFIX" && pwd -P)
if [ "$SYSTEMD" = auto ]; then
  [ "$(id -u)" = 0 ] || die "a systemd install runs as root; use --prefix DIR --no-systemd for an unprivileged install"
  [ -d /run/systemd/system ] && command -v systemctl >/dev/null || die "systemd does not run this machine; use --no-systemd"
  SYSTEMD=yes
fi
ROOT=$PREFIX/opt/sigforge
[ "$PREFIX" = / ] && ROOT=/opt/sigforge
ETC=${PREFIX%/}/etc/sigforge
DATA=${PREFIX%/}/var/lib/sigforge
CONFIG=$ETC/sigforge.toml

if [ -e "$ROOT/current" ] || [ -L "$ROOT/current" ]; then
  die "sigforge is installed already in $ROOT ($(readlink "$ROOT/current")); to change releases use
  $ROOT/current/bin/sigforge update apply <release bundle>"
fi
[ -f "$MEDIA/SHA256SUMS" ] || die "$MEDIA holds no SHA256SUMS: not sigforge install media"

# -- 1. local copy of the media, checked ----------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/sigforge-install.XXXXXX") || die "cannot create a temporary directory"
chmod 700 "$WORK"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir "$WORK/in"
say "copying the media to $WORK and checking it"
awk '{ print $2 }' "$MEDIA/SHA256SUMS" | while IFS= read -r name; do
  case $name in */*|.*|'') die "SHA256SUMS names an unexpected file: $name" ;; esac
  cp "$MEDIA/$name" "$WORK/in/$name" || exit 1
done
cp "$MEDIA/SHA256SUMS" "$WORK/in/SHA256SUMS"
(cd "$WORK/in" && sha256sum --check --quiet --strict SHA256SUMS) ||
  die "the media is damaged: a file does not match SHA256SUMS (nothing was installed)"
PARTS=$(cd "$WORK/in" && ls | grep '\.media\.part[0-9][0-9]$' || true)
if [ -n "$PARTS" ]; then
  BUNDLE_NAME=$(echo "$PARTS" | head -n 1 | sed 's/\.part[0-9][0-9]$//')
  [ "$(echo "$PARTS" | sed 's/\.part[0-9][0-9]$//' | sort -u)" = "$BUNDLE_NAME" ] || die "parts of several bundles"
  expected=0
  for part in $PARTS; do  # ls sorts them; the numbers must run 00, 01, ... without a gap
    [ "$part" = "$(printf '%s.part%02d' "$BUNDLE_NAME" "$expected")" ] || die "part $expected of $BUNDLE_NAME is missing"
    expected=$((expected + 1))
  done
  (cd "$WORK/in" && cat $PARTS > "$BUNDLE_NAME" && rm -f $PARTS)
  say "joined $expected parts into $BUNDLE_NAME"
else
  BUNDLE_NAME=$(cd "$WORK/in" && ls | grep '^sigforge-.*\.media$' || true)
fi
[ -n "$BUNDLE_NAME" ] && [ "$(echo "$BUNDLE_NAME" | wc -l)" = 1 ] || die "the media must hold exactly one sigforge-*.media bundle"
VERSION=$(echo "$BUNDLE_NAME" | sed -n 's/^sigforge-\([0-9]*\.[0-9]*\.[0-9]*\)\.media$/\1/p')
[ -n "$VERSION" ] || die "cannot read the version from $BUNDLE_NAME"
BUNDLE=$WORK/in/$BUNDLE_NAME
[ -f "$WORK/in/root.json" ] || die "the media holds no root.json"

# -- 2. bootstrap: the release's own binary, unpacked (not yet verified) into a throwaway directory ------------------
mkdir "$WORK/boot" "$WORK/home"
: > "$WORK/empty.toml"
tar -xzf "$BUNDLE" -C "$WORK/boot" payload/release 2>/dev/null || die "cannot unpack the release from $BUNDLE_NAME"
BOOT=$WORK/boot/payload/release/bin/sigforge
[ -x "$BOOT" ] || die "the bundle holds no release/bin/sigforge"
boot() { (cd "$WORK" && HOME=$WORK/home TMPDIR=$WORK "$BOOT" --config "$WORK/empty.toml" "$@"); }

# -- 3. the trust root: the operator compares its fingerprint with the printed one -----------------------------------
FP=$(boot keys show "$WORK/in/root.json" | sed -n 's/^fingerprint: //p')
[ -n "$FP" ] || die "cannot read the trust root on the media"
echo
echo "  Trust root fingerprint:  $FP"
echo "  Media bundle sha256:     $(sha256sum "$BUNDLE" | cut -d' ' -f1)"
echo
norm() { echo "$1" | tr -d ' :-' | tr 'A-F' 'a-f'; }
if [ -n "$YES_FP" ]; then
  [ "$(norm "$YES_FP")" = "$(norm "$FP")" ] ||
    die "the trust root's fingerprint is not the one given with --yes-fingerprint: refusing (nothing was installed)"
  say "fingerprint matches --yes-fingerprint"
else
  [ -r /dev/tty ] || die "no terminal to confirm the fingerprint: give --yes-fingerprint HEX"
  printf 'Compare it with the fingerprint printed on the delivery sheet. Type "yes" if they are the same: ' > /dev/tty
  read -r answer < /dev/tty || answer=
  [ "$answer" = yes ] || die "fingerprint not confirmed: nothing was installed"
fi

# -- 4. verify the whole bundle against that root, and unpack it (every byte checked again) -------------------------
boot keys install "$WORK/in/root.json" --trust "$WORK/trust" --fingerprint "$FP" >/dev/null ||
  die "the trust root on the media was refused"
boot media unpack "$BUNDLE" --to "$WORK/media" --trust "$WORK/trust" ||
  die "the media bundle was REJECTED: nothing was installed"
rm -rf "$WORK/boot"
NEW=$WORK/media/release
got=$("$NEW/bin/sigforge" --version 2>/dev/null || true)
[ "$got" = "sigforge $VERSION" ] || die "the release says '$got', the media is $VERSION"

# -- 5. install ------------------------------------------------------------------------------------------------------
say "installing sigforge $VERSION into $ROOT/releases/$VERSION"
mkdir -p "$ROOT/releases"
[ ! -e "$ROOT/releases/$VERSION" ] || die "$ROOT/releases/$VERSION exists already (a half-finished install?); remove it"
if [ -n "$PYTHON" ]; then
  # A virtual environment is not relocatable, so it is built in place; a failure removes it again.
  WH=$WORK/media/wheelhouse
  [ -f "$WH/requirements.lock" ] && [ -f "$WH/sigforge.lock" ] || die "--python: the media holds no wheelhouse"
  REL=$ROOT/releases/$VERSION
  say "building the release from the wheelhouse with $("$PYTHON" --version 2>&1) (no network)"
  { "$PYTHON" -m venv "$REL/venv" &&
    "$REL/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index --find-links "$WH" \
      --require-hashes -r "$WH/requirements.lock" -r "$WH/sigforge.lock"; } ||
    { rm -rf "$REL"; die "installing from the wheelhouse failed (is it for this Python and machine?)"; }
  mkdir -p "$REL/bin"
  printf '#!/bin/sh\n# sigforge %s in a virtual environment of %s (install.sh --python)\n%s\n' "$VERSION" "$PYTHON" \
    'exec "$(dirname "$0")/../venv/bin/sigforge" "$@"' > "$REL/bin/sigforge"
  chmod 755 "$REL/bin/sigforge"
  got=$("$REL/bin/sigforge" --version 2>/dev/null || true)
  [ "$got" = "sigforge $VERSION" ] || { rm -rf "$REL"; die "the wheelhouse's sigforge says '$got', the media is $VERSION"; }
else
  rm -rf "$ROOT/releases/$VERSION.staging"
  cp -a "$NEW" "$ROOT/releases/$VERSION.staging"
  mv "$ROOT/releases/$VERSION.staging" "$ROOT/releases/$VERSION"
fi
ln -s "releases/$VERSION" "$ROOT/.current.tmp" && mv "$ROOT/.current.tmp" "$ROOT/current"
mkdir -p "$ROOT/share"
rm -rf "$ROOT/share/docs" "$ROOT/share/units"
cp -a "$WORK/media/docs" "$ROOT/share/docs"
cp -a "$WORK/media/units" "$ROOT/share/units"
[ ! -d "$WORK/media/wheelhouse" ] || { rm -rf "$ROOT/share/wheelhouse"; cp -a "$WORK/media/wheelhouse" "$ROOT/share/wheelhouse"; }

mkdir -p "$ETC" "$DATA"
if [ -e "$CONFIG" ]; then
  say "keeping the existing $CONFIG"
else
  sed -e "s|^data_dir = .*|data_dir = \"$DATA\"|" -e "s|^port = .*|port = $PORT|" \
    "$WORK/media/config/sigforge.toml" > "$CONFIG.tmp"
  chmod 644 "$CONFIG.tmp" && mv "$CONFIG.tmp" "$CONFIG"
fi

AS=
if [ "$SYSTEMD" = yes ]; then
  if ! id sigforge >/dev/null 2>&1; then
    NOLOGIN=$(command -v nologin || echo /usr/sbin/nologin)
    useradd --system --home-dir "$DATA" --no-create-home --shell "$NOLOGIN" --user-group sigforge ||
      die "cannot create the system user sigforge"
    say "created the system user sigforge"
  fi
  chown -R sigforge:sigforge "$DATA"
  chmod 750 "$DATA"
  AS="runuser -u sigforge --"
fi
SF="$ROOT/current/bin/sigforge --config $CONFIG"
run() { (cd "$DATA" && $AS env HOME="$DATA" $SF "$@"); }

run keys install "$WORK/in/root.json" --fingerprint "$FP" >/dev/null || die "installing the trust root failed"
say "trust root installed ($FP)"
run db upgrade || die "the database migration failed"
# The first admin, with a one-time password shown once below (only if no admin exists: a re-run creates nobody).
ADMIN=$(run user bootstrap-admin) || die "creating the first admin failed"
for tc in "$WORK/media/toolchains/"*.bundle; do
  [ -e "$tc" ] || continue
  run toolchain import "$tc" || die "importing $(basename "$tc") failed"
done

# -- 6. services and the health check ---------------------------------------------------------------------------------
if [ "$SYSTEMD" = yes ]; then
  for unit in sigforge.service sigforge-worker.service sigforge-up.service sigforge-update.service sigforge-update.path; do
    sed -e "s|/opt/sigforge|$ROOT|g" -e "s|/etc/sigforge|$ETC|g" -e "s|/var/lib/sigforge|$DATA|g" \
      "$WORK/media/units/$unit" > "/etc/systemd/system/$unit"
    chmod 644 "/etc/systemd/system/$unit"
  done
  systemctl daemon-reload
  systemctl enable --now sigforge-worker.service sigforge.service || die "starting the units failed (journalctl -u sigforge)"
  # Updates requested from the console (POST /api/v1/updates) are applied by sigforge-update.service, as root.
  systemctl enable --now sigforge-update.path || die "enabling sigforge-update.path failed"
  MODE=systemd
else
  run service start --prefix "$PREFIX" --services pidfile >/dev/null || die "starting sigforge failed ($DATA/logs/sigforge-up.log)"
  MODE=pidfile
fi
run service status --prefix "$PREFIX" --services "$MODE" --wait-ready "${SIGFORGE_INSTALL_READY_TIMEOUT:-120}" ||
  die "sigforge did not become ready (logs: $([ "$MODE" = systemd ] && echo 'journalctl -u sigforge' || echo "$DATA/logs/sigforge-up.log"))"

cat <<EOF

sigforge $VERSION is installed and ready.
  release:   $ROOT/releases/$VERSION  (current -> releases/$VERSION)
  config:    $CONFIG
  data:      $DATA
  services:  $MODE$([ "$MODE" = pidfile ] && echo " (stop: $SF service stop --prefix $PREFIX --services pidfile)")
  web:       http://127.0.0.1:$PORT/   (docs: $ROOT/share/docs)
  toolchains: $(run toolchain list | tail -n +2 | awk '{ printf "%s%s %s", sep, $1, $3; sep=", " }')
  first admin (admin actions need a sign-in: POST /api/v1/session; write this down now, it is not shown again):
$(echo "$ADMIN" | sed 's/^/    /')
  Updates: $ROOT/current/bin/sigforge update apply <release bundle>, or upload it in the console (Updates, admins)
EOF
