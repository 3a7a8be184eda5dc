/* builtin: placeholder, being written. */
#ifndef HANDOFF_BUILTIN_H
#define HANDOFF_BUILTIN_H
#endif
