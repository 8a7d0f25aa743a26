# fuzz_akc: saw-authorized-keys' argument checks and the ControlSocket answer parser
# (guestd/akc.c, guestd/gsock-client.c). Same pattern as conf.cmake: libFuzzer under SAW_FUZZ,
# otherwise linked with replay-main.c and the seed corpus is replayed.
if(NOT DEFINED SAW_FUZZ_SECONDS)
  set(SAW_FUZZ_SECONDS 20 CACHE STRING "Seconds each libFuzzer target runs under ctest")
endif()

set(_saw_fuzz_akc_seeds ${CMAKE_CURRENT_LIST_DIR}/corpus/akc)
set(_saw_fuzz_akc_srcs ${CMAKE_CURRENT_LIST_DIR}/fuzz_akc.c ${CMAKE_SOURCE_DIR}/guestd/akc.c
  ${CMAKE_SOURCE_DIR}/guestd/gsock-client.c)

if(SAW_FUZZ)
  add_executable(fuzz_akc ${_saw_fuzz_akc_srcs})
  target_compile_options(fuzz_akc PRIVATE -fsanitize=fuzzer,address,undefined -g)
  target_link_options(fuzz_akc PRIVATE -fsanitize=fuzzer,address,undefined)
  set(_saw_fuzz_akc_work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus/akc)
  file(MAKE_DIRECTORY ${_saw_fuzz_akc_work})
  add_test(NAME fuzz/akc
    COMMAND fuzz_akc -max_total_time=${SAW_FUZZ_SECONDS}
            -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz-akc-
            ${_saw_fuzz_akc_work} ${_saw_fuzz_akc_seeds})
  set_tests_properties(fuzz/akc PROPERTIES LABELS fuzz TIMEOUT 600)
else()
  add_executable(fuzz_akc ${_saw_fuzz_akc_srcs} ${CMAKE_CURRENT_LIST_DIR}/replay-main.c)
  add_test(NAME fuzz/akc-replay COMMAND fuzz_akc ${_saw_fuzz_akc_seeds})
  set_tests_properties(fuzz/akc-replay PROPERTIES LABELS fuzz TIMEOUT 120)
endif()
target_link_libraries(fuzz_akc PRIVATE PkgConfig::JANSSON PkgConfig::OPENSSL)
