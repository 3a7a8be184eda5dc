#include "autoconf.h"

#include "builtin.h"
