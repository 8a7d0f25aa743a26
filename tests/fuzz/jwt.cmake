# fuzz_jwt: jwks_parse() + jwt_validate_id_token() on "JWKS \0 token" inputs.
# broker-jwt.c is compiled into the target (not taken from libsawbroker) so that the fuzzer
# instruments the parser itself and the target builds even while other broker files do not.
if(NOT DEFINED SAW_FUZZ_SECONDS)
  set(SAW_FUZZ_SECONDS 20)
endif()

set(_saw_fuzz_jwt_seeds ${CMAKE_CURRENT_LIST_DIR}/corpus/jwt)
set(_saw_fuzz_jwt_srcs ${CMAKE_CURRENT_LIST_DIR}/fuzz_jwt.c ${CMAKE_SOURCE_DIR}/broker/broker-jwt.c)

if(SAW_FUZZ)
  add_executable(fuzz_jwt ${_saw_fuzz_jwt_srcs})
  target_compile_options(fuzz_jwt PRIVATE -fsanitize=fuzzer,address,undefined -g)
  target_link_options(fuzz_jwt PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_jwt PRIVATE PkgConfig::CJOSE PkgConfig::JANSSON PkgConfig::OPENSSL m)
  # New inputs go to a corpus in the build tree; the committed seeds are only read.
  set(_saw_fuzz_jwt_work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus/jwt)
  file(MAKE_DIRECTORY ${_saw_fuzz_jwt_work})
  add_test(NAME fuzz/jwt
    COMMAND fuzz_jwt -max_total_time=${SAW_FUZZ_SECONDS} -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz-jwt-
            ${_saw_fuzz_jwt_work} ${_saw_fuzz_jwt_seeds})
  set_tests_properties(fuzz/jwt PROPERTIES LABELS fuzz TIMEOUT 600)
else()
  add_executable(fuzz_jwt ${_saw_fuzz_jwt_srcs} ${CMAKE_CURRENT_LIST_DIR}/replay-main.c)
  target_link_libraries(fuzz_jwt PRIVATE PkgConfig::CJOSE PkgConfig::JANSSON PkgConfig::OPENSSL m)
  add_test(NAME fuzz/jwt-replay COMMAND fuzz_jwt ${_saw_fuzz_jwt_seeds})
  set_tests_properties(fuzz/jwt-replay PROPERTIES LABELS fuzz TIMEOUT 120)
endif()
