# Issue #5: the per-login sandbox inside real brokered sshd logins (ForceCommand saw-session),
# in the netns lab. Root only; without root or namespaces the test exits 77 (skipped).
if(SAW_E2E)
  add_test(NAME e2e/sandbox COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/sandbox.sh)
  set_tests_properties(e2e/sandbox PROPERTIES LABELS e2e TIMEOUT 600 SKIP_RETURN_CODE 77
    ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR};SAW_BUILD_DIR=${CMAKE_BINARY_DIR}")
endif()
