# tunnel/sshc.c against a real OpenSSH sshd (host key pinning, known_hosts, refusals, cancel).
if(SAW_E2E)
  add_executable(sshc-test ${CMAKE_CURRENT_LIST_DIR}/sshc.c)
  target_link_libraries(sshc-test PRIVATE sawtunnel)
  add_test(NAME e2e/sshc COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/sshc.sh $<TARGET_FILE:sshc-test>)
  set_tests_properties(e2e/sshc PROPERTIES LABELS e2e TIMEOUT 120
    ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR}")
endif()
