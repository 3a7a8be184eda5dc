/* limit: placeholder, being written. */
#ifndef HANDOFF_LIMIT_H
#define HANDOFF_LIMIT_H
#endif
