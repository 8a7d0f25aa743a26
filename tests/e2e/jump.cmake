# tunnel/jump.c against two real OpenSSH sshd: failover timing, background reconnect, wrong
# host key, no host available.
if(SAW_E2E)
  add_executable(jump-failover ${CMAKE_CURRENT_LIST_DIR}/jump-failover.c)
  target_link_libraries(jump-failover PRIVATE sawtunnel sawaudit)
  add_test(NAME e2e/jump-failover
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/jump-failover.sh $<TARGET_FILE:jump-failover>)
  set_tests_properties(e2e/jump-failover PROPERTIES LABELS e2e TIMEOUT 300
    ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR}")
endif()
