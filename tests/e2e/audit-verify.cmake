# sawctl audit verify on a real broker's rotated audit files, untouched and tampered.
if(SAW_E2E)
  add_test(NAME e2e/audit-verify COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/audit-verify.sh)
  set_tests_properties(e2e/audit-verify PROPERTIES LABELS e2e TIMEOUT 120
    ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR};SAW_BUILD_DIR=${CMAKE_BINARY_DIR}")
endif()
