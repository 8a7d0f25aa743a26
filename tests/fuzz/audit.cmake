# fuzz_audit: the audit record reader and verifier, the spool (row check and the sqlite
# reader), the AuditSink parser, the audit path's JSON serializer (round trip). As in
# conf.cmake: the sources are compiled into the target so the fuzzer instruments them;
# without SAW_FUZZ (gcc) the target replays the seed corpus.
if(NOT DEFINED SAW_FUZZ_SECONDS)
  set(SAW_FUZZ_SECONDS 20 CACHE STRING "Seconds each libFuzzer target runs under ctest")
endif()

set(_saw_fuzz_audit_seeds ${CMAKE_CURRENT_LIST_DIR}/corpus/audit)
set(_saw_fuzz_audit_srcs ${CMAKE_CURRENT_LIST_DIR}/fuzz_audit.c
  ${CMAKE_SOURCE_DIR}/audit/chain.c ${CMAKE_SOURCE_DIR}/audit/verify.c
  ${CMAKE_SOURCE_DIR}/audit/spool.c ${CMAKE_SOURCE_DIR}/audit/audit-sink.c
  ${CMAKE_SOURCE_DIR}/audit/log.c ${CMAKE_SOURCE_DIR}/audit/audit-json.c
  ${CMAKE_SOURCE_DIR}/conf/conf.c)

if(SAW_FUZZ)
  add_executable(fuzz_audit ${_saw_fuzz_audit_srcs})
  target_compile_options(fuzz_audit PRIVATE -fsanitize=fuzzer,address,undefined -g)
  target_link_options(fuzz_audit PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_audit PRIVATE PkgConfig::JANSSON PkgConfig::SQLITE
    PkgConfig::OPENSSL)
  set(_saw_fuzz_audit_work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus/audit)
  file(MAKE_DIRECTORY ${_saw_fuzz_audit_work})
  add_test(NAME fuzz/audit
    COMMAND fuzz_audit -max_total_time=${SAW_FUZZ_SECONDS} -max_len=65536
            -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz-audit-
            ${_saw_fuzz_audit_work} ${_saw_fuzz_audit_seeds})
  set_tests_properties(fuzz/audit PROPERTIES LABELS fuzz TIMEOUT 600)
else()
  add_executable(fuzz_audit ${_saw_fuzz_audit_srcs} ${CMAKE_CURRENT_LIST_DIR}/replay-main.c)
  target_link_libraries(fuzz_audit PRIVATE PkgConfig::JANSSON PkgConfig::SQLITE
    PkgConfig::OPENSSL)
  add_test(NAME fuzz/audit-replay COMMAND fuzz_audit ${_saw_fuzz_audit_seeds})
  set_tests_properties(fuzz/audit-replay PROPERTIES LABELS fuzz TIMEOUT 120)
endif()
