#!/bin/bash
# compare.sh: tapegrad against PyTorch on the workloads of bench/tapegrad-bench.c, which
# bench/pytorch_reference.py repeats in PyTorch (Debian's python3-torch, /usr/bin/python3).
#
#   bench/compare.sh [--threads N]... [--rounds R] [--build DIR] [--log DIR] [WORKLOAD...]
#
# For each thread count (default: 1, then 2) and each of R rounds (default 3), every workload
# runs on one side and then at once on the other (the side that goes first alternates by
# round), so load on a shared machine hits both sides alike; mnist (a whole training run per
# side, for its peak memory) runs in the first round only. Per side the best value over the
# rounds is kept (the fastest time, the highest throughput, the smallest memory), and one line
# per result is printed:
#
#   <result> tapegrad=<value> pytorch=<value> unit=<unit> ratio=<r> [goal details]
#
# ratio > 1 means tapegrad is better: tapegrad/pytorch for rates, pytorch/tapegrad for times and
# memory. Results only tapegrad has (arena) show pytorch=- ratio=-. The tapegrad lines' goal
# details pass through: vs_blis (median over rounds) and the allocation counts after the first
# training step (largest over rounds). Raw outputs are kept in the log folder. Run from anywhere;
# the default build folder is build/ in the source tree.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build="$src/build"
rounds=3
threads=()
workloads=()
log=""
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads+=("$2"); shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --build) build="$2"; shift 2 ;;
        --log) log="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
        *) workloads+=("$1"); shift ;;
    esac
done
[ ${#threads[@]} -gt 0 ] || threads=(1 2)
[ ${#workloads[@]} -gt 0 ] || workloads=(train_seed000 train_lenet5 train_mytorch train_resnet
    conv2d matmul batchnorm cross_entropy overhead arena mnist)
bench="$build/bench/tapegrad-bench"
ref="$src/bench/pytorch_reference.py"
[ -x "$bench" ] || { echo "compare.sh: no $bench (build first, or pass --build DIR)" >&2; exit 2; }
[ -n "$log" ] || log=$(mktemp -d /tmp/tapegrad-compare.XXXXXX)
mkdir -p "$log"

# run_side SIDE THREADS WORKLOAD: one run of one side, its output appended to the side's log.
run_side() {
    if [ "$1" = tapegrad ]; then
        "$bench" --threads "$2" "$3" >>"$log/tapegrad.$2.txt"
    else
        /usr/bin/python3 "$ref" --threads "$2" "$3" >>"$log/pytorch.$2.txt"
    fi
}

# summarize THREADS: the side-by-side lines from the two logs of a thread count.
summarize() {
    awk -v threads="$1" '
        function better(r, a, b) { return hi[r] ? a > b : a < b }
        {
            side = ""
            for (i = 2; i <= NF; i++) {
                split($i, kv, "=")
                if (kv[1] == "tapegrad" || kv[1] == "pytorch") { side = kv[1]; v = kv[2] }
            }
            if (side == "") next
            r = $1
            if (!(r in seen)) { seen[r] = 1; order[++n] = r }
            for (i = 2; i <= NF; i++) {
                split($i, kv, "=")
                if (kv[1] == "unit") unit[r] = kv[2]
                if (kv[1] == "better") hi[r] = kv[2] == "higher"
                if (side == "tapegrad" && kv[1] == "vs_blis") blis[r] = blis[r] " " kv[2]
                if (side == "tapegrad" && kv[1] ~ /allocs_after_step1$/ &&
                    (!((r, kv[1]) in allocs) || kv[2] + 0 > allocs[r, kv[1]]))
                    allocs[r, kv[1]] = kv[2] + 0
            }
            if (!((r, side) in best) || better(r, v + 0, best[r, side])) best[r, side] = v + 0
        }
        # The median of the space-separated numbers in s.
        function median(s,    m, k, i, j, t) {
            k = split(s, m, " ")
            for (i = 2; i <= k; i++)
                for (j = i; j > 1 && m[j - 1] + 0 > m[j] + 0; j--) {
                    t = m[j]; m[j] = m[j - 1]; m[j - 1] = t
                }
            return k % 2 ? m[(k + 1) / 2] : (m[k / 2] + m[k / 2 + 1]) / 2
        }
        END {
            for (i = 1; i <= n; i++) {
                r = order[i]
                tg = (r, "tapegrad") in best ? best[r, "tapegrad"] : "-"
                pt = (r, "pytorch") in best ? best[r, "pytorch"] : "-"
                ratio = "-"
                if (tg != "-" && pt != "-" && tg > 0 && pt > 0)
                    ratio = sprintf("%.2f", hi[r] ? tg / pt : pt / tg)
                line = sprintf("%s tapegrad=%s pytorch=%s unit=%s ratio=%s", r, tg, pt, unit[r],
                               ratio)
                if (r in blis) line = line sprintf(" vs_blis=%.3f", median(blis[r]))
                split("arena_allocs_after_step1 mallocs_after_step1 system_allocs_after_step1",
                      ks, " ")
                for (k = 1; k <= 3; k++)
                    if ((r, ks[k]) in allocs) line = line " " ks[k] "=" allocs[r, ks[k]]
                print line " threads=" threads
            }
        }' "$log/tapegrad.$1.txt" "$log/pytorch.$1.txt"
}

start=$(date +%s)
echo "# $(date -u '+%Y-%m-%d %H:%M UTC')  $(git -C "$src" log --oneline -1 2>/dev/null || true)"
cpu=$(lscpu | sed -n 's/^Model name: *//p')
echo "# $cpu, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# rounds=$rounds, logs in $log"
for t in "${threads[@]}"; do
    : >"$log/tapegrad.$t.txt"
    : >"$log/pytorch.$t.txt"
    for ((r = 1; r <= rounds; r++)); do
        for w in "${workloads[@]}"; do
            [ "$w" != mnist ] || [ "$r" -eq 1 ] || continue
            if ((r % 2)); then
                run_side tapegrad "$t" "$w"; run_side pytorch "$t" "$w"
            else
                run_side pytorch "$t" "$w"; run_side tapegrad "$t" "$w"
            fi
        done
    done
    summarize "$t" | tee "$log/summary.$t.txt"
done
echo "# $(($(date +%s) - start)) s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
