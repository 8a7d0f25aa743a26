# Issue 6, guestd's audit delivery end to end (tests/e2e/audit-guestd.sh): saw-guestd's
# durable spool and the broker's acknowledgements across a broker stop and a guestd SIGKILL,
# and the broker's per-workspace rate limit under a flood. Real IdP, broker and guestd on
# loopback; root only (egress-lib.sh), otherwise skipped (exit 77).
if(SAW_E2E)
  add_test(NAME e2e/audit-guestd COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/audit-guestd.sh)
  set_tests_properties(e2e/audit-guestd PROPERTIES LABELS e2e TIMEOUT 300
    SKIP_RETURN_CODE 77
    ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR};SAW_BUILD_DIR=${CMAKE_BINARY_DIR}")
endif()
