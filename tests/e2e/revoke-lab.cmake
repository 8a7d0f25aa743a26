# Issue #4 in the netns lab (tests/e2e/revoke-lab.sh): revocation, a revocation while guestd
# was disconnected and the kill switch, seen inside the workspace (sandboxed logins through
# ForceCommand saw-session, the per-session tunnel, a corp request in flight). Root only;
# without root or namespaces the test exits 77 (skipped).
if(SAW_E2E)
  add_test(NAME e2e/revoke-lab COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/revoke-lab.sh)
  set_tests_properties(e2e/revoke-lab PROPERTIES LABELS e2e TIMEOUT 600 SKIP_RETURN_CODE 77
    ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR};SAW_BUILD_DIR=${CMAKE_BINARY_DIR}")
endif()
