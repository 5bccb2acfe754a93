#!/bin/bash
# Test the companion patches in contrib/ against the released projects.
#
# Usage: test-patches.sh [all|os-brick|nova]
#
# For each project: download its sdist from PyPI, commit it as a baseline in
# a scratch git tree, apply the patches with `git am`, create a virtualenv
# with the project's requirements and test requirements, and run:
#
#   os-brick  its whole unit test suite (a few seconds), then
#             apply-os-brick.sh twice on an installed os-brick 7.1.1
#             (apply, then "already applied");
#   nova      nova.tests.unit.virt.libvirt.volume (test_lustre and every
#             other libvirt volume driver) and the libvirt driver tests of
#             volume attachment and assisted volume snapshots; with
#             NOVA_TESTS=libvirt, all of nova.tests.unit.virt.libvirt
#             (2,432 tests, about 2 more minutes on 2 cores).
#
# The last line is "test-patches: N passed, N failed, N skipped"; the
# apply-os-brick.sh check counts as one test.
#
# Environment:
#   PYTHON            interpreter for the virtualenvs (python3)
#   OS_BRICK_SPEC     os-brick==7.1.1
#   NOVA_SPEC         nova>=34,<35 (the newest 34.x)
#   NOVA_TESTS        volume (default) or libvirt, see above
#   UPPER_CONSTRAINTS a pip constraints file, e.g. OpenStack's
#                     upper-constraints.txt for the matching release
#   WORKDIR           scratch directory, kept (default: a new temporary
#                     one, removed on success unless KEEP_WORKDIR=1)

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python3}
OS_BRICK_SPEC=${OS_BRICK_SPEC:-os-brick==7.1.1}
NOVA_SPEC=${NOVA_SPEC:-nova>=34,<35}
NOVA_TESTS=${NOVA_TESTS:-volume}
NOVA_DRIVER_TESTS='test_driver\.(LibvirtVolumeSnapshotTestCase|LibvirtConnTestCase\..*(volume_driver|attach_volume|detach_volume|connect_volume|volume_config))'
GIT="git -c user.name=test-patches -c user.email=test-patches@localhost"

target=${1:-all}
case $target in
    all|os-brick|nova) ;;
    *) echo "usage: $0 [all|os-brick|nova]" >&2; exit 1 ;;
esac

if [ -n "${WORKDIR:-}" ]; then
    mkdir -p "$WORKDIR"
    KEEP_WORKDIR=1
else
    WORKDIR=$(mktemp -d /tmp/test-patches.XXXXXX)
fi
WORKDIR=$(cd "$WORKDIR" && pwd)
echo "test-patches: working in $WORKDIR"

runs=0
passed=0
failed=0
skipped=0
status=0

log() {
    echo "test-patches: $*"
}

# prepare NAME SPEC PATCH_DIR: unpack the sdist of SPEC in $WORKDIR/NAME as a
# git tree with a baseline commit, and `git am` PATCH_DIR/*.patch on it.
prepare() {
    local name=$1 spec=$2 patch_dir=$3 sdist
    rm -rf "${WORKDIR:?}/$name" "${WORKDIR:?}/dl-$name"
    "$PYTHON" -m pip download -q --no-deps --no-binary :all: \
        -d "$WORKDIR/dl-$name" "$spec" 2>&1 | grep -v '^WARNING: Location' >&2 || true
    ls "$WORKDIR/dl-$name"/*.tar.gz >/dev/null
    sdist=$(ls "$WORKDIR/dl-$name"/*.tar.gz)
    log "$name: $(basename "$sdist")"
    mkdir "$WORKDIR/$name"
    tar --no-same-owner --strip-components=1 -xzf "$sdist" \
        -C "$WORKDIR/$name"
    (
        cd "$WORKDIR/$name"
        git init -q
        git add -A -f
        $GIT commit -q -m "Baseline $(basename "$sdist")"
        $GIT am -q "$patch_dir"/*.patch
        git log --oneline
    )
}

# venv NAME [EXTRA_REQUIREMENT...]: a virtualenv with the requirements and
# test requirements of $WORKDIR/NAME.
venv() {
    local name=$1 venv=$WORKDIR/venv-$1 out=$WORKDIR/pip-$1.log
    shift
    log "$name: installing requirements into $venv (log: $out)"
    "$PYTHON" -m venv "$venv"
    if ! "$venv/bin/pip" install \
            ${UPPER_CONSTRAINTS:+-c "$UPPER_CONSTRAINTS"} \
            -r "$WORKDIR/$name/requirements.txt" \
            -r "$WORKDIR/$name/test-requirements.txt" "$@" > "$out" 2>&1; then
        tail -n 30 "$out" >&2
        log "$name: pip install failed, see $out"
        exit 1
    fi
}

# run_tests NAME TEST_PATH [FILTER...]: run stestr in $WORKDIR/NAME and add
# its counts to the totals.
run_tests() {
    local name=$1 test_path=$2 out rc=0 n
    shift 2
    runs=$((runs + 1))
    out=$WORKDIR/stestr-$runs-$name.log
    log "$name: stestr --test-path $test_path run $*"
    (
        cd "$WORKDIR/$name"
        "$WORKDIR/venv-$name/bin/python" -m stestr --test-path "$test_path" \
            run --concurrency 2 "$@"
    ) > "$out" 2>&1 || rc=$?
    grep -E '(\.\.\. FAILED|^(FAIL|ERROR):)' "$out" || true
    sed -n '/^Totals$/,/^ - Failed/p' "$out"
    for n in Passed Failed Skipped; do
        declare "count_$n=$(awk -v k=" - $n:" \
            'index($0, k) == 1 {print $3}' "$out" | tail -1)"
    done
    passed=$((passed + ${count_Passed:-0}))
    failed=$((failed + ${count_Failed:-0}))
    skipped=$((skipped + ${count_Skipped:-0}))
    if [ "$rc" -ne 0 ] || [ -z "${count_Passed:-}" ]; then
        log "$name: tests failed (rc=$rc), see $out"
        status=1
    fi
}

test_os_brick() {
    prepare os-brick "$OS_BRICK_SPEC" "$HERE/os-brick"
    venv os-brick
    run_tests os-brick ./os_brick/tests

    # The operator's path: the released package, patched in place. The
    # second run must find every patch applied.
    log "os-brick: apply-os-brick.sh on an installed $OS_BRICK_SPEC"
    "$WORKDIR/venv-os-brick/bin/pip" install --no-deps "$OS_BRICK_SPEC" \
        >> "$WORKDIR/pip-os-brick.log" 2>&1
    local patches=("$HERE"/os-brick/*.patch)
    if (
        cd "$WORKDIR"
        "$HERE/apply-os-brick.sh" "$WORKDIR/venv-os-brick" &&
            "$HERE/apply-os-brick.sh" "$WORKDIR/venv-os-brick" |
                tee "$WORKDIR/apply-again.log" &&
            [ "$(grep -c 'is already applied' "$WORKDIR/apply-again.log")" \
                -eq "${#patches[@]}" ]
    ); then
        passed=$((passed + 1))
    else
        log "os-brick: apply-os-brick.sh failed"
        failed=$((failed + 1))
        status=1
    fi
}

test_nova() {
    prepare nova "$NOVA_SPEC" "$HERE/nova"
    venv nova
    if [ "$NOVA_TESTS" = libvirt ]; then
        run_tests nova ./nova/tests/unit/virt/libvirt
    else
        run_tests nova ./nova/tests/unit/virt/libvirt/volume
        run_tests nova ./nova/tests/unit/virt/libvirt "$NOVA_DRIVER_TESTS"
    fi
}

SECONDS=0
case $target in
    all) test_os_brick; test_nova ;;
    os-brick) test_os_brick ;;
    nova) test_nova ;;
esac
log "took ${SECONDS}s"

if [ "$status" -eq 0 ] && [ -z "${KEEP_WORKDIR:-}" ]; then
    rm -rf "$WORKDIR"
fi
echo "test-patches: $passed passed, $failed failed, $skipped skipped"
exit "$status"
