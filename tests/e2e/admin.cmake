# sawctl against a real saw-brokerd over AdminSocket (add / list / remove, a workspace online
# through the stock OpenSSH client, restart, SO_PEERCRED refusals when run as root).
if(SAW_E2E)
  add_test(NAME e2e/admin-sawctl COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/admin-sawctl.sh)
  set_tests_properties(e2e/admin-sawctl PROPERTIES LABELS e2e TIMEOUT 300
    ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR};SAW_BUILD_DIR=${CMAKE_BINARY_DIR}")
endif()
