#include "autoconf.h"

#include "acl.h"
