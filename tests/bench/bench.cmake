# Login benchmark (tests/bench/README.md). The load client is built with everything else, but
# the benchmark itself is not a ctest test: benchmarks measure, they do not pass or fail. Only
# a short smoke run of the load client against OpenSSH sshd is registered, with the e2e tests.
find_package(Threads REQUIRED)
add_executable(saw-loadclient ${CMAKE_CURRENT_LIST_DIR}/saw-loadclient.c)
target_link_libraries(saw-loadclient PRIVATE PkgConfig::LIBSSH Threads::Threads m)
# Egress benchmark peers (tests/bench/bench-egress.sh).
add_executable(saw-egressbench ${CMAKE_CURRENT_LIST_DIR}/saw-egressbench.c)
target_link_libraries(saw-egressbench PRIVATE Threads::Threads)
# The least a CONNECT proxy can cost here: the yardstick beside the peers.
add_executable(saw-floorproxy ${CMAKE_CURRENT_LIST_DIR}/saw-floorproxy.c)
target_link_libraries(saw-floorproxy PRIVATE Threads::Threads)

if(SAW_E2E)
  add_test(NAME bench/loadclient-smoke
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/loadclient-smoke.sh $<TARGET_FILE:saw-loadclient>)
  set_tests_properties(bench/loadclient-smoke PROPERTIES LABELS e2e TIMEOUT 180)
endif()
