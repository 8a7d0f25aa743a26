# fuzz_admin: the admin protocol (broker-admin.c) — JSON lines in, one answer each — against
# an in-memory store. broker-admin.c and broker-store.c are compiled into the target (not
# taken from libsawbroker) so that the fuzzer instruments them and the target builds even
# while other broker files do not; the workspace connections are stubbed in fuzz_admin.c.
if(NOT DEFINED SAW_FUZZ_SECONDS)
  set(SAW_FUZZ_SECONDS 20)
endif()

set(_saw_fuzz_admin_seeds ${CMAKE_CURRENT_LIST_DIR}/corpus/admin)
set(_saw_fuzz_admin_srcs ${CMAKE_CURRENT_LIST_DIR}/fuzz_admin.c
  ${CMAKE_SOURCE_DIR}/broker/broker-admin.c ${CMAKE_SOURCE_DIR}/broker/broker-store.c
  ${CMAKE_SOURCE_DIR}/audit/log.c)
set(_saw_fuzz_admin_libs sawconf PkgConfig::JANSSON PkgConfig::LIBSSH PkgConfig::LIBEVENT
  PkgConfig::SQLITE)

if(SAW_FUZZ)
  add_executable(fuzz_admin ${_saw_fuzz_admin_srcs})
  target_compile_options(fuzz_admin PRIVATE -fsanitize=fuzzer,address,undefined -g)
  target_link_options(fuzz_admin PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_admin PRIVATE ${_saw_fuzz_admin_libs})
  # New inputs go to a corpus in the build tree; the committed seeds are only read.
  set(_saw_fuzz_admin_work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus/admin)
  file(MAKE_DIRECTORY ${_saw_fuzz_admin_work})
  add_test(NAME fuzz/admin
    COMMAND fuzz_admin -max_total_time=${SAW_FUZZ_SECONDS}
            -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz-admin-
            ${_saw_fuzz_admin_work} ${_saw_fuzz_admin_seeds})
  set_tests_properties(fuzz/admin PROPERTIES LABELS fuzz TIMEOUT 600)
else()
  add_executable(fuzz_admin ${_saw_fuzz_admin_srcs} ${CMAKE_CURRENT_LIST_DIR}/replay-main.c)
  target_link_libraries(fuzz_admin PRIVATE ${_saw_fuzz_admin_libs})
  add_test(NAME fuzz/admin-replay COMMAND fuzz_admin ${_saw_fuzz_admin_seeds})
  set_tests_properties(fuzz/admin-replay PROPERTIES LABELS fuzz TIMEOUT 120)
endif()
