# fuzz_oidc: the parsers of the IdP's answers (broker-oidc-parse.c) and the URL policy.
# broker-oidc-parse.c is compiled into the target (not taken from libsawbroker) so that the
# fuzzer instruments the parser itself and the target builds even while other broker files
# do not.
if(NOT DEFINED SAW_FUZZ_SECONDS)
  set(SAW_FUZZ_SECONDS 20)
endif()

set(_saw_fuzz_oidc_seeds ${CMAKE_CURRENT_LIST_DIR}/corpus/oidc)
set(_saw_fuzz_oidc_srcs ${CMAKE_CURRENT_LIST_DIR}/fuzz_oidc.c
                        ${CMAKE_SOURCE_DIR}/broker/broker-oidc-parse.c)

if(SAW_FUZZ)
  add_executable(fuzz_oidc ${_saw_fuzz_oidc_srcs})
  target_compile_options(fuzz_oidc PRIVATE -fsanitize=fuzzer,address,undefined -g)
  target_link_options(fuzz_oidc PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_oidc PRIVATE PkgConfig::JANSSON PkgConfig::CURL)
  # New inputs go to a corpus in the build tree; the committed seeds are only read.
  set(_saw_fuzz_oidc_work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus/oidc)
  file(MAKE_DIRECTORY ${_saw_fuzz_oidc_work})
  add_test(NAME fuzz/oidc
    COMMAND fuzz_oidc -max_total_time=${SAW_FUZZ_SECONDS}
            -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz-oidc-
            ${_saw_fuzz_oidc_work} ${_saw_fuzz_oidc_seeds})
  set_tests_properties(fuzz/oidc PROPERTIES LABELS fuzz TIMEOUT 600)
else()
  add_executable(fuzz_oidc ${_saw_fuzz_oidc_srcs} ${CMAKE_CURRENT_LIST_DIR}/replay-main.c)
  target_link_libraries(fuzz_oidc PRIVATE PkgConfig::JANSSON PkgConfig::CURL)
  add_test(NAME fuzz/oidc-replay COMMAND fuzz_oidc ${_saw_fuzz_oidc_seeds})
  set_tests_properties(fuzz/oidc-replay PROPERTIES LABELS fuzz TIMEOUT 120)
endif()
