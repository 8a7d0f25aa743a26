# Audit pipeline benchmark (tests/bench/bench-audit.sh): audit-bench drives the sinks; the
# script compares with rsyslog's omfile. Not a ctest test: benchmarks measure.
add_executable(audit-bench ${CMAKE_CURRENT_LIST_DIR}/audit-bench.c)
target_link_libraries(audit-bench PRIVATE sawbroker)
