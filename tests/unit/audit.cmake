# Audit: OCSF event builders and the JSON-lines file sink.
saw_unit_test(torture_ocsf ${CMAKE_CURRENT_LIST_DIR}/torture_ocsf.c)
saw_unit_test(torture_audit ${CMAKE_CURRENT_LIST_DIR}/torture_audit.c)
