/* placeholder: written by its module's work */
typedef int placeholder_retain_t;
