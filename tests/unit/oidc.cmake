# broker-oidc-parse: discovery, device authorization and token endpoint answers.
saw_unit_test(torture_oidc_parse ${CMAKE_CURRENT_LIST_DIR}/torture_oidc_parse.c)
