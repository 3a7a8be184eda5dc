#include "autoconf.h"

#include "limit.h"
