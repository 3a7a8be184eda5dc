#include "autoconf.h"

#include "inetd.h"
