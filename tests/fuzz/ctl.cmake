# fuzz_ctl: the control-channel decoder and typed parsers (tunnel/ctl.c). As for fuzz_conf,
# the parser's source is compiled into the target so that libFuzzer instruments it; without
# SAW_FUZZ (gcc) the target replays the seed corpus.
set(_saw_fuzz_ctl_seeds ${CMAKE_CURRENT_LIST_DIR}/corpus/ctl)
set(_saw_fuzz_ctl_srcs ${CMAKE_CURRENT_LIST_DIR}/fuzz_ctl.c ${CMAKE_SOURCE_DIR}/tunnel/ctl.c)

if(SAW_FUZZ)
  add_executable(fuzz_ctl ${_saw_fuzz_ctl_srcs})
  target_link_libraries(fuzz_ctl PRIVATE PkgConfig::JANSSON)
  target_compile_options(fuzz_ctl PRIVATE -fsanitize=fuzzer,address,undefined -g)
  target_link_options(fuzz_ctl PRIVATE -fsanitize=fuzzer,address,undefined)
  set(_saw_fuzz_ctl_work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus/ctl)
  file(MAKE_DIRECTORY ${_saw_fuzz_ctl_work})
  add_test(NAME fuzz/ctl
    COMMAND fuzz_ctl -max_total_time=${SAW_FUZZ_SECONDS}
            -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz-ctl-
            ${_saw_fuzz_ctl_work} ${_saw_fuzz_ctl_seeds})
  set_tests_properties(fuzz/ctl PROPERTIES LABELS fuzz TIMEOUT 600)
else()
  add_executable(fuzz_ctl ${_saw_fuzz_ctl_srcs} ${CMAKE_CURRENT_LIST_DIR}/replay-main.c)
  target_link_libraries(fuzz_ctl PRIVATE PkgConfig::JANSSON)
  add_test(NAME fuzz/ctl-replay COMMAND fuzz_ctl ${_saw_fuzz_ctl_seeds})
  set_tests_properties(fuzz/ctl-replay PROPERTIES LABELS fuzz TIMEOUT 120)
endif()
