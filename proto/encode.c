/* placeholder: written by its module's work */
typedef int placeholder_encode_t;
