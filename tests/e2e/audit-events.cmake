# Issue 6: the broker's security-relevant actions as OCSF events in its audit file (admin API
# and socket calls, webhooks, locks, the kill switch, tunnels, revocations), end to end with
# the real IdP, OpenSSH client, sawctl and a test SSF transmitter. Loopback only.
if(SAW_E2E)
  add_test(NAME e2e/audit-events COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/audit-events.sh)
  set_tests_properties(e2e/audit-events PROPERTIES LABELS e2e TIMEOUT 300
    ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR};SAW_BUILD_DIR=${CMAKE_BINARY_DIR}")
endif()
