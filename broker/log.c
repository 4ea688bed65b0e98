/* placeholder: written by its module's work */
typedef int placeholder_log_t;
