# The policy document and its decisions (guestd/policy.c), and the egress address
# classifier (guestd/netclass.c). Pure functions: no daemon, no network.
saw_unit_test(torture_policy ${CMAKE_CURRENT_LIST_DIR}/torture_policy.c)
target_link_libraries(torture_policy PRIVATE sawguestd)
saw_unit_test(torture_netclass ${CMAKE_CURRENT_LIST_DIR}/torture_netclass.c)
target_link_libraries(torture_netclass PRIVATE sawguestd)
