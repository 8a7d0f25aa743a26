# saw-guestd's PolicyFile reload and DecisionSocket (tests/e2e/policy-reload.sh): guestd
# alone, with a broker address where nothing listens. Loopback and unix sockets only.
if(SAW_E2E)
  add_test(NAME e2e/policy-reload
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/policy-reload.sh $<TARGET_FILE:saw-guestd>)
  set_tests_properties(e2e/policy-reload PROPERTIES LABELS e2e TIMEOUT 120
    ENVIRONMENT "SAW_TEST_SRCDIR=${CMAKE_SOURCE_DIR};SAW_BUILD_DIR=${CMAKE_BINARY_DIR}")
endif()
