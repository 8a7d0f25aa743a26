# fuzz_policy: the policy document parser and compiler (guestd/policy.c), then decisions
# against what it accepted. As for fuzz_conf, the sources are compiled into the target so
# the fuzzer instruments them; without SAW_FUZZ (gcc) the seed corpus is replayed.
set(_saw_fuzz_policy_seeds ${CMAKE_CURRENT_LIST_DIR}/corpus/policy)
set(_saw_fuzz_policy_srcs ${CMAKE_CURRENT_LIST_DIR}/fuzz_policy.c
  ${CMAKE_SOURCE_DIR}/guestd/policy.c ${CMAKE_SOURCE_DIR}/guestd/netclass.c)

if(SAW_FUZZ)
  add_executable(fuzz_policy ${_saw_fuzz_policy_srcs})
  target_compile_options(fuzz_policy PRIVATE -fsanitize=fuzzer,address,undefined -g)
  target_link_options(fuzz_policy PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_policy PRIVATE PkgConfig::JANSSON)
  set(_saw_fuzz_policy_work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus/policy)
  file(MAKE_DIRECTORY ${_saw_fuzz_policy_work})
  add_test(NAME fuzz/policy
    COMMAND fuzz_policy -max_total_time=${SAW_FUZZ_SECONDS} -max_len=65536
            -dict=${CMAKE_CURRENT_LIST_DIR}/policy.dict
            -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz-policy-
            ${_saw_fuzz_policy_work} ${_saw_fuzz_policy_seeds})
  set_tests_properties(fuzz/policy PROPERTIES LABELS fuzz TIMEOUT 600)
else()
  add_executable(fuzz_policy ${_saw_fuzz_policy_srcs} ${CMAKE_CURRENT_LIST_DIR}/replay-main.c)
  target_link_libraries(fuzz_policy PRIVATE PkgConfig::JANSSON)
  add_test(NAME fuzz/policy-replay COMMAND fuzz_policy ${_saw_fuzz_policy_seeds})
  set_tests_properties(fuzz/policy-replay PROPERTIES LABELS fuzz TIMEOUT 120)
endif()
