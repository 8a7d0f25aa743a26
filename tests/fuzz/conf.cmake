# fuzz_conf: the configuration parser (conf/conf.c) through the broker's keyword table.
# The sources are compiled into the target (not taken from the libraries) so that the
# fuzzer instruments the parser itself and the target builds even while other broker files
# do not. Without SAW_FUZZ (gcc), the same target is linked with replay-main.c and ctest
# replays the seed corpus.
if(NOT DEFINED SAW_FUZZ_SECONDS)
  set(SAW_FUZZ_SECONDS 20 CACHE STRING "Seconds each libFuzzer target runs under ctest")
endif()

set(_saw_fuzz_conf_seeds ${CMAKE_CURRENT_LIST_DIR}/corpus/conf)
set(_saw_fuzz_conf_srcs ${CMAKE_CURRENT_LIST_DIR}/fuzz_conf.c ${CMAKE_SOURCE_DIR}/conf/conf.c
  ${CMAKE_SOURCE_DIR}/broker/broker-config.c ${CMAKE_SOURCE_DIR}/audit/audit-sink.c)

if(SAW_FUZZ)
  add_executable(fuzz_conf ${_saw_fuzz_conf_srcs})
  target_compile_options(fuzz_conf PRIVATE -fsanitize=fuzzer,address,undefined -g)
  target_link_options(fuzz_conf PRIVATE -fsanitize=fuzzer,address,undefined)
  # New inputs go to a corpus in the build tree; the committed seeds are only read.
  set(_saw_fuzz_conf_work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus/conf)
  file(MAKE_DIRECTORY ${_saw_fuzz_conf_work})
  add_test(NAME fuzz/conf
    COMMAND fuzz_conf -max_total_time=${SAW_FUZZ_SECONDS}
            -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz-conf-
            ${_saw_fuzz_conf_work} ${_saw_fuzz_conf_seeds})
  set_tests_properties(fuzz/conf PROPERTIES LABELS fuzz TIMEOUT 600)
else()
  add_executable(fuzz_conf ${_saw_fuzz_conf_srcs} ${CMAKE_CURRENT_LIST_DIR}/replay-main.c)
  add_test(NAME fuzz/conf-replay COMMAND fuzz_conf ${_saw_fuzz_conf_seeds})
  set_tests_properties(fuzz/conf-replay PROPERTIES LABELS fuzz TIMEOUT 120)
endif()
