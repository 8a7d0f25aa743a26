# The admin protocol and socket (broker-admin.c) that sawctl talks to.
saw_unit_test(torture_admin ${CMAKE_CURRENT_LIST_DIR}/torture_admin.c)
