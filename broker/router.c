/* placeholder: written by its module's work */
typedef int placeholder_router_t;
