/* xinetd: placeholder, being written. */
#ifndef HANDOFF_XINETD_H
#define HANDOFF_XINETD_H
#endif
