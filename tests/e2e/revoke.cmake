# Revocation (issue #4), end to end against the real test IdP: back-channel logout driven by
# oidc-provider, SETs from a test transmitter for every event type and subject format (and the
# refusals), the admin HTTP API with real JWT access tokens, sawctl, locks and the kill switch.
if(SAW_E2E)
  foreach(_saw_revoke_test revoke-bcl revoke-set revoke-admin)
    add_test(NAME e2e/${_saw_revoke_test}
      COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/${_saw_revoke_test}.sh)
    set_tests_properties(e2e/${_saw_revoke_test} PROPERTIES LABELS e2e TIMEOUT 400
      ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR};SAW_BUILD_DIR=${CMAKE_BINARY_DIR}")
  endforeach()
endif()
