# saw-authorized-keys and pam_saw.so against a fake saw-guestd (tests/tools/fake-guestd.py):
# akc-client needs nothing else; akc-sshd runs a real OpenSSH sshd with conf/sshd-saw.conf and
# a PAM service of its own, so it needs root (it exits 77, skipped, otherwise).
if(SAW_E2E)
  add_executable(pam-harness ${CMAKE_CURRENT_LIST_DIR}/pam-harness.c)
  target_link_libraries(pam-harness PRIVATE PkgConfig::PAM)

  add_test(NAME e2e/akc-client
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/akc-client.sh $<TARGET_FILE:saw-authorized-keys>)
  set_tests_properties(e2e/akc-client PROPERTIES LABELS e2e TIMEOUT 120
    ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR}")

  add_test(NAME e2e/akc-sshd
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/akc-sshd.sh $<TARGET_FILE:saw-authorized-keys>
            $<TARGET_FILE:pam_saw> $<TARGET_FILE:pam-harness>)
  set_tests_properties(e2e/akc-sshd PROPERTIES LABELS e2e TIMEOUT 300 SKIP_RETURN_CODE 77
    ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR}")
endif()
