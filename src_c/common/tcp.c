/* tcp.c - in: an address choice and a port. Out: a listening socket, or the errno of the step that
 * failed. Never leaves a socket open on failure. */
#include "common/tcp.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

int dds__tcp_listen(bool non_local, int32_t port, uint16_t *bound_port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    /* SO_REUSEADDR only skips TIME_WAIT leftovers of a previous run; on Linux a port another
     * socket listens on still fails with EADDRINUSE. */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(non_local ? INADDR_ANY : INADDR_LOOPBACK);
    socklen_t slen = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, SOMAXCONN) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &slen) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    *bound_port = ntohs(sa.sin_port);
    return fd;
}
