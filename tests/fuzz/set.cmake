# fuzz_set: the revocation signals (broker/broker-set.c): SET claims, pushed SETs, logout
# request bodies and the form parser. broker-set.c and broker-jwt.c are compiled into the
# target (not taken from libsawbroker) so that the fuzzer instruments them and the target
# builds even while other broker files do not.
if(NOT DEFINED SAW_FUZZ_SECONDS)
  set(SAW_FUZZ_SECONDS 20)
endif()

set(_saw_fuzz_set_seeds ${CMAKE_CURRENT_LIST_DIR}/corpus/set)
set(_saw_fuzz_set_srcs ${CMAKE_CURRENT_LIST_DIR}/fuzz_set.c
  ${CMAKE_SOURCE_DIR}/broker/broker-set.c ${CMAKE_SOURCE_DIR}/broker/broker-jwt.c)
set(_saw_fuzz_set_libs PkgConfig::JANSSON PkgConfig::CJOSE PkgConfig::OPENSSL m)

if(SAW_FUZZ)
  add_executable(fuzz_set ${_saw_fuzz_set_srcs})
  target_compile_options(fuzz_set PRIVATE -fsanitize=fuzzer,address,undefined -g)
  target_link_options(fuzz_set PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_set PRIVATE ${_saw_fuzz_set_libs})
  # New inputs go to a corpus in the build tree; the committed seeds are only read.
  set(_saw_fuzz_set_work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus/set)
  file(MAKE_DIRECTORY ${_saw_fuzz_set_work})
  add_test(NAME fuzz/set
    COMMAND fuzz_set -max_total_time=${SAW_FUZZ_SECONDS}
            -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz-set-
            ${_saw_fuzz_set_work} ${_saw_fuzz_set_seeds})
  set_tests_properties(fuzz/set PROPERTIES LABELS fuzz TIMEOUT 600)
else()
  add_executable(fuzz_set ${_saw_fuzz_set_srcs} ${CMAKE_CURRENT_LIST_DIR}/replay-main.c)
  target_link_libraries(fuzz_set PRIVATE ${_saw_fuzz_set_libs})
  add_test(NAME fuzz/set-replay COMMAND fuzz_set ${_saw_fuzz_set_seeds})
  set_tests_properties(fuzz/set-replay PROPERTIES LABELS fuzz TIMEOUT 120)
endif()
