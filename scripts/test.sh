#!/usr/bin/env bash
# SAW broker's one test command (CI runs it through .ci/run):
#
#   scripts/test.sh [--quick] [-j N] [--no-deps]
#
#  1. scripts/install-deps.sh (skipped with --no-deps)
#  2. clang-format check of every tracked *.c / *.h
#  3. gcc build with -Werror into build/, then the whole ctest suite (unit, e2e, fuzz replay)
#  4. clang libFuzzer build into build-fuzz/, each fuzz/* test run for $SAW_FUZZ_SECONDS
#     (default 20)                                                   [not with --quick]
#  5. gcc ASan+UBSan build into build-asan/, the whole ctest suite again [not with --quick]
#  6. gcc ThreadSanitizer build into build-tsan/, the egress proxy's tests (its event loops
#     are threads); any report fails the step                        [not with --quick]
#
# Every step runs even when an earlier one failed (a build failure skips only the tests of
# that build); the summary at the end lists them all and the exit status is non-zero if any
# failed. Works as root, without a terminal, on a fresh clone.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
src=$(pwd)

quick=0
deps=1
jobs=$(nproc 2>/dev/null || echo 2)
usage() {
	echo "usage: scripts/test.sh [--quick] [-j N] [--no-deps]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--no-deps) deps=0 ;;
	-j) [ $# -ge 2 ] || usage; jobs=$2; shift ;;
	-j*) jobs=${1#-j} ;;
	-h | --help) usage ;;
	*) echo "scripts/test.sh: unknown option $1" >&2; usage ;;
	esac
	shift
done
case $jobs in '' | *[!0-9]*) usage ;; esac

export SAW_FUZZ_SECONDS=${SAW_FUZZ_SECONDS:-20}
export CTEST_OUTPUT_ON_FAILURE=1
# Tests talk to loopback only.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
export NO_PROXY='*' no_proxy='*'

steps=()   # "STATUS|name|seconds|note"
failed=0
tests_passed=0
tests_failed=0

banner() {
	echo
	echo "==== $* ===="
}

record() { # record STATUS NAME START [NOTE]
	local status=$1 name=$2 start=$3 note=${4:-}
	steps+=("$status|$name|$(($(date +%s) - start))|$note")
	[ "$status" != FAIL ] || failed=$((failed + 1))
	echo "---- $status: $name${note:+ ($note)}"
}

# run_ctest NAME BUILD_DIR [ctest args...]: runs ctest, adds its counts to the totals.
run_ctest() {
	local name=$1 dir=$2 start rc log
	shift 2
	start=$(date +%s)
	log=$dir/test-sh-ctest-$(echo "$name" | tr -c 'a-zA-Z0-9\n' '-').log
	banner "$name"
	(cd "$dir" && ctest --output-on-failure --no-tests=ignore "$@") 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	# "100% tests passed, 0 tests failed out of 42"
	local line total nfail
	line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1)
	if [ -n "$line" ]; then
		nfail=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
		total=$(echo "$line" | sed -E 's/.* failed out of ([0-9]+).*/\1/')
		tests_failed=$((tests_failed + nfail))
		tests_passed=$((tests_passed + total - nfail))
		[ "$rc" -eq 0 ] && record PASS "$name" "$start" "$((total - nfail))/$total tests" ||
			record FAIL "$name" "$start" "$nfail of $total tests failed"
	elif grep -q 'No tests were found' "$log"; then
		record SKIP "$name" "$start" "no tests registered"
	else
		record FAIL "$name" "$start" "ctest exit $rc"
	fi
}

# run_suites NAME DIR: unit tests and fuzz replays in parallel, then the e2e tests one at a
# time (they start real daemons; running them side by side on 2 cores invites timeouts).
run_suites() {
	run_ctest "ctest unit+replay ($1)" "$2" -LE e2e --parallel "$jobs"
	run_ctest "ctest e2e ($1)" "$2" -L e2e
}

# build NAME DIR [cmake args...]: configure and build (going on past errors, so that every
# target that can be built is); status 0 on success, 1 if some target failed, 2 if the
# configuration failed.
build() {
	local name=$1 dir=$2 start
	shift 2
	start=$(date +%s)
	banner "build: $name ($dir)"
	if ! cmake -S "$src" -B "$dir" -DSAW_WERROR=ON "$@"; then
		record FAIL "build: $name" "$start" "cmake configuration failed"
		return 2
	fi
	if cmake --build "$dir" --parallel "$jobs" -- -k; then
		record PASS "build: $name" "$start"
		return 0
	fi
	record FAIL "build: $name" "$start"
	return 1
}

t0=$(date +%s)

# 1. Dependencies.
if [ "$deps" -eq 1 ]; then
	start=$(date +%s)
	banner "install dependencies"
	if scripts/install-deps.sh; then
		record PASS "install-deps" "$start"
	else
		record FAIL "install-deps" "$start"
	fi
fi

# 2. Formatting.
start=$(date +%s)
banner "clang-format"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	mapfile -t cfiles < <(git ls-files -- '*.c' '*.h')
else
	mapfile -t cfiles < <(find . -path ./build\* -prune -o \( -name '*.c' -o -name '*.h' \) -print)
fi
bad=()
for f in "${cfiles[@]}"; do
	[ -f "$f" ] || continue
	clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -eq 0 ]; then
	record PASS "clang-format" "$start" "${#cfiles[@]} files"
else
	for f in "${bad[@]}"; do
		echo "not formatted: $f"
		clang-format --dry-run "$f" 2>&1 | head -n 12
	done
	echo "fix with: clang-format -i ${bad[*]}"
	record FAIL "clang-format" "$start" "${#bad[@]} of ${#cfiles[@]} files need clang-format -i"
fi

# 3. gcc, -Werror, full suite.
if build "gcc -Werror" build -DCMAKE_C_COMPILER=gcc -DSAW_SANITIZE=OFF -DSAW_FUZZ=OFF -DSAW_E2E=ON; then
	run_suites gcc build
else
	record SKIP "ctest (gcc)" "$(date +%s)" "build failed"
fi

if [ "$quick" -eq 0 ]; then
	# 4. libFuzzer: every fuzz/* test, each bounded by SAW_FUZZ_SECONDS.
	# (tests/fuzz/*.cmake read SAW_FUZZ_SECONDS at configure time.)
	# A clang error elsewhere (a unit test, say) fails the build step but does not stop the
	# fuzz targets that did build from running.
	rc=0
	build "clang libFuzzer" build-fuzz -DCMAKE_C_COMPILER=clang -DSAW_FUZZ=ON \
		-DSAW_SANITIZE=OFF -DSAW_E2E=OFF -DSAW_FUZZ_SECONDS="$SAW_FUZZ_SECONDS" || rc=$?
	if [ "$rc" -lt 2 ]; then
		run_ctest "fuzz (${SAW_FUZZ_SECONDS}s each)" build-fuzz -R '^fuzz/'
	else
		record SKIP "fuzz" "$(date +%s)" "build failed"
	fi

	# 5. ASan + UBSan, full suite.
	if build "gcc ASan+UBSan" build-asan -DCMAKE_C_COMPILER=gcc -DSAW_SANITIZE=ON \
		-DSAW_FUZZ=OFF -DSAW_E2E=ON; then
		ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
			UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
			run_suites ASan+UBSan build-asan
	else
		record SKIP "ctest (ASan+UBSan)" "$(date +%s)" "build failed"
	fi

	# 6. ThreadSanitizer: the tests of saw-guestd's egress proxy, whose connections run on
	# several event loops (ProxyThreads). A report fails the step even where the test passed.
	if build "gcc TSan" build-tsan -DCMAKE_C_COMPILER=gcc -DSAW_TSAN=ON -DSAW_FUZZ=OFF \
		-DSAW_E2E=ON; then
		rm -rf build-tsan/tsan-reports
		mkdir -p build-tsan/tsan-reports
		TSAN_OPTIONS=${TSAN_OPTIONS:-log_path=$src/build-tsan/tsan-reports/report:second_deadlock_stack=1} \
			run_ctest "ctest TSan (proxy)" build-tsan \
			-R '^(unit/torture_shard|e2e/(egress|audit-guestd|tunnel-corp|policy-reload|sandbox|sandbox-cred))$'
		start=$(date +%s)
		mapfile -t reports < <(find build-tsan/tsan-reports -type f)
		if [ ${#reports[@]} -eq 0 ]; then
			record PASS "ThreadSanitizer reports" "$start" "none"
		else
			head -n 60 "${reports[0]}"
			record FAIL "ThreadSanitizer reports" "$start" "${#reports[@]} in build-tsan/tsan-reports"
		fi
	else
		record SKIP "ctest (TSan)" "$(date +%s)" "build failed"
	fi
else
	record SKIP "fuzz" "$(date +%s)" "--quick"
	record SKIP "ASan+UBSan" "$(date +%s)" "--quick"
	record SKIP "TSan" "$(date +%s)" "--quick"
fi

echo
echo "==== summary ($(($(date +%s) - t0)) s) ===="
for s in "${steps[@]}"; do
	IFS='|' read -r status name secs note <<<"$s"
	printf '  %-4s  %-28s %5ss  %s\n' "$status" "$name" "$secs" "$note"
done
if [ "$failed" -eq 0 ]; then
	echo "scripts/test.sh: all steps passed"
else
	echo "scripts/test.sh: $failed step(s) FAILED"
	# A failed step without failed tests (build, format) still counts as a failure.
	[ "$tests_failed" -gt 0 ] || tests_failed=$failed
fi
echo "tests: $tests_passed passed, $tests_failed failed"
[ "$failed" -eq 0 ]
