# The sandbox's pure pieces (guestd/sandbox.c): mount plan from a policy, environment, the
# seccomp deny list (and the filter itself, in a forked child), Landlock rights per ABI,
# cgroup v2 discovery from mountinfo and /proc/self/cgroup texts.
saw_unit_test(torture_sandbox ${CMAKE_CURRENT_LIST_DIR}/torture_sandbox.c)
target_link_libraries(torture_sandbox PRIVATE sawguestd)
