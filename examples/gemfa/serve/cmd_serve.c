/* cmd_serve.c — `gemfa serve`: an OpenAI-compatible HTTP server with
 * continuous batching and a chat page, built on the public API only. */
#define _GNU_SOURCE
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../cli.h"
#include "../commands.h"
#include "srv_http.h"
#include "srv_openai.h"
#include "srv_sched.h"

static const char usage[] =
    "usage: gemfa serve [-m DIR] [--host ADDR] [--port N] [--parallel N] [--ctx N]\n"
    "                   [--queue N] [--api-key KEY] [-t N] [--weights TYPE] [--json]\n"
    "Serves the model over HTTP: OpenAI's /v1/chat/completions, /v1/completions and\n"
    "/v1/models, plus /health, /metrics, /tokenize, /detokenize and a chat page at /.\n"
    "Prints 'gemfa serve: listening on http://HOST:PORT' when ready; stops on\n"
    "SIGINT/SIGTERM.  Requests leave out sampling fields to get the model's\n"
    "generation_config.json defaults, as `gemfa generate` does.  See docs/serving.md.\n\n"
    "options:\n"
    "  --host ADDR            address to bind (default 127.0.0.1)\n"
    "  --port N               TCP port, 0-65535 (default 8080; 0 picks a free one)\n"
    "  --parallel N           requests decoded together (slots), 1-256 (default 4)\n"
    "  -c, --ctx N            tokens of context per slot, 1 to the model's context\n"
    "                         length (default: min(4096, the model's))\n"
    "  --queue N              requests waiting beyond the busy slots before 503,\n"
    "                         0-100000 (default 64)\n"
    "  --api-key KEY          require 'Authorization: Bearer KEY' on /v1 requests\n"
    "                         (default: $GEMFA_API_KEY, else none)\n"
    "  --chunk N              prompt tokens decoded per step, 1-65536 (default 256)\n"
    "  --timeout S            seconds a connection may stay idle, 1-3600 (default 30)\n"
    "  --max-connections N    open connections at most, 1-100000 (default 1024)\n"
    "  --deterministic        decode slots one by one so that an answer never depends\n"
    "                         on the requests beside it (slower; see docs/serving.md)\n"
    "common options:\n" CLI_COMMON_HELP CLI_KV_HELP
    "With --json, the request log on stderr has one JSON object per line.\n";

#define BODY_LIMIT (1024 * 1024)

static int listen_on(const char *host, long long port, char *shown, size_t cap)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%lld", port);
    int rc = getaddrinfo(host, port_s, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "gemfa serve: cannot resolve '%s': %s\n", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
            perror("gemfa serve: bind");
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char h[NI_MAXHOST], p[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
        getnameinfo((struct sockaddr *)&ss, len, h, sizeof h, p, sizeof p, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        close(fd);
        return -1;
    }
    snprintf(shown, cap, strchr(h, ':') ? "[%s]:%s" : "%s:%s", h, p);
    return fd;
}

int cmd_serve(int argc, char **argv)
{
    cli_common common = {0};
    const char *host = "127.0.0.1", *api_key = getenv("GEMFA_API_KEY");
    long long port = 8080, parallel = 4, context = 0, queue = 64, chunk = 256, timeout = 30,
              max_conn = 1024;
    int deterministic = 0;
    for (int i = 1; i < argc;) {
        int r = cli_common_option(&common, argc, argv, &i);
        if (r < 0)
            return CLI_USAGE;
        if (r > 0)
            continue;
        const char *opt = argv[i], *v;
        if (strcmp(opt, "--host") == 0) {
            if (!(host = cli_value(argc, argv, &i)))
                return CLI_USAGE;
        } else if (strcmp(opt, "--api-key") == 0) {
            if (!(api_key = cli_value(argc, argv, &i)))
                return CLI_USAGE;
        } else if (strcmp(opt, "--deterministic") == 0) {
            deterministic = 1;
        } else {
            static const struct { const char *s, *l; long long *p, lo, hi; } nums[] = {
                {NULL, "--port", NULL, 0, 65535}, {NULL, "--parallel", NULL, 1, 256},
                {"-c", "--ctx", NULL, 1, 1 << 30}, {NULL, "--queue", NULL, 0, 100000},
                {NULL, "--chunk", NULL, 1, 65536}, {NULL, "--timeout", NULL, 1, 3600},
                {NULL, "--max-connections", NULL, 1, 100000},
            };
            long long *dst[] = {&port, &parallel, &context, &queue, &chunk, &timeout, &max_conn};
            size_t k = 0;
            while (k < sizeof nums / sizeof nums[0] && !cli_opt(opt, nums[k].s, nums[k].l))
                k++;
            if (k == sizeof nums / sizeof nums[0])
                return cli_usage_error(argv[0], "unknown option '%s'", opt);
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(opt, v, nums[k].lo, nums[k].hi, dst[k]))
                return CLI_USAGE;
        }
        i++;
    }
    if (cli_handle_help(&common, usage))
        return CLI_OK;
    if (api_key && !*api_key)
        api_key = NULL;

    gemfa_model *m = NULL;
    int rc = cli_load_model(&common, 0, &m);
    if (rc != CLI_OK)
        return rc;
    cli_note_if_tiny(&common);
    if ((rc = cli_check_context(argv[0], m, context)) != CLI_OK) {
        gemfa_model_free(m);
        return rc;
    }
    if (context == 0) {
        int64_t n = 0;
        gemfa_model_get(m, GEMFA_PROP_CONTEXT_LENGTH, &n);
        context = n < 4096 ? n : 4096;
    }
    /* the model's name in responses: the directory's last component */
    static char name[256];
    const char *dir = cli_model_dir(&common);
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    const char *base = dir + dl;
    while (base > dir && base[-1] != '/')
        base--;
    snprintf(name, sizeof name, "%.*s", (int)(dir + dl - base), base);
    srv_model_name = name;

    /* every thread started from here on inherits the blocked signals; the
     * main thread takes them with sigwait */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    char shown[300];
    int fd = listen_on(host, port, shown, sizeof shown);
    if (fd < 0) {
        gemfa_model_free(m);
        return CLI_ERROR;
    }
    srv_sched_options so = {(int)parallel, context, (int)queue, common.threads, (int)chunk, deterministic,
                            common.kv_type};
    srv_sched *sched = srv_sched_start(m, &so);
    if (!sched) {
        close(fd);
        gemfa_model_free(m);
        return CLI_ERROR;
    }
    srv_http_options ho = {api_key, BODY_LIMIT, (unsigned)timeout, (unsigned)max_conn, common.json};
    srv_http *http = srv_http_start(fd, m, sched, &ho);
    if (!http) {
        fprintf(stderr, "gemfa serve: cannot start the HTTP server\n");
        close(fd);
        srv_sched_stop(sched);
        srv_sched_free(sched);
        gemfa_model_free(m);
        return CLI_ERROR;
    }
    printf("gemfa serve: listening on http://%s\n", shown);
    fflush(stdout);
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "gemfa serve: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    srv_http_quiesce(http);   /* no new connections */
    srv_sched_stop(sched);    /* running streams end with an error event */
    srv_http_stop(http);      /* waits for the connection threads */
    srv_sched_free(sched);
    gemfa_model_free(m);
    return CLI_OK;
}
