# The credential proxy's pure pieces (guestd/guestd-cred-caps.c) and the proxy request parser's
# egress and origin modes: capabilities, route selection, header stripping and injection.
saw_unit_test(torture_credproxy ${CMAKE_CURRENT_LIST_DIR}/torture_credproxy.c)
target_link_libraries(torture_credproxy PRIVATE sawguestd)
