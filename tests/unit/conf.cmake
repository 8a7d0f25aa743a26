# Configuration parser and the broker's keyword table.
saw_unit_test(torture_conf ${CMAKE_CURRENT_LIST_DIR}/torture_conf.c)
