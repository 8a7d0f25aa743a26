# Audit pipeline end to end (issue 6): audit-drive emits through the real sink stack (file,
# syslog, spool + HTTP forwarder on libcurl/libevent) to audit-siem.py, a SIEM stand-in that
# is down, then failing, then up; and a SIGKILL mid-burst. python3 only, loopback only.
add_executable(audit-drive ${CMAKE_CURRENT_LIST_DIR}/audit-drive.c)
target_link_libraries(audit-drive PRIVATE sawbroker)

if(SAW_E2E)
  add_test(NAME e2e/audit-siem
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/audit-siem.sh $<TARGET_FILE:audit-drive>
                   $<TARGET_FILE:saw-audit-verify>)
  set_tests_properties(e2e/audit-siem PROPERTIES LABELS e2e TIMEOUT 300
    ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR};SAW_BUILD_DIR=${CMAKE_BINARY_DIR}")
endif()
