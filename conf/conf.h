/* placeholder: the shared configuration parser is being written */
#ifndef SAW_CONF_H
#define SAW_CONF_H
#include <stddef.h>
struct conf_list {
	char **v;
	size_t n;
};
#endif
