/* inetd: placeholder, being written. */
#ifndef HANDOFF_INETD_H
#define HANDOFF_INETD_H
#endif
