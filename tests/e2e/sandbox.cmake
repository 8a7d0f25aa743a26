# Issue #5: the per-login sandbox inside real brokered sshd logins (ForceCommand saw-session),
# in the netns lab. Root only; without root or namespaces the test exits 77 (skipped).
#   sandbox         the confinement itself, revocation
#   sandbox-cgroup  per-login cgroups (v2 and, on a hybrid, v1 pids/memory limits), Process
#                   Activity audit, protected git repositories (guestd in the host's mounts)
#   sandbox-cred    the credential, egress and decision listeners inside the sandbox
if(SAW_E2E)
  foreach(_t sandbox sandbox-cgroup sandbox-cred)
    if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/${_t}.sh)
      add_test(NAME e2e/${_t} COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/${_t}.sh)
      set_tests_properties(e2e/${_t} PROPERTIES LABELS e2e TIMEOUT 600 SKIP_RETURN_CODE 77
        ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR};SAW_BUILD_DIR=${CMAKE_BINARY_DIR}")
    endif()
  endforeach()
endif()
