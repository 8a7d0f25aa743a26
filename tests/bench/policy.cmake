# Policy decision benchmark (tests/bench/README.md, "Policy decisions"): built with
# everything else, run by bench-policy.sh; not a ctest test (benchmarks measure). A short
# run is registered as a smoke test so that the benchmark keeps building and its compiled
# answers keep agreeing with the linear-scan peer (it exits 1 if they ever differ).
add_executable(bench-policy ${CMAKE_CURRENT_LIST_DIR}/bench-policy.c)
target_link_libraries(bench-policy PRIVATE sawguestd)
add_test(NAME bench/policy-smoke COMMAND bench-policy -r 2000 -n 20000)
set_tests_properties(bench/policy-smoke PROPERTIES LABELS unit TIMEOUT 120)
