# broker-oidc + broker-http against the test IdP: device login approved, denied, unreachable.
if(SAW_E2E)
  add_executable(oidc-devflow ${CMAKE_CURRENT_LIST_DIR}/oidc-devflow.c)
  target_link_libraries(oidc-devflow PRIVATE sawbroker)
  add_test(NAME e2e/oidc-devflow
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/oidc-devflow.sh $<TARGET_FILE:oidc-devflow>)
  set_tests_properties(e2e/oidc-devflow PROPERTIES LABELS e2e TIMEOUT 300
    ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR}")
endif()
