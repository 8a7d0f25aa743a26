# Audit: OCSF event builders and the JSON-lines file sink.
saw_unit_test(torture_ocsf ${CMAKE_CURRENT_LIST_DIR}/torture_ocsf.c)
saw_unit_test(torture_audit ${CMAKE_CURRENT_LIST_DIR}/torture_audit.c)
# Audit pipeline (issue 6): OCSF 1.8.0 compliance against tests/data/ocsf, the hash chain and
# its verifier, rotation and reopen, the spool and the HTTP forwarder (fake transport), syslog.
saw_unit_test(torture_audit_schema ${CMAKE_CURRENT_LIST_DIR}/torture_audit_schema.c)
saw_unit_test(torture_audit_chain ${CMAKE_CURRENT_LIST_DIR}/torture_audit_chain.c)
saw_unit_test(torture_audit_spool ${CMAKE_CURRENT_LIST_DIR}/torture_audit_spool.c)
saw_unit_test(torture_audit_syslog ${CMAKE_CURRENT_LIST_DIR}/torture_audit_syslog.c)
