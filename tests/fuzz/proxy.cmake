# fuzz_proxy: the CONNECT request-head parser of saw-guestd's proxy. As for fuzz_conf, the
# parser's source is compiled into the target; without SAW_FUZZ (gcc) the seeds are replayed.
set(_saw_fuzz_proxy_seeds ${CMAKE_CURRENT_LIST_DIR}/corpus/proxy)
set(_saw_fuzz_proxy_srcs ${CMAKE_CURRENT_LIST_DIR}/fuzz_proxy.c
  ${CMAKE_SOURCE_DIR}/guestd/guestd-proxy-parse.c)

if(SAW_FUZZ)
  add_executable(fuzz_proxy ${_saw_fuzz_proxy_srcs})
  target_compile_options(fuzz_proxy PRIVATE -fsanitize=fuzzer,address,undefined -g)
  target_link_options(fuzz_proxy PRIVATE -fsanitize=fuzzer,address,undefined)
  set(_saw_fuzz_proxy_work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus/proxy)
  file(MAKE_DIRECTORY ${_saw_fuzz_proxy_work})
  add_test(NAME fuzz/proxy
    COMMAND fuzz_proxy -max_total_time=${SAW_FUZZ_SECONDS}
            -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz-proxy-
            ${_saw_fuzz_proxy_work} ${_saw_fuzz_proxy_seeds})
  set_tests_properties(fuzz/proxy PROPERTIES LABELS fuzz TIMEOUT 600)
else()
  add_executable(fuzz_proxy ${_saw_fuzz_proxy_srcs} ${CMAKE_CURRENT_LIST_DIR}/replay-main.c)
  add_test(NAME fuzz/proxy-replay COMMAND fuzz_proxy ${_saw_fuzz_proxy_seeds})
  set_tests_properties(fuzz/proxy-replay PROPERTIES LABELS fuzz TIMEOUT 120)
endif()
