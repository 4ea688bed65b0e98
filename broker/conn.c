/* placeholder: written by its module's work */
typedef int placeholder_conn_t;
