/* placeholder: written by its module's work */
typedef int placeholder_topic_t;
