#!/bin/bash
# Apply the Lustre os-brick patches (contrib/os-brick/*.patch) to an
# installed os-brick 7.1.x, leaving out tests and release notes.
#
# Usage: apply-os-brick.sh VENV_OR_SITE_PACKAGES
#
#   VENV_OR_SITE_PACKAGES  a virtualenv (a directory with bin/python), or the
#                          site-packages directory that holds os_brick/
#                          (then PYTHON, default python3, is the interpreter
#                          used to check it).
#
# Safe to run again: a patch that is already applied is skipped. Nothing is
# changed unless every patch either applies cleanly or is already applied.
# Exit status: 0 done or nothing to do, 1 usage or patch error, 2 os-brick
# missing or not 7.1.x.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PATCH_DIR=$HERE/os-brick
SUPPORTED_SERIES=7.1

die() {
    local rc=$1
    shift
    echo "apply-os-brick: $*" >&2
    exit "$rc"
}

[ $# -eq 1 ] || die 1 "usage: $0 VENV_OR_SITE_PACKAGES"
command -v patch >/dev/null || die 1 "the 'patch' command is required"

target=$1
if [ -x "$target/bin/python" ]; then
    python=$target/bin/python
    site=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    pythonpath=${PYTHONPATH:-}
elif [ -d "$target/os_brick" ]; then
    python=${PYTHON:-python3}
    site=$(cd "$target" && pwd)
    pythonpath=$site${PYTHONPATH:+:$PYTHONPATH}
else
    die 2 "$target is neither a virtualenv nor a site-packages directory with os_brick/"
fi
[ -f "$site/os_brick/__init__.py" ] || die 2 "os-brick is not installed in $site"

# The version of the distribution that owns $site/os_brick.
version=$(PYTHONPATH=$pythonpath "$python" - "$site" <<'EOF'
import importlib.metadata
import os
import sys

site = os.path.realpath(sys.argv[1])
for dist in importlib.metadata.distributions(path=[site]):
    if (dist.metadata['Name'] or '').lower().replace('_', '-') == 'os-brick':
        print(dist.version)
        break
EOF
)
[ -n "$version" ] || die 2 "cannot tell the os-brick version installed in $site"
case $version in
    "$SUPPORTED_SERIES".*) ;;
    *) die 2 "os-brick $version is installed in $site; these patches are" \
             "for os-brick $SUPPORTED_SERIES.x (made against 7.1.1)" ;;
esac

# Print the parts of a git patch that change files installed with the
# package: drop os_brick/tests/ and releasenotes/.
installed_part() {
    awk '
        /^diff --git / {
            keep = ($3 !~ /^a\/(os_brick\/tests|releasenotes)\//)
        }
        /^-- $/ { keep = 0 }
        keep
    ' "$1"
}

shopt -s nullglob
patches=("$PATCH_DIR"/*.patch)
[ ${#patches[@]} -gt 0 ] || die 1 "no patches in $PATCH_DIR"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Try the series on a copy first, so that nothing is changed unless every
# patch is either applied already or applies cleanly after the ones before.
mkdir "$work/copy"
cp -a "$site/os_brick" "$work/copy/"
to_apply=()
for p in "${patches[@]}"; do
    name=$(basename "$p")
    installed_part "$p" > "$work/$name"
    if patch -p1 -d "$work/copy" -R -f --dry-run -s < "$work/$name" \
            >/dev/null 2>&1; then
        echo "apply-os-brick: $name is already applied"
    elif patch -p1 -d "$work/copy" -N -t -s -r - < "$work/$name" \
            > "$work/$name.out" 2>&1; then
        to_apply+=("$name")
    else
        cat "$work/$name.out" >&2
        die 1 "$name does not apply to os-brick $version in $site" \
              "(changed by hand, or partly applied?); nothing was changed"
    fi
done

for name in ${to_apply[@]+"${to_apply[@]}"}; do
    patch -p1 -d "$site" -N -t -s --no-backup-if-mismatch < "$work/$name"
    echo "apply-os-brick: applied $name to os-brick $version in $site"
done

PYTHONPATH=$pythonpath "$python" -W ignore - <<'EOF' || die 1 "os-brick does not handle Lustre after patching"
from os_brick.initiator import connector
from os_brick.remotefs import remotefs

client = remotefs.RemoteFsClient('lustre', 'sudo',
                                 lustre_mount_point_base='/var/lib/cinder/mnt',
                                 lustre_mount_options='flock')
conn = connector.InitiatorConnector.factory(
    'lustre', 'sudo', conn={'mount_point_base': '/var/lib/cinder/mnt'})
assert conn.get_search_path() == '/var/lib/cinder/mnt'
print('apply-os-brick: ok, 10.0.0.1@tcp:/lfs01 mounts at %s'
      % client.get_mount_point('10.0.0.1@tcp:/lfs01'))
EOF
