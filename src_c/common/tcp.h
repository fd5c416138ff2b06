/* tcp.h - the listening TCP socket every HTTP listener of the loop starts from. */
#ifndef DDS_COMMON_TCP_H
#define DDS_COMMON_TCP_H
#include <stdbool.h>
#include <stdint.h>

/* A non-blocking, close-on-exec TCP socket bound to 127.0.0.1 (0.0.0.0 when non_local) on port
 * (0 = any free port, 1-65535; the caller checks the range) and listening. Returns the fd and sets
 * *bound_port to the port really bound, or returns -errno with nothing left open. Any thread. */
int dds__tcp_listen(bool non_local, int32_t port, uint16_t *bound_port);

#endif
