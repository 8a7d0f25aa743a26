# saw-guestd's pure pieces: backoff, session table, CONNECT parser, configuration table.
saw_unit_test(torture_guestd ${CMAKE_CURRENT_LIST_DIR}/torture_guestd.c)
target_link_libraries(torture_guestd PRIVATE sawguestd)
