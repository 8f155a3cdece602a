#!/bin/bash
# compare.sh: every example of examples/ against its PyTorch twin in examples/pytorch/, on the
# same machine with the same recipe, as a Markdown table for the README's example table.
#
#   examples/pytorch/compare.sh [--build DIR] [--threads N] [--cifar-models LIST]
#                               [--cifar-epochs N] [--log DIR] [EXAMPLE...]
#
# EXAMPLE: mnist lenet5 mytorch cifar bbox logreg mlp_search autoencoder lstm custom_layer
# linear_regression (default: all). Builds nothing: the C programs come from DIR/examples
# (default build/ in the source tree; `ninja -C DIR` first). The twins run with Debian's
# python3-torch and python3-numpy (/usr/bin/python3).
#
# Each example runs once with its default options on each side, the two runs back to back; the
# side that goes first alternates from one example to the next. Both sides get the same thread
# count (default 1, as the README's figures): OMP_NUM_THREADS=N for the C programs (the
# library's default) and --threads N for the scripts. The cifar example runs once per model of
# --cifar-models (default: all five, as the README describes it) with its defaults: 2 epochs on
# the generated set; --cifar-epochs N changes the epochs on both sides.
#
# Times: mnist, lenet5, mytorch and cifar print their own (the wall time from before the data
# are loaded to after the last evaluation); for the other C programs, which print none, the
# whole process is timed, and their twins print the wall time from the start of main (after
# `import torch`, so the interpreter's start-up is not counted). The ratio is PyTorch's time
# over tapegrad's: above 1, tapegrad is faster. Raw outputs are kept in the log folder (default
# a new folder in /tmp). The whole table takes about 10 minutes on 2 cores.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
here="$src/examples/pytorch"
build="$src/build"
threads=1
cifar_models="alexnet vgg11 googlenet resnet densenet"
cifar_epochs=""
log=""
examples=()
all=(mnist lenet5 mytorch cifar bbox logreg mlp_search autoencoder lstm custom_layer
     linear_regression)
while [ $# -gt 0 ]; do
    case "$1" in
        --build) build="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --cifar-models) cifar_models="${2//,/ }"; shift 2 ;;
        --cifar-epochs) cifar_epochs="$2"; shift 2 ;;
        --log) log="$2"; shift 2 ;;
        -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
        *)
            [[ " ${all[*]} " == *" $1 "* ]] ||
                { echo "compare.sh: unknown example $1" >&2; exit 2; }
            examples+=("$1"); shift ;;
    esac
done
[ ${#examples[@]} -gt 0 ] || examples=("${all[@]}")
build=$(cd "$build" 2>/dev/null && pwd) || { echo "compare.sh: no build folder" >&2; exit 2; }
python=/usr/bin/python3
"$python" -c "import torch, numpy" 2>/dev/null || {
    echo "compare.sh: $python cannot import torch and numpy (Debian: python3-torch," \
         "python3-numpy)" >&2
    exit 2
}
[ -x "$build/examples/mnist" ] || {
    echo "compare.sh: no C examples in $build/examples (build first, or pass --build DIR)" >&2
    exit 2
}
[ -n "$log" ] || log=$(mktemp -d /tmp/tapegrad-examples.XXXXXX)
mkdir -p "$log/tapegrad" "$log/pytorch"
data="$src/data/mnist"

# The rows: "name|example|C arguments|script arguments|kind". kind says how the result and the
# time are read (see result_of and time_of). The C programs get --data where they read MNIST
# (their default is the relative data/mnist) because they run in the log folder, and --quiet
# where they have a progress display (the scripts have none); neither changes the recipe.
rows=()
for e in "${examples[@]}"; do
    case "$e" in
        mnist|lenet5|mytorch) rows+=("$e|$e|--data $data --quiet|--data $data|mnist") ;;
        cifar)
            for m in $cifar_models; do
                ep=${cifar_epochs:+--epochs $cifar_epochs}
                rows+=("cifar $m|cifar|--model $m $ep --quiet|--model $m $ep|cifar")
            done ;;
        logreg|bbox|lstm|custom_layer|linear_regression) rows+=("$e|$e|||$e") ;;
        mlp_search) rows+=("$e|$e|--data $data|--data $data|$e") ;;
        autoencoder) rows+=("$e|$e|--data $data --quiet|--data $data|$e") ;;
    esac
done

# result_of KIND FILE: the result cell from an output.
result_of() {
    local f=$2
    case "$1" in
        mnist|cifar)
            awk '/^final test accuracy:/ { printf "%.2f%% test accuracy", 100 * $4 }' "$f" ;;
        bbox) sed -n 's/.*, IoU \([0-9.]*\)$/IoU \1/p' "$f" ;;
        logreg) awk '/^test accuracy/ { printf "%.2f%% test accuracy", 100 * $3 }' "$f" ;;
        mlp_search)
            awk '/^test accuracy of the best model:/ { printf "%.2f%% test accuracy", 100 * $7 }
                ' "$f" ;;
        autoencoder) awk '/^test MSE/ { printf "test MSE %s", $3 }' "$f" ;;
        lstm)
            awk '/^  length/ { s += $3; n++ } /^digit accuracy at the trained lengths:/ { d = $7 }
                 END { if (n) printf "digits %.2f%% (trained lengths), sums %.2f%% (1-%d)",
                                     100 * d, 100 * s / n, n }' "$f" ;;
        custom_layer)
            awk '/came out as expected/ { c = "checks pass" }
                 /did NOT come out/ { c = "checks FAIL" }
                 /^accuracy on a fresh spiral:/ { a = $6 }
                 END { if (c != "" && a != "") printf "%s, %.2f%% on a fresh spiral", c, 100 * a }
                ' "$f" ;;
        linear_regression) sed -n 's/^loss \([0-9.]*\) -> \([0-9.]*\).*/loss \1 -> \2/p' "$f" ;;
    esac
}

# time_of KIND FILE WALL: the seconds of a run: what the program printed (mnist, cifar, and the
# twins' "wall time" line), else WALL, the process's wall time measured here.
time_of() {
    local s=""
    case "$1" in
        mnist) s=$(sed -n 's/^final test accuracy: .* \([0-9.]*\) s)$/\1/p' "$2") ;;
        cifar) s=$(sed -n 's/^final test accuracy: .*, \([0-9.]*\) s)$/\1/p' "$2") ;;
        *) s=$(sed -n 's/^wall time \([0-9.]*\) s .*/\1/p' "$2") ;;
    esac
    echo "${s:-$3}"
}

# rate_of FILE: the training images/s of a cifar run.
rate_of() { sed -n 's/^final test accuracy: .*, \([0-9.]*\) images\/s, .*/\1/p' "$1"; }

# seconds S: S formatted with about three significant digits.
seconds() {
    awk -v s="$1" 'BEGIN { printf (s < 1 ? "%.3f s" : s < 10 ? "%.2f s" : "%.1f s"), s }'
}

# run SIDE EXAMPLE ARGS OUT: one run in the side's folder; sets status and wall.
run() {
    local side=$1 ex=$2 args=$3 out=$4 t0
    local -a cmd extra
    read -ra extra <<<"$args"
    if [ "$side" = tapegrad ]; then
        cmd=("$build/examples/$ex" "${extra[@]}")
    else
        cmd=("$python" "$here/$ex.py" --threads "$threads" "${extra[@]}")
    fi
    t0=$EPOCHREALTIME
    status=0
    (cd "$log/$side" && OMP_NUM_THREADS=$threads "${cmd[@]}") >"$out" 2>&1 || status=$?
    wall=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f", b - a }')
}

cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)
torch_version=$("$python" -c 'import torch; print(torch.__version__)')
echo "machine: $(nproc) cores, $cpu; $threads thread(s) per side; PyTorch $torch_version;" \
     "$(date -u '+%Y-%m-%d %H:%M UTC'); raw outputs in $log"
echo
echo "| example | tapegrad result | tapegrad time | PyTorch result | PyTorch time |" \
     "time ratio (PyTorch/tapegrad) |"
echo "| --- | --- | --- | --- | --- | --- |"
declare -A res tim st
i=0
for row in "${rows[@]}"; do
    IFS='|' read -r name ex cargs pargs kind <<<"$row"
    file=${name// /-}
    order=(tapegrad pytorch)
    [ $((i % 2)) -eq 0 ] || order=(pytorch tapegrad)
    res=() tim=() st=()
    for side in "${order[@]}"; do
        echo "compare.sh: $name, $side ..." >&2
        args=$cargs
        [ "$side" = tapegrad ] || args=$pargs
        out="$log/$file.$side.txt"
        run "$side" "$ex" "$args" "$out"
        res[$side]=$(result_of "$kind" "$out")
        tim[$side]=$(time_of "$kind" "$out" "$wall")
        st[$side]=$status
    done
    cells=()
    for side in tapegrad pytorch; do
        r=${res[$side]:-no result}
        [ "${st[$side]}" -eq 0 ] || r="$r (exit ${st[$side]})"
        t=$(seconds "${tim[$side]}")
        [ "$kind" != cifar ] || t="$t ($(rate_of "$log/$file.$side.txt") img/s)"
        cells+=("$r" "$t")
    done
    ratio=-
    if [ -n "${res[tapegrad]}" ] && [ -n "${res[pytorch]}" ]; then
        ratio=$(awk -v p="${tim[pytorch]}" -v c="${tim[tapegrad]}" \
                    'BEGIN { printf (c > 0 ? "%.2f" : "-"), p / c }')
    fi
    echo "| \`$name\` | ${cells[0]} | ${cells[1]} | ${cells[2]} | ${cells[3]} | $ratio |"
    i=$((i + 1))
done
