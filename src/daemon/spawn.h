/* spawn: placeholder, being written. */
#ifndef HANDOFF_SPAWN_H
#define HANDOFF_SPAWN_H
#endif
