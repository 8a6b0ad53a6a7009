/* srv_http.h — the HTTP side of `gemfa serve` (GNU libmicrohttpd, one
 * thread per connection): routing, limits, API key, streaming, metrics. */
#ifndef GEMFA_SRV_HTTP_H
#define GEMFA_SRV_HTTP_H

#include <stddef.h>

#include "gemfa.h"
#include "srv_sched.h"

typedef struct srv_http_options {
    const char *api_key;     /* NULL: no key */
    size_t body_limit;       /* bytes */
    unsigned timeout_s;      /* idle seconds before a connection is dropped */
    unsigned max_connections;
    int json_log;
} srv_http_options;

typedef struct srv_http srv_http;

/* Serves on the listening socket `fd` (taken over).  NULL on failure. */
srv_http *srv_http_start(int fd, const gemfa_model *m, srv_sched *sched, const srv_http_options *o);
/* Stops accepting connections (call before stopping the scheduler). */
void srv_http_quiesce(srv_http *h);
/* Closes every connection and frees the server. */
void srv_http_stop(srv_http *h);

#endif
