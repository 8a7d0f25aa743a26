# Issue #3 end to end in a lab of network namespaces (tests/e2e/netns-lab.sh): ProxyJump into
# the workspace through saw-guestd's reverse tunnel, and the workspace's corporate egress
# through the per-session tunnel and the jump-host pair. Root only (namespaces, accounts, a
# root-owned AuthorizedKeysCommand); without root or namespaces the tests exit 77 (skipped).
if(SAW_E2E)
  foreach(_t lab proxyjump corp)
    add_test(NAME e2e/tunnel-${_t} COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/tunnel-${_t}.sh)
    set_tests_properties(e2e/tunnel-${_t} PROPERTIES LABELS e2e TIMEOUT 600
      SKIP_RETURN_CODE 77
      ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR};SAW_BUILD_DIR=${CMAKE_BINARY_DIR}")
  endforeach()
endif()
