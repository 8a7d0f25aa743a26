# saw-guestd's pure pieces: backoff, session table, CONNECT parser, configuration table.
saw_unit_test(torture_guestd ${CMAKE_CURRENT_LIST_DIR}/torture_guestd.c)
target_link_libraries(torture_guestd PRIVATE sawguestd)
# The proxy's event loops on threads (guestd-shard.c), with real threads.
saw_unit_test(torture_shard ${CMAKE_CURRENT_LIST_DIR}/torture_shard.c)
target_link_libraries(torture_shard PRIVATE sawguestd)
