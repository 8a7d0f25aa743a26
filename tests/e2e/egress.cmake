# Issue 5, egress and credential proxy end to end on loopback (tests/e2e/egress.sh,
# credproxy.sh): real IdP, saw-brokerd and saw-guestd, loopback test servers only. Root only
# (the ControlSocket's session_env is root-only); otherwise skipped (exit 77).
if(SAW_E2E)
  foreach(_t egress credproxy)
    add_test(NAME e2e/${_t} COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/${_t}.sh)
    set_tests_properties(e2e/${_t} PROPERTIES LABELS e2e TIMEOUT 300 SKIP_RETURN_CODE 77
      ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR};SAW_BUILD_DIR=${CMAKE_BINARY_DIR}")
  endforeach()
endif()
