#!/usr/bin/env bash
# Issue #5 benchmark: policy decision time with 10,000 rules, side by side with the
# straightforward implementation (a linear scan of the same rules), on the same requests.
# Target: p99 <= 2 us per decision.
#
#   tests/bench/bench-policy.sh [bench-policy options]    (-r RULES, -n LOOKUPS, -s SEED)
#
# Prints the machine (CPU, count, load: decisions are timed one by one, so a busy machine
# shows in the tail), then bench-policy's table. Environment: SAW_BUILD_DIR (default
# build/), SAW_BENCH_RULES (10000), SAW_BENCH_LOOKUPS (1000000), SAW_BENCH_SEED.
# Benchmarks measure, they do not pass or fail: exit 0 when it ran, 1 when it could not run
# (or when the compiled engine and the linear scan ever disagree).
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
	exit 0
fi
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${SAW_BUILD_DIR:-$src/build}
bin=$build/tests/bench-policy
[ -x "$bin" ] || bin=$(find "$build" -name bench-policy -type f -perm -u+x 2>/dev/null | head -1)
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
	echo "bench-policy: not built; run: cmake -S . -B build && make -C build bench-policy" >&2
	exit 1
fi
args=(-r "${SAW_BENCH_RULES:-10000}" -n "${SAW_BENCH_LOOKUPS:-1000000}")
[ -n "${SAW_BENCH_SEED:-}" ] && args+=(-s "$SAW_BENCH_SEED")

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) CPUs," \
	"kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "saw-broker $(git -C "$src" describe --always --dirty 2>/dev/null || echo '?')," \
	"jansson $(pkg-config --modversion jansson 2>/dev/null || echo '?')"
echo
exec "$bin" "${args[@]}" "$@"
