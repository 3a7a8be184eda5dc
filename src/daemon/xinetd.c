#include "autoconf.h"

#include "xinetd.h"
