# Session store (sqlite).
saw_unit_test(torture_store ${CMAKE_CURRENT_LIST_DIR}/torture_store.c)
