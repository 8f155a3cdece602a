#!/usr/bin/env bash
# One entry point for people and CI: installs what is missing (Debian 12), configures, builds,
# and runs. Usage:
#   ./dev.sh mnist [ARGS]  build and run the main job: train the MNIST CNN (examples/mnist)
#   ./dev.sh demo          build and run the smallest training loop (examples/linear_regression)
#   ./dev.sh test          build and run the whole test suite (meson test)
#   ./dev.sh test-asan     the suite again under AddressSanitizer + UndefinedBehaviorSanitizer
#   ./dev.sh deps          only install the Debian packages
set -euo pipefail
cd "$(dirname "$0")"

packages=(build-essential meson ninja-build pkg-config libblis-dev check zlib1g-dev gnuplot-nox)

install_deps() {
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# configure DIR [meson options...]: set up DIR once, reconfigure when options change.
configure() {
    local dir=$1
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
}

# Prints meson's totals as the plain line "N passed, M failed" and fails when any test did.
run_tests() {
    local dir=$1
    shift
    local status=0
    meson test -C "$dir" --print-errorlogs "$@" || status=$?
    python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): passed += 1
    elif r == "SKIP": skipped += 1
    else: failed += 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
    return $status
}

case "${1:-}" in
deps)
    install_deps
    ;;
mnist)
    install_deps
    configure build
    ninja -C build >/dev/null
    shift
    ./build/examples/mnist "$@"
    ;;
demo)
    install_deps
    configure build
    ninja -C build >/dev/null
    ./build/examples/linear_regression
    ;;
test)
    install_deps
    configure build -Dwerror=true
    ninja -C build
    run_tests build
    ;;
test-asan)
    install_deps
    configure build-asan -Dwerror=true -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
        -Db_lundef=false -Dc_args=-fno-sanitize-recover=all
    ninja -C build-asan
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run_tests build-asan \
        --timeout-multiplier 4
    ;;
*)
    sed -n '2,9p' "$0"
    exit 2
    ;;
esac
