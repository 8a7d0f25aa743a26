# The test IdP and the browser-less approver, end to end (node + python3 + curl).
if(SAW_E2E)
  add_test(NAME e2e/idp-smoke COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/idp-smoke.sh)
  set_tests_properties(e2e/idp-smoke PROPERTIES LABELS e2e TIMEOUT 120
    ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR}")
endif()
