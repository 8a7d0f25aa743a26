# saw-authorized-keys' argument checks, expiry formatting and answer handling (guestd/akc.c),
# and the ControlSocket client's local checks (guestd/gsock-client.c).
saw_unit_test(torture_akc ${CMAKE_CURRENT_LIST_DIR}/torture_akc.c)
target_link_libraries(torture_akc PRIVATE sawakc)
