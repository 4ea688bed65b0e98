/* placeholder: written by its module's work */
typedef int placeholder_utf8_t;
