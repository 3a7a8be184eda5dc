/* acl: placeholder, being written. */
#ifndef HANDOFF_ACL_H
#define HANDOFF_ACL_H
#endif
