# saw-brokerd end to end with the real peers: the stock OpenSSH client, the test IdP
# (oidc-provider on node), sqlite3. One script per behaviour group; each sources lib.sh and
# broker-common.sh and stays under about two minutes (broker-expiry waits for the smallest
# allowed session lifetime and idle timeout, 1m).
if(SAW_E2E)
  foreach(t login refusals expiry parallel config limits)
    add_test(NAME e2e/broker-${t} COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/broker-${t}.sh)
    set_tests_properties(e2e/broker-${t} PROPERTIES LABELS e2e TIMEOUT 300
      ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR};SAW_BUILD_DIR=${CMAKE_BINARY_DIR}")
  endforeach()
endif()
