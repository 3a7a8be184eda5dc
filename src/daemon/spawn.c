#include "autoconf.h"

#include "spawn.h"
