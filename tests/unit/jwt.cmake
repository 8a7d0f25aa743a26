# broker-jwt: JWS/JWKS verification and OIDC claim checks.
saw_unit_test(torture_jwt ${CMAKE_CURRENT_LIST_DIR}/torture_jwt.c)
